"""Contract: a file Wistia cannot process ends `failed`, told apart by its first bytes as a
transcoder tells containers apart; audio and video in the common containers end `ready`."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import pytest

from local_stack.samples import avi_bytes, wav_bytes
from wistia_emulator import EmulatorControl, WistiaEmulator
from wistia_emulator.processing import NOT_MEDIA
from wistia_emulator.testing import (
    MP4_HEADER,
    SourceServer,
    WebhookReceiver,
    import_url,
    json_of,
    upload_bytes,
)

FILLER = bytes(range(256)) * 4


def ts_packets(count: int, prefix: bytes = b"") -> bytes:
    """MPEG-TS packets (sync byte 0x47 every 188 bytes), each behind `prefix` (M2TS: 4)."""
    packet = b"\x47\x40\x00\x10" + b"\xff" * 184
    return b"".join(prefix + packet for _ in range(count))


def stereo_wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        out.writeframes(b"\x00\x00" * 2 * 441)
    return buffer.getvalue()


MEDIA = {
    "mp4": MP4_HEADER + FILLER,
    "mov (ftyp qt)": b"\x00\x00\x00\x14ftypqt  \x20\x05\x03\x00qt  " + FILLER,
    "old mov (wide, mdat)": b"\x00\x00\x00\x08wide\x00\x01\x00\x00mdat" + FILLER,
    "m4a": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00" + FILLER,
    "3gp": b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x02\x003gp4" + FILLER,
    "avi (local stack sample)": avi_bytes(frames=2),
    "wav (local stack sample)": wav_bytes(seconds=0.05),
    "wav (stdlib, stereo)": stereo_wav(),
    "mkv": b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska" + FILLER,
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + FILLER,
    "mpeg-ts": ts_packets(3),
    "m2ts": ts_packets(3, prefix=b"\x00\x00\x00\x00"),
    "mpeg-ps (vob, mpg)": b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8" + FILLER,
    "mpeg video (m2v)": b"\x00\x00\x01\xb3\x16\x00\xf0\x15\xff\xff\xe0\x18" + FILLER,
    "ogg": b"OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00" + FILLER,
    "flac": b"fLaC\x00\x00\x00\x22\x10\x00\x10\x00" + FILLER,
    "mp3 (id3)": b"ID3\x04\x00\x00\x00\x00\x00\x00" + FILLER,
    "mp3 (frame sync)": b"\xff\xfb\x90\x64\x00\x00\x00\x00" + FILLER,
    "aac (adts)": b"\xff\xf1\x50\x80\x02\x1f\xfc" + FILLER,
    "wmv/wma (asf)": bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + FILLER,
    "flv": b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00" + FILLER,
    "aiff": b"FORM\x00\x00\x10\x00AIFFCOMM\x00\x00\x00\x12" + FILLER,
    "mxf": bytes.fromhex("060e2b34020501010d01020101020400") + FILLER,
}

NOT_MEDIA_FILES = {
    "plain text": b"Remember: upload the keynote.\n",
    "an html error page": b"<!DOCTYPE html><html><body><h1>403 Forbidden</h1></body></html>",
    "an s3 error": b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>',
    "json": b'{"error": "not found"}',
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + FILLER,
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + FILLER,
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + FILLER,
    "zip": b"PK\x03\x04\x14\x00\x00\x00" + FILLER,
    "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + FILLER,
    "webp (riff, not a/v)": b"RIFF\x24\x00\x00\x00WEBPVP8 " + FILLER,
    "text starting with G": b"GET / HTTP/1.1\r\n" + b"x" * 400,
    "zeros": b"\x00" * 1024,
}


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


def settled_upload(emu: WistiaEmulator, data: bytes, name: str = "clip.mp4") -> dict[str, object]:
    answer = json_of(upload_bytes(emu.url, name, data))
    assert emu.wait_until_settled(5)
    [media] = [m for m in emu.medias() if m["hashed_id"] == answer["hashed_id"]]
    return media


@pytest.mark.parametrize("data", MEDIA.values(), ids=MEDIA.keys())
def test_audio_and_video_in_common_containers_become_ready(
    wistia_emulator: WistiaEmulator, data: bytes
) -> None:
    media = settled_upload(wistia_emulator, data)

    assert (media["status"], media["error"]) == ("ready", None)


@pytest.mark.parametrize("data", NOT_MEDIA_FILES.values(), ids=NOT_MEDIA_FILES.keys())
def test_an_upload_that_is_not_media_fails(wistia_emulator: WistiaEmulator, data: bytes) -> None:
    media = settled_upload(wistia_emulator, data)

    assert media["status"] == "failed"
    assert NOT_MEDIA in str(media["error"])
    assert media["bytes"] == len(data)


def test_an_import_that_is_not_media_is_fetched_then_fails(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    page = NOT_MEDIA_FILES["an html error page"]
    url = source.add("/videos/launch.mp4", page, content_type="text/html")

    answer = json_of(import_url(wistia_emulator.url, url))
    assert wistia_emulator.wait_until_settled(5)

    [media] = wistia_emulator.medias()
    assert media["hashed_id"] == answer["hashed_id"]
    assert media["status"] == "failed"
    assert NOT_MEDIA in str(media["error"])
    assert (media["bytes"], media["sha256"] is not None) == (len(page), True)
    assert source.hits == ["/videos/launch.mp4"]


def test_an_import_of_a_large_video_is_told_from_its_first_bytes(
    wistia_emulator: WistiaEmulator, source: SourceServer
) -> None:
    url = source.add("/big.mkv", MEDIA["mkv"] + b"\x00" * (3 * 1024 * 1024))

    json_of(import_url(wistia_emulator.url, url))
    assert wistia_emulator.wait_until_settled(10)

    assert [m["status"] for m in wistia_emulator.medias()] == ["ready"]


def test_a_failed_media_sends_media_failed() -> None:
    with (
        WebhookReceiver("key") as receiver,
        WistiaEmulator(
            processing_delay=0.01, webhook_url=receiver.url, webhook_secret="key"
        ) as emu,
    ):
        media = settled_upload(emu, NOT_MEDIA_FILES["plain text"], "notes.mp4")
        assert emu.wait_until_webhooks_delivered(5)

    assert [e["type"] for e in receiver.events()][-1] == "media.failed"
    assert receiver.events()[-1]["payload"]["media"]["id"] == media["hashed_id"]


def test_sniffing_can_be_turned_off_for_tests_that_upload_any_bytes() -> None:
    with WistiaEmulator(processing_delay=0.01, sniff_media=False) as emu:
        lenient = settled_upload(emu, b"any bytes")
        control = EmulatorControl(emu.url)
        control.set_sniff_media(True)
        strict = settled_upload(emu, b"any bytes")
        control.set_sniff_media(False)
        lenient_again = settled_upload(emu, b"any bytes")

    assert (lenient["status"], strict["status"], lenient_again["status"]) == (
        "ready",
        "failed",
        "ready",
    )
