"""The streamed multipart body: exactly the bytes a multipart parser reads back as the form
and the file, exactly Content-Length of them, and never a complete body for a file that
changed while it was sent."""

from __future__ import annotations

import hashlib
import io
import os
from email.message import Message
from pathlib import Path

import pytest

from s3_to_wistia.adapters.multipart import MultipartFile, SourceFileError
from wistia_emulator.multipart import BodyReader, read_multipart_form


def parsed(body: MultipartFile, spool: Path) -> tuple[dict[str, str], str, int, str]:
    data = b"".join(body.chunks())
    assert len(data) == body.content_length
    headers = Message()
    headers["Content-Length"] = str(len(data))
    form = read_multipart_form(
        BodyReader.from_headers(io.BytesIO(data), headers), body.boundary, str(spool)
    )
    assert form.file is not None
    return form.fields, form.file.filename, form.file.size, form.file.sha256


def test_the_body_carries_the_fields_and_the_whole_file(tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    body = MultipartFile(
        str(path),
        'Überblick "final".mp4',
        len(content),
        fields={"name": "Überblick", "project_id": "abc123"},
        chunk_size=64 * 1024,
    )
    spool = tmp_path / "spool"
    spool.mkdir()

    fields, filename, size, sha256 = parsed(body, spool)

    assert fields == {"name": "Überblick", "project_id": "abc123"}
    assert filename == "Überblick %22final%22.mp4"  # quoted the way browsers quote it
    assert (size, sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert body.sent_everything
    assert body.content_type == f"multipart/form-data; boundary={body.boundary}"


def test_progress_counts_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 250_000)
    seen: list[int] = []
    body = MultipartFile(str(path), "clip.mp4", 250_000, chunk_size=100_000)

    for _ in body.chunks(seen.append):
        pass

    assert seen == [100_000, 100_000, 50_000]


def test_a_file_that_changed_size_since_it_was_checked_is_not_sent(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 1000)
    body = MultipartFile(str(path), "clip.mp4", 999)

    with pytest.raises(SourceFileError, match="now 1000 bytes"):
        b"".join(body.chunks())
    assert not body.sent_everything


def test_a_file_modified_while_it_is_sent_never_gets_its_closing_boundary(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"x" * 300)
    body = MultipartFile(str(path), "clip.mp4", 300, chunk_size=100)
    sent = []

    with pytest.raises(SourceFileError, match="modified"):
        for chunk in body.chunks():
            sent.append(chunk)
            if len(sent) == 2:  # the head and the first chunk are out: now it changes
                with path.open("r+b") as handle:
                    handle.write(b"y")
                os.utime(path, ns=(0, 0))
    assert f"--{body.boundary}--".encode() not in b"".join(sent)


def test_a_file_gone_since_it_was_checked_is_a_file_error_not_a_network_one(
    tmp_path: Path,
) -> None:
    body = MultipartFile(str(tmp_path / "gone.mp4"), "gone.mp4", 10)

    with pytest.raises(SourceFileError, match="cannot read"):
        b"".join(body.chunks())
