"""Contract: webhooks are POSTed the way Wistia sends them (signed JSON, several events per
POST, at least once), to a loopback receiver that checks every signature."""

from __future__ import annotations

import hashlib
import hmac
import random
import socket
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from wistia_emulator import EmulatorControl, EmulatorControlError, WebhookDelivery, WistiaEmulator
from wistia_emulator.testing import (
    HTTP,
    WebhookReceiver,
    bearer,
    import_url,
    json_of,
    mp4_bytes,
    upload_bytes,
)

SECRET = "webhook-secret-key"
QUICK = WebhookDelivery(batch_window=0.02, retry_delay=0.01, max_retry_delay=0.05)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture
def hooked(receiver: WebhookReceiver) -> Iterator[WistiaEmulator]:
    """An emulator that sends its webhooks to `receiver`."""
    with WistiaEmulator(
        processing_delay=0.01,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_delivery=QUICK,
    ) as emu:
        yield emu


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def upload(emu: WistiaEmulator, name: str, data: bytes) -> str:
    response = upload_bytes(emu.url, name, data)
    assert response.status == 200
    return str(json_of(response)["hashed_id"])


def settle(emu: WistiaEmulator) -> None:
    assert emu.wait_until_settled(10)
    assert emu.wait_until_webhooks_delivered(10)


def eventually(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.01)
    return result


