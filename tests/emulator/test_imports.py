"""Contract: an import is fetched in the background like Wistia does it: queued, then
processing while the URL is fetched, then ready or failed with a reason."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wistia_emulator import WistiaEmulator
from wistia_emulator.processing import MISSING_EXTENSION, REMOTE_FETCH_DISABLED
from wistia_emulator.testing import HTTP, SourceServer, bearer, import_url, json_of, mp4_bytes

S3_EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><X-Amz-Expires>1</X-Amz-Expires></Error>"
)


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


def settled_media(emu: WistiaEmulator, hashed_id: str) -> dict[str, object]:
    assert emu.wait_until_settled(10)
    [media] = [m for m in emu.medias() if m["hashed_id"] == hashed_id]
    return media


def status_via_data_api(emu: WistiaEmulator, hashed_id: str) -> str:
    response = HTTP.request("GET", f"{emu.url}v1/medias/{hashed_id}.json", headers=bearer())
    return str(json_of(response)["status"])


def wait_for_status(emu: WistiaEmulator, hashed_id: str, status: str) -> None:
    deadline = time.monotonic() + 5
    while status_via_data_api(emu, hashed_id) != status:
        assert time.monotonic() < deadline, f"{hashed_id} never became {status}"
        time.sleep(0.01)


def test_an_import_becomes_ready_with_the_sources_bytes(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    content = mp4_bytes(bytes(range(256)) * 300)
    url = source.add("/videos/launch.mp4", content)

    answer = json_of(import_url(wistia_emulator.url, url))
    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["status"] == "ready"
    assert media["bytes"] == len(content)
    assert media["sha256"] == hashlib.sha256(content).hexdigest()
    assert media["error"] is None
    assert media["source_url"] == url
    assert source.hits == ["/videos/launch.mp4"]


def test_an_import_moves_from_queued_to_processing_to_ready(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    url = source.add("/slow.mp4", mp4_bytes(b"slow bytes"))
    source.hold()

    answer = json_of(import_url(wistia_emulator.url, url))
    first_status = status_via_data_api(wistia_emulator, answer["hashed_id"])
    wait_for_status(wistia_emulator, answer["hashed_id"], "processing")
    source.release()
    wait_for_status(wistia_emulator, answer["hashed_id"], "ready")

    assert first_status == "queued"


def test_an_import_that_404s_fails_with_the_status_and_body(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    answer = json_of(import_url(wistia_emulator.url, source.url("/missing.mp4")))

    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["status"] == "failed"
    assert "HTTP 404" in str(media["error"])
    assert "Not Found" in str(media["error"])
    assert status_via_data_api(wistia_emulator, answer["hashed_id"]) == "failed"


def test_an_expired_s3_url_fails_with_s3s_reason(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    url = source.add("/bucket/clip.mp4", S3_EXPIRED, status=403, content_type="application/xml")

    answer = json_of(import_url(wistia_emulator.url, url + "?X-Amz-Expires=1"))
    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["status"] == "failed"
    assert "HTTP 403" in str(media["error"])
    assert "Request has expired" in str(media["error"])


def test_an_empty_200_answer_fails(wistia_emulator: WistiaEmulator, source: SourceServer) -> None:
    answer = json_of(import_url(wistia_emulator.url, source.add("/empty.mp4", b"")))

    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["status"] == "failed"
    assert "empty" in str(media["error"])


def test_a_url_without_a_file_extension_fails(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    url = source.add("/download", b"bytes")

    answer = json_of(import_url(wistia_emulator.url, url + "?file=clip.mp4"))
    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["status"] == "failed"
    assert media["error"] == MISSING_EXTENSION
    assert source.hits == []  # Wistia refuses it without fetching


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/clip.mp4",
        "http://10.0.0.1/clip.mp4",
        "http://169.254.169.254/latest/meta-data.json",
        "http://127.0.0.1.nip.io/clip.mp4",
    ],
)
def test_non_loopback_urls_are_never_fetched(wistia_emulator: WistiaEmulator, url: str) -> None:
    answer = json_of(import_url(wistia_emulator.url, url))

    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["status"] == "failed"
    assert media["error"] == REMOTE_FETCH_DISABLED


def test_a_redirect_to_loopback_is_followed(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    moved = mp4_bytes(b"moved bytes")
    source.add("/real/clip.mp4", moved)
    url = source.redirect("/old/clip.mp4", "/real/clip.mp4")

    answer = json_of(import_url(wistia_emulator.url, url))
    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert (media["status"], media["bytes"]) == ("ready", len(moved))


def test_a_redirect_off_loopback_is_not_followed(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    url = source.redirect("/clip.mp4", "http://example.com/clip.mp4")

    answer = json_of(import_url(wistia_emulator.url, url))
    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert media["error"] == REMOTE_FETCH_DISABLED


def test_localhost_subdomains_reach_the_loopback_server(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    # S3 virtual-host style URLs against a local endpoint look like this.
    content = mp4_bytes(b"virtual host bytes")
    source.add("/clip.mp4", content)
    port = source.url("/").rsplit(":", 1)[1].split("/")[0]

    answer = json_of(import_url(wistia_emulator.url, f"http://bucket.localhost:{port}/clip.mp4"))
    media = settled_media(wistia_emulator, answer["hashed_id"])

    assert (media["status"], media["bytes"]) == ("ready", len(content))


def test_imports_are_fetched_by_a_bounded_pool(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    source.hold()
    urls = [source.add(f"/clip-{n}.mp4", mp4_bytes(b"x" * n)) for n in range(1, 13)]

    for url in urls:
        assert import_url(wistia_emulator.url, url).status == 200
    deadline = time.monotonic() + 5
    while source.max_concurrent < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # time for more fetches to start, were there no bound
    in_flight = source.max_concurrent
    statuses = {m["status"] for m in wistia_emulator.medias()}
    source.release()

    assert in_flight == 4
    assert statuses == {"queued", "processing"}
    assert wistia_emulator.wait_until_settled(10)
    assert {m["status"] for m in wistia_emulator.medias()} == {"ready"}


def test_a_stopped_emulator_removes_its_spool_files(tmp_path: Path) -> None:
    data_dir = tmp_path
    with WistiaEmulator(processing_delay=0.5, data_dir=str(data_dir)) as emu:
        HTTP.request("POST", emu.url, fields={"file": ("clip.mp4", b"x" * 1000)}, headers=bearer())
        spooled = list(data_dir.rglob("upload-*"))

    assert len(spooled) == 1  # the upload waits on disk while it "processes"
    assert list(data_dir.iterdir()) == []
