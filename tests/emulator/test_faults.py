"""Contract: armed faults do to requests what networks and Wistia's edge do to them."""

from __future__ import annotations

import random
import time

import pytest
import urllib3

from wistia_emulator import Fault, WistiaEmulator
from wistia_emulator.testing import HTTP, bearer, import_url, upload_bytes

SOURCE = "http://127.0.0.1:9/clip.mp4"


def import_or_error(emu: WistiaEmulator) -> int | str:
    """The answer's status, or "dropped" when the connection closed without one."""
    try:
        return import_url(emu.url, SOURCE).status
    except urllib3.exceptions.ProtocolError:
        return "dropped"


def seeded_hits(seed: int, probability: float, n: int) -> list[bool]:
    rng = random.Random(seed)  # noqa: S311 - the same sequence the fault draws
    return [rng.random() < probability for _ in range(n)]


def test_latency_delays_then_answers_normally(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="latency", seconds=0.3, count=1))

    started = time.monotonic()
    slow = import_url(wistia_emulator.url, SOURCE)
    slow_seconds = time.monotonic() - started
    started = time.monotonic()
    fast = import_url(wistia_emulator.url, SOURCE)
    fast_seconds = time.monotonic() - started

    assert (slow.status, fast.status) == (200, 200)
    assert slow_seconds >= 0.3 > fast_seconds
    assert [r["fault"] for r in wistia_emulator.requests()] == ["latency", None]
    assert len(wistia_emulator.medias()) == 2


def test_a_status_fault_answers_its_status_count_times(wistia_emulator: WistiaEmulator) -> None:
    page = "<html><body>502 Bad Gateway</body></html>"
    wistia_emulator.add_fault(
        Fault(kind="status", count=2, status=502, body=page, content_type="text/html")
    )

    answers = [import_url(wistia_emulator.url, SOURCE) for _ in range(3)]

    assert [a.status for a in answers] == [502, 502, 200]
    assert answers[0].data.decode() == page
    assert answers[0].headers["Content-Type"] == "text/html"
    assert len(wistia_emulator.medias()) == 1


def test_a_status_fault_has_a_default_body(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="status", count=1))

    answer = import_url(wistia_emulator.url, SOURCE)

    assert (answer.status, answer.data) == (503, b"503 Service Unavailable")


def test_drop_closes_the_connection_and_does_nothing(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="drop", count=1))

    with pytest.raises(urllib3.exceptions.ProtocolError):
        upload_bytes(wistia_emulator.url, "clip.mp4", b"x" * 100_000)

    assert wistia_emulator.medias() == []
    [record] = wistia_emulator.requests()
    assert (record["status"], record["fault"]) == (None, "drop")
    assert import_or_error(wistia_emulator) == 200


def test_drop_after_create_creates_the_media_but_loses_the_answer(
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.add_fault(Fault(kind="drop_after_create", count=1))

    outcome = import_or_error(wistia_emulator)

    assert outcome == "dropped"
    [media] = wistia_emulator.medias()
    assert media["source_url"] == SOURCE
    assert wistia_emulator.wait_until_settled(5)  # and the import ran
    [record] = wistia_emulator.requests()
    assert (record["status"], record["fault"]) == (None, "drop_after_create")
    # A naive retry now makes a duplicate: Wistia has no idempotency key.
    assert import_or_error(wistia_emulator) == 200
    assert len(wistia_emulator.medias()) == 2


def test_a_rate_limit_fault_answers_429(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="rate_limit", count=1, retry_after=7))

    answer = import_url(wistia_emulator.url, SOURCE)

    assert answer.status == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.data == b"Rate limit exceeded"
    assert wistia_emulator.medias() == []


@pytest.mark.parametrize(
    ("kind", "seen_when_hit"),
    [("status", 503), ("drop", "dropped"), ("rate_limit", 429), ("drop_after_create", "dropped")],
)
def test_faults_by_seeded_probability_are_reproducible(
    wistia_emulator: WistiaEmulator, kind: str, seen_when_hit: int | str
) -> None:
    wistia_emulator.add_fault(Fault(kind=kind, probability=0.4, seed=7))
    expected_hits = seeded_hits(7, 0.4, 20)

    outcomes = [import_or_error(wistia_emulator) for _ in range(20)]

    assert outcomes == [seen_when_hit if hit else 200 for hit in expected_hits]
    assert 0 < sum(expected_hits) < 20
    created = 20 if kind == "drop_after_create" else expected_hits.count(False)
    assert len(wistia_emulator.medias()) == created


