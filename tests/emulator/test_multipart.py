"""Contract: request bodies are read in bounded chunks, whatever the size of an upload.

The parser is checked directly (every read size, so a boundary straddles two reads), then
over HTTP with chunked and Content-Length bodies, then with a 64 MiB upload while the
memory of the process serving it is watched.
"""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from wistia_emulator import EmulatorControl, WistiaEmulator
from wistia_emulator.multipart import (
    BadRequestBody,
    BodyReader,
    ClientDisconnected,
    read_multipart_form,
)
from wistia_emulator.testing import HTTP, EmulatorProcess, bearer, json_of

BOUNDARY = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
MiB = 1024 * 1024
BIG_UPLOAD = 64 * MiB
# Bytes that look like a delimiter without being one, to trip a careless parser.
TRICKY_CONTENT = (
    b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n" + b"\r\n--\r\n" + bytes(range(256)) * 50 + b"\r"
)


class TrickleStream:
    """Hands out at most `step` bytes per read, so delimiters straddle reads."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(self._step if size < 0 else min(size, self._step))

    def readline(self, size: int = -1, /) -> bytes:
        return self._data.readline(size)


def part(name: str, content: bytes, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"Content-Disposition: {disposition}\r\n{extra}\r\n".encode() + content


def multipart(*parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    delimiter = f"--{BOUNDARY}".encode()
    body = preamble + b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts)
    return body + delimiter + b"--\r\n" + epilogue


def parse(body: bytes, spool: Path, step: int = 1 << 20) -> dict[str, object]:
    reader = BodyReader(TrickleStream(body, step), len(body), chunked=False)
    form = read_multipart_form(reader, BOUNDARY, str(spool))
    result: dict[str, object] = dict(form.fields)
    if form.file is not None:
        result["file"] = (form.file.filename, Path(form.file.path).read_bytes(), form.file.sha256)
        assert form.file.size == len(Path(form.file.path).read_bytes())
    return result


@pytest.mark.parametrize("step", [1, 2, 7, 45, 4096, 1 << 20])
def test_fields_and_file_survive_any_read_size(tmp_path: Path, step: int) -> None:
    body = multipart(
        part("api_password", b"secret"),
        part("file", TRICKY_CONTENT, filename="clip.mp4", extra="Content-Type: video/mp4\r\n"),
        part("name", "Café".encode()),
    )

    parsed = parse(body, tmp_path, step)

    assert parsed["api_password"] == "secret"
    assert parsed["name"] == "Café"
    assert parsed["file"] == (
        "clip.mp4",
        TRICKY_CONTENT,
        hashlib.sha256(TRICKY_CONTENT).hexdigest(),
    )


def test_preamble_and_epilogue_are_ignored(tmp_path: Path) -> None:
    body = multipart(
        part("name", b"x"), preamble=b"This is a preamble.\r\n", epilogue=b"and an epilogue"
    )

    assert parse(body, tmp_path) == {"name": "x"}


def test_an_empty_file_part_is_a_file(tmp_path: Path) -> None:
    assert parse(multipart(part("file", b"", filename="empty.mp4")), tmp_path)["file"] == (
        "empty.mp4",
        b"",
        hashlib.sha256(b"").hexdigest(),
    )


def test_rfc_5987_and_windows_path_filenames(tmp_path: Path) -> None:
    encoded = multipart(
        b"Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9.mp4\r\n\r\nx"
    )
    windows = multipart(part("file", b"x", filename="C:\\Users\\me\\clip.mp4"))

    assert parse(encoded, tmp_path)["file"] == ("café.mp4", b"x", hashlib.sha256(b"x").hexdigest())
    assert parse(windows, tmp_path)["file"] == ("clip.mp4", b"x", hashlib.sha256(b"x").hexdigest())


def test_other_file_parts_are_read_and_dropped(tmp_path: Path) -> None:
    body = multipart(
        part("thumbnail", b"jpeg", filename="thumb.jpg"),
        part("file", b"video", filename="clip.mp4"),
        part("file", b"second", filename="again.mp4"),
    )

    parsed = parse(body, tmp_path)

    assert parsed["file"] == ("clip.mp4", b"video", hashlib.sha256(b"video").hexdigest())
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(
    "body",
    [
        multipart(part("file", b"abc", filename="a.mp4"))[:-8],  # no closing boundary
        f"--{BOUNDARY}\r\nContent-Disposition: form-data".encode(),  # headers cut short
        f"--{BOUNDARY}garbage\r\n\r\nx\r\n--{BOUNDARY}--".encode(),
    ],
    ids=["unclosed", "cut-headers", "garbage-after-boundary"],
)
def test_malformed_bodies_are_refused_and_leave_no_file(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(BadRequestBody):
        parse(body, tmp_path, step=3)

    assert list(tmp_path.iterdir()) == []


def test_chunked_bodies_are_decoded_with_extensions_and_trailers() -> None:
    wire = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\nNEXT REQUEST"
    stream = io.BytesIO(wire)

    reader = BodyReader(stream, None, chunked=True)

    assert reader.read_all(limit=100) == b"hello world"
    assert stream.read() == b"NEXT REQUEST"  # nothing of the next request was eaten


def test_a_body_shorter_than_its_content_length_is_a_disconnect() -> None:
    reader = BodyReader(io.BytesIO(b"short"), 100, chunked=False)

    with pytest.raises(ClientDisconnected):
        reader.drain()


def streamed_upload(size: int, block: int = 256 * 1024) -> tuple[Iterator[bytes], int, str]:
    """A multipart body of a `size`-byte file, generated block by block: its parts,
    its length and the file's sha256."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    pattern = (bytes(range(256)) * (block // 256))[:block]
    digest = hashlib.sha256()
    for _ in range(size // block):
        digest.update(pattern)

    def generate() -> Iterator[bytes]:
        yield head
        for _ in range(size // block):
            yield pattern
        yield tail

    return generate(), len(head) + size // block * block + len(tail), digest.hexdigest()


def multipart_headers(length: int | None) -> dict[str, str]:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **bearer()}
    if length is not None:
        headers["Content-Length"] = str(length)
    return headers


def test_a_chunked_upload_over_http(wistia_emulator: WistiaEmulator) -> None:
    body, _, sha256 = streamed_upload(2 * MiB)

    # No Content-Length: urllib3 sends the generator with Transfer-Encoding: chunked.
    response = HTTP.request("POST", wistia_emulator.url, body=body, headers=multipart_headers(None))

    assert response.status == 200
    assert json_of(response)["name"] == "big.mp4"
    [media] = wistia_emulator.medias()
    assert (media["bytes"], media["sha256"]) == (2 * MiB, sha256)


def test_a_64_mib_upload_keeps_memory_flat(wistia_emulator: WistiaEmulator) -> None:
    body, length, sha256 = streamed_upload(BIG_UPLOAD)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        response = HTTP.request(
            "POST", wistia_emulator.url, body=body, headers=multipart_headers(length)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status == 200
    [media] = wistia_emulator.medias()
    assert (media["bytes"], media["sha256"]) == (BIG_UPLOAD, sha256)
    # Client and server share this process: both together stay far below the upload's size.
    assert peak - before < 4 * MiB, f"peak Python allocations grew by {peak - before} bytes"


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_64_mib_upload_keeps_the_servers_peak_rss_flat() -> None:
    with EmulatorProcess("--port", "0", "--token", "test-token", "--quiet") as emulator:
        control = EmulatorControl(emulator.url)
        HTTP.request("GET", emulator.url + "v1/medias.json", headers=bearer())  # warm up
        rss_before = peak_rss_bytes(emulator.process.pid)
        body, length, sha256 = streamed_upload(BIG_UPLOAD)

        response = HTTP.request("POST", emulator.url, body=body, headers=multipart_headers(length))
        rss_after = peak_rss_bytes(emulator.process.pid)

        assert response.status == 200
        [media] = control.medias()
        assert media["sha256"] == sha256
    assert rss_after - rss_before < 16 * MiB, f"peak RSS grew by {rss_after - rss_before} bytes"