def types_by_media(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for event in events:
        found[event["payload"]["media"]["id"]].append(event["type"])
    return dict(found)


def test_each_status_change_is_posted_signed_as_wistia_posts_it(
    hooked: WistiaEmulator, receiver: WebhookReceiver
) -> None:
    ready = upload(hooked, "launch.mp4", mp4_bytes(b"launch"))
    failed = upload(hooked, "notes.mp4", b"plain text, not a video")
    settle(hooked)

    posts = receiver.received()
    assert posts
    for post in posts:
        expected = hmac.new(SECRET.encode(), post.body, hashlib.sha256).hexdigest()
        assert post.headers["X-Wistia-Signature"] == expected  # hex HMAC-SHA256, raw body
        assert post.headers["User-Agent"].startswith("Wistia-Webhooks/")
        assert post.headers["Content-Type"] == "application/json"
        body = post.payload
        assert set(body) == {"hook", "events"}
        assert body["hook"]["uuid"] == str(uuid.UUID(body["hook"]["uuid"]))
        assert isinstance(body["events"], list) and body["events"]
    events = receiver.events()
    assert types_by_media(events) == {
        ready: ["media.created", "media.processing", "media.ready"],
        failed: ["media.created", "media.processing", "media.failed"],
    }
    for event in events:
        assert set(event) == {"uuid", "type", "generated_at", "metadata", "payload"}
        assert event["metadata"] == {"account_id": hooked.account_id}
        assert datetime.fromisoformat(event["generated_at"]).utcoffset() == timedelta(0)
        media = event["payload"]["media"]
        assert set(media) == {"id", "name", "url", "duration", "thumbnail"}
        assert media["name"] == ("launch.mp4" if media["id"] == ready else "notes.mp4")
        assert media["url"].endswith(f"/medias/{media['id']}")
        assert isinstance(media["duration"], float)
        assert set(media["thumbnail"]) == {"url"}
    assert len({e["uuid"] for e in events}) == len(events)
    stamps = [e["generated_at"] for e in events]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


def test_an_import_whose_url_cannot_be_fetched_sends_media_failed(
    hooked: WistiaEmulator, receiver: WebhookReceiver
) -> None:
    answer = json_of(import_url(hooked.url, f"http://127.0.0.1:{closed_port()}/gone.mp4"))
    settle(hooked)

    assert types_by_media(receiver.events()) == {
        answer["hashed_id"]: ["media.created", "media.processing", "media.failed"]
    }


def test_a_deletion_sends_media_deleted_with_only_the_id(
    hooked: WistiaEmulator, receiver: WebhookReceiver
) -> None:
    hashed_id = upload(hooked, "gone.mp4", mp4_bytes())
    settle(hooked)

    deleted = HTTP.request("DELETE", f"{hooked.url}v1/medias/{hashed_id}.json", headers=bearer())
    settle(hooked)

    assert deleted.status == 200
    last = receiver.events()[-1]
    assert (last["type"], last["payload"]) == ("media.deleted", {"media": {"id": hashed_id}})


def test_events_close_together_share_a_post_of_at_most_max_batch(
    receiver: WebhookReceiver,
) -> None:
    # A long processing delay: only media.created and media.processing happen here.
    delivery = WebhookDelivery(max_batch=3, batch_window=30.0)
    with WistiaEmulator(
        processing_delay=30.0, webhook_url=receiver.url, webhook_secret=SECRET,
        webhook_delivery=delivery,
    ) as emu:  # fmt: skip
        for n in range(3):
            upload(emu, f"{n}.mp4", mp4_bytes())
        assert emu.wait_until_webhooks_delivered(10)  # full batches go without waiting
        generated = [e["uuid"] for e in emu.webhooks()["events"]]

    posts = [[e["uuid"] for e in post.payload["events"]] for post in receiver.received()]
    assert posts == [generated[:3], generated[3:]]


def test_a_failing_receiver_gets_the_same_body_again_until_it_answers_2xx(
    receiver: WebhookReceiver,
) -> None:
    receiver.answer_with(500, 503)
    with WistiaEmulator(
        processing_delay=30.0, webhook_url=receiver.url, webhook_secret=SECRET,
        webhook_delivery=QUICK,
    ) as emu:  # fmt: skip
        upload(emu, "clip.mp4", mp4_bytes())
        assert emu.wait_until_webhooks_delivered(10)
        report = emu.webhooks()

    posts = receiver.received()
    assert [p.answered for p in posts] == [500, 503, 200]
    assert len({p.body for p in posts}) == 1
    assert all(p.signature_valid for p in posts)
    assert [(a["attempt"], a["status"], a["error"]) for a in report["attempts"]] == [
        (1, 500, None),
        (2, 503, None),
        (3, 200, None),
    ]
    assert report["abandoned"] == [] and report["pending"] == 0
    assert [e["type"] for e in receiver.events()] == ["media.created", "media.processing"]


def test_retries_back_off_up_to_a_cap() -> None:
    delivery = WebhookDelivery(retry_delay=0.5, max_retry_delay=3.0)

    waits = [delivery.retry_wait(attempt) for attempt in range(1, 6)]

    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_an_unreachable_receiver_is_tried_max_attempts_times_then_abandoned() -> None:
    delivery = WebhookDelivery(max_attempts=3, retry_delay=0.01, batch_window=0.01)
    with WistiaEmulator(
        processing_delay=30.0,
        webhook_url=f"http://127.0.0.1:{closed_port()}/hook",
        webhook_secret=SECRET,
        webhook_delivery=delivery,
    ) as emu:
        hashed_id = upload(emu, "clip.mp4", mp4_bytes())
        assert emu.wait_until_webhooks_delivered(10)
        report = emu.webhooks()

    assert [(a["attempt"], a["status"]) for a in report["attempts"]] == [
        (1, None),
        (2, None),
        (3, None),
    ]
    assert all(a["error"] for a in report["attempts"])
    [abandoned] = report["abandoned"]
    assert abandoned["attempts"] == 3
    assert [(e["type"], e["media_id"]) for e in abandoned["events"]] == [
        ("media.created", hashed_id),
        ("media.processing", hashed_id),
    ]
    assert report["pending"] == 0


def test_seeded_shares_of_events_are_duplicated_reordered_and_never_sent(
    receiver: WebhookReceiver,
) -> None:
    delivery = WebhookDelivery(
        duplicate_share=0.3, reorder_share=0.3, drop_share=0.2, seed=11,
        hold_seconds=0.3, batch_window=0.01,
    )  # fmt: skip
    with WistiaEmulator(
        processing_delay=0.01, webhook_url=receiver.url, webhook_secret=SECRET,
        webhook_delivery=delivery,
    ) as emu:  # fmt: skip
        for n in range(12):
            upload(emu, f"{n}.mp4", mp4_bytes(bytes([n])))
            assert emu.wait_until_settled(10)  # one media at a time: a fixed order of events
        assert emu.wait_until_webhooks_delivered(10)
        report = emu.webhooks()

    # The draws the seed makes, three per event in the order the events happen.
    generated = report["events"]
    rng = random.Random(11)  # noqa: S311 - the same sequence the emulator draws
    draws = [(rng.random(), rng.random(), rng.random()) for _ in generated]
    kept = [(e["uuid"], d) for e, d in zip(generated, draws, strict=True) if d[0] >= 0.2]
    dropped = {e["uuid"] for e, d in zip(generated, draws, strict=True) if d[0] < 0.2}
    duplicated = {u for u, (_, dup, _) in kept if dup < 0.3}
    reordered = {u for u, (_, _, held) in kept if held < 0.3}
    assert {d["uuid"] for d in report["dropped"]} == dropped
    assert set(report["duplicated"]) == duplicated
    assert set(report["reordered"]) == reordered
    assert dropped and duplicated and reordered

    arrivals = [e["uuid"] for e in receiver.events()]
    counts = Counter(arrivals)
    assert set(counts) == {u for u, _ in kept}  # at least once, but never the dropped
    assert {u for u, c in counts.items() if c > 1} == duplicated
    assert max(counts.values()) == 2
    position = {e["uuid"]: n for n, e in enumerate(generated)}
    first_arrivals = list(dict.fromkeys(arrivals))
    overtaken = {
        u
        for n, u in enumerate(first_arrivals)
        if any(position[v] > position[u] for v in first_arrivals[:n])
    }
    assert overtaken  # some events arrive after events that happened later
    assert overtaken <= reordered


def test_without_a_webhook_url_nothing_is_sent(wistia_emulator: WistiaEmulator) -> None:
    upload(wistia_emulator, "clip.mp4", mp4_bytes())
    assert wistia_emulator.wait_until_settled(5)

    report = wistia_emulator.webhooks()

    assert (report["url"], report["events"], report["attempts"]) == (None, [], [])
    assert wistia_emulator.wait_until_webhooks_delivered(0.1)


def test_a_new_secret_signs_every_post_from_then_on_retries_included(
    hooked: WistiaEmulator, receiver: WebhookReceiver
) -> None:
    hooked.set_webhook_delivery(
        WebhookDelivery(batch_window=0.01, max_attempts=200, retry_delay=0.01, max_retry_delay=0.05)
    )
    hooked.set_webhook(receiver.url, "stale-key")  # a key the receiver does not know

    upload(hooked, "clip.mp4", mp4_bytes())
    refused = eventually(receiver.received)
    hooked.set_webhook(receiver.url, SECRET)  # the key changed in the account's settings
    settle(hooked)

    assert refused and all(not p.signature_valid and p.answered == 401 for p in refused)
    signed = [p for p in receiver.received() if p.signature_valid]
    assert {p.body for p in refused} <= {p.body for p in signed}  # the same body, re-signed
    # A refused POST waits for its retry while later events go ahead: not in order.
    delivered = sorted(receiver.events(), key=lambda e: e["generated_at"])
    assert [e["type"] for e in delivered] == [
        "media.created",
        "media.processing",
        "media.ready",
    ]
    assert hooked.webhooks()["abandoned"] == []


def test_webhooks_through_the_control_plane(
    wistia_emulator: WistiaEmulator, receiver: WebhookReceiver
) -> None:
    control = EmulatorControl(wistia_emulator.url)
    control.set_webhook(receiver.url, SECRET)
    control.set_webhook_delivery(WebhookDelivery(max_batch=1, batch_window=0.0))

    hashed_id = upload(wistia_emulator, "clip.mp4", mp4_bytes())
    assert control.wait_until_settled(5)
    assert control.wait_until_webhooks_delivered(5)
    report = control.webhooks()
    in_process = wistia_emulator.webhooks()
    control.set_webhook(None)
    upload(wistia_emulator, "unheard.mp4", mp4_bytes())
    assert control.wait_until_settled(5)

    assert report == in_process
    assert report["url"] == receiver.url and SECRET not in repr(report)
    assert [len(p.payload["events"]) for p in receiver.received()] == [1, 1, 1]
    assert types_by_media(receiver.events()) == {
        hashed_id: ["media.created", "media.processing", "media.ready"]
    }
    assert len(control.webhooks()["events"]) == 3


def test_reset_forgets_the_webhooks_sent_and_keeps_the_config(
    hooked: WistiaEmulator, receiver: WebhookReceiver
) -> None:
    upload(hooked, "clip.mp4", mp4_bytes())
    settle(hooked)

    hooked.reset()
    after = hooked.webhooks()
    upload(hooked, "again.mp4", mp4_bytes())
    settle(hooked)

    assert (after["events"], after["attempts"], after["url"]) == ([], [], receiver.url)
    assert len(hooked.webhooks()["events"]) == 3


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://example.com/hook", SECRET),
        ("http://10.0.0.5/hook", SECRET),
        ("ftp://127.0.0.1/hook", SECRET),
        ("http://127.0.0.1:8000/hook", None),
        ("http://127.0.0.1:8000/hook", ""),
    ],
)
def test_a_webhook_off_loopback_or_without_a_secret_is_refused(
    wistia_emulator: WistiaEmulator, url: str, secret: str | None
) -> None:
    with pytest.raises(ValueError):
        WistiaEmulator(webhook_url=url, webhook_secret=secret)
    with pytest.raises(EmulatorControlError):
        EmulatorControl(wistia_emulator.url).set_webhook(url, secret)


@pytest.mark.parametrize(
    "delivery",
    [
        {"max_batch": 0},
        {"drop_share": 1.5},
        {"retry_delay": -1},
        {"max_attempts": 0},
        {"colour": "blue"},
    ],
)
def test_impossible_delivery_settings_are_refused(
    wistia_emulator: WistiaEmulator, delivery: dict[str, Any]
) -> None:
    with pytest.raises(EmulatorControlError):
        EmulatorControl(wistia_emulator.url)._call("POST", "config", {"webhook_delivery": delivery})