def test_latency_by_probability(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="latency", probability=0.5, seed=3, seconds=0.05))
    expected_hits = seeded_hits(3, 0.5, 8)

    for _ in range(8):
        assert import_url(wistia_emulator.url, SOURCE).status == 200

    assert [r["fault"] == "latency" for r in wistia_emulator.requests()] == expected_hits


def test_faults_are_checked_before_auth(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="status", count=1, status=500))

    assert import_url(wistia_emulator.url, SOURCE, token=None).status == 500
    assert import_url(wistia_emulator.url, SOURCE, token=None).status == 401


def test_faults_match_method_and_path(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="status", match_method="GET", match_path="/v1/*"))
    wistia_emulator.add_fault(
        Fault(kind="status", status=500, match_method="*", match_path="/v1/projects.json")
    )

    upload = import_url(wistia_emulator.url, SOURCE)
    listing = HTTP.request("GET", wistia_emulator.url + "v1/medias.json", headers=bearer())
    projects = HTTP.request("DELETE", wistia_emulator.url + "v1/projects.json", headers=bearer())

    assert (upload.status, listing.status, projects.status) == (200, 503, 500)


def test_faults_apply_in_the_order_added_and_latency_combines(
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.add_fault(Fault(kind="latency", count=1, seconds=0.1))
    wistia_emulator.add_fault(Fault(kind="status", count=1, status=502))
    wistia_emulator.add_fault(Fault(kind="status", count=1, status=504))

    started = time.monotonic()
    statuses = [import_url(wistia_emulator.url, SOURCE).status for _ in range(3)]

    assert statuses == [502, 504, 200]
    assert time.monotonic() - started >= 0.1
    assert [r["fault"] for r in wistia_emulator.requests()] == ["latency+status", "status", None]


def test_clear_faults(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.add_fault(Fault(kind="drop"))  # neither count nor probability: every time

    first = import_or_error(wistia_emulator)
    second = import_or_error(wistia_emulator)
    wistia_emulator.clear_faults()

    assert (first, second, import_or_error(wistia_emulator)) == ("dropped", "dropped", 200)


@pytest.mark.parametrize(
    "arguments",
    [
        {"kind": "explode"},
        {"kind": "drop", "count": 1, "probability": 0.5},
        {"kind": "drop", "count": 0},
        {"kind": "drop", "probability": 1.5},
        {"kind": "status", "status": 42},
    ],
)
def test_impossible_faults_are_refused(arguments: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Fault(**arguments)  # type: ignore[arg-type]


def test_a_trickle_answers_in_full_one_byte_at_a_time(wistia_emulator: WistiaEmulator) -> None:
    # Every read gets a byte long before any read timeout; the whole answer takes long.
    wistia_emulator.add_fault(Fault(kind="trickle", seconds=0.01, count=1))
    started = time.monotonic()

    answer = import_url(wistia_emulator.url, SOURCE)

    assert answer.status == 200
    assert time.monotonic() - started >= 0.01 * len(answer.data)
    assert [m["name"] for m in wistia_emulator.medias()] == ["clip.mp4"]  # Wistia acted


def test_a_trickle_of_the_headers_too_still_ends_in_a_whole_answer(
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.add_fault(Fault(kind="trickle", seconds=0.002, trickle_headers=True, count=1))
    # Each byte must arrive within the read timeout, never the whole answer.
    timeout = urllib3.Timeout(connect=2, read=1)

    answer = HTTP.request(
        "POST",
        wistia_emulator.url,
        fields={"url": SOURCE},
        encode_multipart=False,
        headers=bearer("test-token"),
        timeout=timeout,
    )

    assert answer.status == 200
    assert answer.json()["hashed_id"]


@pytest.mark.parametrize(("placeholder", "quoted"), [("{url}", False), ("{url_quoted}", True)])
def test_a_status_fault_can_quote_the_url_it_was_given(
    wistia_emulator: WistiaEmulator, placeholder: str, quoted: bool
) -> None:
    from urllib.parse import quote

    wistia_emulator.add_fault(Fault(kind="status", status=400, body=f"bad {placeholder}", count=1))

    answer = import_url(wistia_emulator.url, SOURCE)

    expected = quote(SOURCE, safe="") if quoted else SOURCE
    assert answer.data.decode() == f"bad {expected}"
