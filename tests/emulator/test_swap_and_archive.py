"""Contract: `PUT /modern/medias/{hashed_id}/swap` replaces a media's file and keeps its
hashed id; `PUT /modern/medias/archive` archives up to 100 medias; both as background jobs
that finish after the processing delay, as Wistia's do."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from wistia_emulator import EmulatorControl, WistiaEmulator
from wistia_emulator.testing import (
    HTTP,
    SourceServer,
    WebhookReceiver,
    bearer,
    import_url,
    json_of,
    mp4_bytes,
    upload_bytes,
)

SECRET = "webhook-key"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 64


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


def put(emu: WistiaEmulator, path: str, payload: Any) -> urllib3.BaseHTTPResponse:
    return HTTP.request(
        "PUT",
        emu.url + path,
        body=json.dumps(payload).encode(),
        headers={**bearer(), "Content-Type": "application/json"},
    )


def swap(emu: WistiaEmulator, hashed_id: str, replacement: str | None) -> urllib3.BaseHTTPResponse:
    payload = {} if replacement is None else {"replacement_media_id": replacement}
    return put(emu, f"modern/medias/{hashed_id}/swap", payload)


def ready(emu: WistiaEmulator, name: str, data: bytes) -> str:
    response = upload_bytes(emu.url, name, data)
    assert response.status == 200
    assert emu.wait_until_settled(5)
    return str(json_of(response)["hashed_id"])


def media(emu: WistiaEmulator, hashed_id: str) -> dict[str, Any]:
    [found] = [m for m in emu.medias() if m["hashed_id"] == hashed_id]
    return found


def job_status(emu: WistiaEmulator, job: dict[str, Any]) -> str:
    response = HTTP.request(
        "GET", f"{emu.url}modern/background_job_status/{job['id']}", headers=bearer()
    )
    return str(json_of(response)["background_job_status"]["status"])


# --- swap ---------------------------------------------------------------------------------


def test_a_swap_keeps_the_hashed_id_and_takes_the_replacements_file() -> None:
    first, second = mp4_bytes(b"version 1"), mp4_bytes(b"version 2, longer")
    with (
        WebhookReceiver(SECRET) as receiver,
        WistiaEmulator(
            processing_delay=0.2, webhook_url=receiver.url, webhook_secret=SECRET
        ) as emu,
    ):
        original = ready(emu, "launch.mp4", first)
        replacement = ready(emu, "launch (new).mp4", second)
        before = media(emu, original)
        thumbnail_before = json_of(
            HTTP.request("GET", f"{emu.url}v1/medias/{original}.json", headers=bearer())
        )["thumbnail"]["url"]

        answer = swap(emu, original, replacement)
        body = json_of(answer)
        queued = job_status(emu, body["background_job_status"])
        assert emu.wait_until_settled(5)
        finished = job_status(emu, body["background_job_status"])
        after, kept = media(emu, original), media(emu, replacement)
        swaps = emu.swaps()
        assert emu.wait_until_webhooks_delivered(5)

    assert answer.status == 200
    assert set(body) == {"message", "background_job_status", "media"}
    assert set(body["background_job_status"]) == {"id", "hashed_id", "status"}
    assert body["media"]["hashed_id"] == original
    assert (queued, finished) == ("queued", "finished")
    # The original keeps its ids, name and project; its file is the replacement's.
    for field in ("hashed_id", "id", "name", "project_id", "created", "status"):
        assert after[field] == before[field]
    assert (after["bytes"], after["sha256"]) == (len(second), hashlib.sha256(second).hexdigest())
    # The replacement stays a media of its own (Wistia's docs do not say it goes away).
    assert (kept["status"], kept["deleted"], kept["sha256"]) == ("ready", False, after["sha256"])
    assert swaps == [
        {
            "job_id": body["background_job_status"]["id"],
            "hashed_id": original,
            "replacement_hashed_id": replacement,
            "bytes": len(second),
            "sha256": hashlib.sha256(second).hexdigest(),
            "previous_bytes": len(first),
            "previous_sha256": hashlib.sha256(first).hexdigest(),
            "at": swaps[0]["at"],
        }
    ]
    updated = receiver.events()[-1]
    assert (updated["type"], updated["payload"]["media"]["id"]) == ("media.updated", original)
    assert updated["payload"]["previous_attributes"] == {"thumbnail": {"url": thumbnail_before}}
    assert updated["payload"]["media"]["name"] == "launch.mp4"


def test_swaps_are_recorded_in_the_control_plane(wistia_emulator: WistiaEmulator) -> None:
    original = ready(wistia_emulator, "a.mp4", mp4_bytes(b"a"))
    replacement = ready(wistia_emulator, "b.mp4", mp4_bytes(b"b"))

    assert swap(wistia_emulator, original, replacement).status == 200
    assert wistia_emulator.wait_until_settled(5)
    control = EmulatorControl(wistia_emulator.url)

    assert control.swaps() == wistia_emulator.swaps()
    assert [(s["hashed_id"], s["replacement_hashed_id"]) for s in control.swaps()] == [
        (original, replacement)
    ]
    assert control.jobs() == wistia_emulator.jobs()
    assert [(j["kind"], j["status"]) for j in control.jobs()] == [("swap", "finished")]


def test_the_last_of_several_swaps_wins(wistia_emulator: WistiaEmulator) -> None:
    original = ready(wistia_emulator, "clip.mp4", mp4_bytes(b"v1"))
    versions = [ready(wistia_emulator, f"v{n}.mp4", mp4_bytes(f"v{n}".encode())) for n in (2, 3)]

    for version in versions:
        assert swap(wistia_emulator, original, version).status == 200
    assert wistia_emulator.wait_until_settled(5)

    assert (
        media(wistia_emulator, original)["sha256"] == hashlib.sha256(mp4_bytes(b"v3")).hexdigest()
    )
    assert len(wistia_emulator.swaps()) == 2


def test_a_swap_of_an_unknown_media_is_404(wistia_emulator: WistiaEmulator) -> None:
    replacement = ready(wistia_emulator, "b.mp4", mp4_bytes())
    original = ready(wistia_emulator, "a.mp4", mp4_bytes())
    HTTP.request("DELETE", f"{wistia_emulator.url}v1/medias/{original}.json", headers=bearer())

    unknown = swap(wistia_emulator, "nosuchmedi", replacement)
    deleted = swap(wistia_emulator, original, replacement)
    unknown_replacement = swap(wistia_emulator, replacement, "nosuchmedi")

    assert [r.status for r in (unknown, deleted, unknown_replacement)] == [404, 404, 404]
    assert all(isinstance(json_of(r)["error"], str) for r in (unknown, deleted))
    assert wistia_emulator.jobs() == []


def test_a_replacement_of_another_type_is_refused(wistia_emulator: WistiaEmulator) -> None:
    video = ready(wistia_emulator, "talk.mp4", mp4_bytes())
    audio = ready(wistia_emulator, "talk.mp3", MP3)

    refused = swap(wistia_emulator, video, audio)

    assert refused.status == 400
    assert json_of(refused) == {
        "error": "Replacement media must be the same type as the original media (Video)."
    }
    assert wistia_emulator.jobs() == []


def test_audio_can_replace_audio(wistia_emulator: WistiaEmulator) -> None:
    original, replacement = (
        ready(wistia_emulator, "a.mp3", MP3),
        ready(wistia_emulator, "b.mp3", MP3),
    )

    assert swap(wistia_emulator, original, replacement).status == 200


def test_a_replacement_that_is_not_ready_is_refused(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    original = ready(wistia_emulator, "clip.mp4", mp4_bytes())
    failed = ready(wistia_emulator, "broken.mp4", b"not a video at all")
    source.hold()
    pending = json_of(import_url(wistia_emulator.url, source.add("/new.mp4", mp4_bytes())))

    not_ready = swap(wistia_emulator, original, pending["hashed_id"])
    not_media = swap(wistia_emulator, original, failed)
    source.release()

    assert (not_ready.status, not_media.status) == (400, 400)
    assert "must be ready" in json_of(not_ready)["error"]
    assert "failed" in json_of(not_media)["error"]
    assert wistia_emulator.swaps() == []


def test_an_original_that_is_not_ready_is_refused(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    replacement = ready(wistia_emulator, "new.mp4", mp4_bytes())
    source.hold()
    pending = json_of(import_url(wistia_emulator.url, source.add("/old.mp4", mp4_bytes())))

    refused = swap(wistia_emulator, pending["hashed_id"], replacement)
    source.release()

    assert refused.status == 400
    assert "original media must be ready" in json_of(refused)["error"]


@pytest.mark.parametrize("payload", [{}, {"replacement_media_id": ""}, {"replacement_media_id": 7}])
def test_a_swap_without_a_replacement_is_400(
    wistia_emulator: WistiaEmulator, payload: dict[str, Any]
) -> None:
    original = ready(wistia_emulator, "clip.mp4", mp4_bytes())

    refused = put(wistia_emulator, f"modern/medias/{original}/swap", payload)

    assert refused.status == 400
    assert isinstance(json_of(refused)["error"], str)


def test_a_media_cannot_replace_itself(wistia_emulator: WistiaEmulator) -> None:
    original = ready(wistia_emulator, "clip.mp4", mp4_bytes())

    assert swap(wistia_emulator, original, original).status == 400


def test_a_swap_fails_when_the_replacement_is_deleted_before_it_runs() -> None:
    with WistiaEmulator(processing_delay=0.3) as emu:
        original = ready(emu, "a.mp4", mp4_bytes(b"a"))
        replacement = ready(emu, "b.mp4", mp4_bytes(b"b"))
        before = media(emu, original)

        job = json_of(swap(emu, original, replacement))["background_job_status"]
        HTTP.request("DELETE", f"{emu.url}v1/medias/{replacement}.json", headers=bearer())
        assert emu.wait_until_settled(5)

        assert job_status(emu, job) == "failed"
        assert media(emu, original)["sha256"] == before["sha256"]
        assert emu.swaps() == []
        assert "deleted" in emu.jobs()[0]["error"]


def test_a_form_encoded_swap_is_understood(wistia_emulator: WistiaEmulator) -> None:
    original = ready(wistia_emulator, "a.mp4", mp4_bytes(b"a"))
    replacement = ready(wistia_emulator, "b.mp4", mp4_bytes(b"b"))

    answer = HTTP.request(
        "PUT",
        f"{wistia_emulator.url}modern/medias/{original}/swap",
        body=f"replacement_media_id={replacement}",
        headers={**bearer(), "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert answer.status == 200


def test_an_unknown_background_job_is_404_and_wrong_methods_405(
    wistia_emulator: WistiaEmulator,
) -> None:
    unknown = HTTP.request(
        "GET", f"{wistia_emulator.url}modern/background_job_status/42", headers=bearer()
    )
    get_swap = HTTP.request("GET", f"{wistia_emulator.url}modern/medias/x/swap", headers=bearer())
    post_archive = HTTP.request(
        "POST", f"{wistia_emulator.url}modern/medias/archive", headers=bearer()
    )

    assert unknown.status == 404
    assert (get_swap.status, get_swap.headers["Allow"]) == (405, "PUT")
    assert (post_archive.status, post_archive.headers["Allow"]) == (405, "PUT")


# --- archive ------------------------------------------------------------------------------


def test_archive_marks_medias_archived_in_a_background_job() -> None:
    with WistiaEmulator(processing_delay=0.2) as emu:
        kept = ready(emu, "kept.mp4", mp4_bytes())
        old = [ready(emu, f"old-{n}.mp4", mp4_bytes()) for n in range(2)]

        answer = put(emu, "modern/medias/archive", {"hashed_ids": [*old, "nosuchmedi"]})
        body = json_of(answer)
        while_queued = [m["archived"] for m in emu.medias()]
        assert emu.wait_until_settled(5)
        shown = json_of(HTTP.request("GET", f"{emu.url}v1/medias/{old[0]}.json", headers=bearer()))

        assert answer.status == 200
        assert set(body) == {"message", "background_job_status"}
        assert body["background_job_status"]["status"] == "queued"
        assert while_queued == [False, False, False]
        assert {m["hashed_id"]: m["archived"] for m in emu.medias()} == {
            kept: False,
            old[0]: True,
            old[1]: True,
        }
        assert (shown["archived"], shown["status"]) == (True, "ready")
        assert job_status(emu, body["background_job_status"]) == "finished"
        assert emu.jobs()[0]["result"] == {"archived": old, "not_found": ["nosuchmedi"]}


def test_archive_takes_up_to_100_hashed_ids(wistia_emulator: WistiaEmulator) -> None:
    hashed_ids = [f"media{n:05d}" for n in range(101)]

    hundred = put(wistia_emulator, "modern/medias/archive", {"hashed_ids": hashed_ids[:100]})
    too_many = put(wistia_emulator, "modern/medias/archive", {"hashed_ids": hashed_ids})

    assert hundred.status == 200
    assert too_many.status == 422  # Wistia: "Unprocessable entity, e.g. too many media"
    assert isinstance(json_of(too_many)["error"], str)


@pytest.mark.parametrize(
    "payload", [{}, {"hashed_ids": []}, {"hashed_ids": "abc"}, {"hashed_ids": [1]}]
)
def test_archive_without_hashed_ids_is_422(
    wistia_emulator: WistiaEmulator, payload: dict[str, Any]
) -> None:
    refused = put(wistia_emulator, "modern/medias/archive", payload)

    assert refused.status == 422
    assert wistia_emulator.jobs() == []


def test_archive_takes_hashed_ids_in_a_form_or_the_query_string(
    wistia_emulator: WistiaEmulator,
) -> None:
    a, b = (
        ready(wistia_emulator, "a.mp4", mp4_bytes()),
        ready(wistia_emulator, "b.mp4", mp4_bytes()),
    )

    form = HTTP.request(
        "PUT",
        f"{wistia_emulator.url}modern/medias/archive",
        body=f"hashed_ids%5B%5D={a}",
        headers={**bearer(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    query = HTTP.request(
        "PUT", f"{wistia_emulator.url}modern/medias/archive?hashed_ids%5B%5D={b}", headers=bearer()
    )
    assert wistia_emulator.wait_until_settled(5)

    assert (form.status, query.status) == (200, 200)
    assert [m["archived"] for m in wistia_emulator.medias()] == [True, True]


def test_an_archived_media_frees_its_place_under_the_video_limit(
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.set_video_limit(1)
    first = ready(wistia_emulator, "1.mp4", mp4_bytes())
    refused = upload_bytes(wistia_emulator.url, "2.mp4", mp4_bytes())

    put(wistia_emulator, "modern/medias/archive", {"hashed_ids": [first]})
    assert wistia_emulator.wait_until_settled(5)
    accepted = upload_bytes(wistia_emulator.url, "2.mp4", mp4_bytes())

    assert (refused.status, accepted.status) == (400, 200)


def test_a_deleted_media_is_not_archived(
    wistia_emulator: WistiaEmulator,
) -> None:
    gone = ready(wistia_emulator, "gone.mp4", mp4_bytes())
    HTTP.request("DELETE", f"{wistia_emulator.url}v1/medias/{gone}.json", headers=bearer())

    put(wistia_emulator, "modern/medias/archive", {"hashed_ids": [gone]})
    assert wistia_emulator.wait_until_settled(5)

    assert wistia_emulator.jobs()[0]["result"] == {"archived": [], "not_found": [gone]}
    assert media(wistia_emulator, gone)["archived"] is False
