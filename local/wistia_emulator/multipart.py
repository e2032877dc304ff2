"""Request bodies read in bounded chunks: Content-Length or chunked framing, and a small
streaming multipart/form-data parser (the `cgi` module is gone from Python 3.13).

Whatever the size of an upload, memory holds at most a chunk and a boundary's length;
the `file` part goes straight to disk while its size and sha256 are counted.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Protocol

CHUNK_SIZE = 64 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_FIELD_BYTES = 1024 * 1024  # every non-file field together
MAX_CHUNK_LINE = 1024


class ByteStream(Protocol):
    """What a body is read from: the socket's buffered reader, or io.BytesIO in tests."""

    def read(self, size: int = -1, /) -> bytes: ...

    def readline(self, size: int = -1, /) -> bytes: ...


class BadRequestBody(Exception):
    """The body cannot be read as declared (bad framing, malformed multipart, too large)."""


class ClientDisconnected(BadRequestBody):
    """The client closed the connection before sending the whole body."""


class BodyReader:
    """The request body, framed by Content-Length or `Transfer-Encoding: chunked`."""

    def __init__(self, stream: ByteStream, content_length: int | None, chunked: bool) -> None:
        self._stream = stream
        self._remaining = 0 if content_length is None else content_length
        self._chunked = chunked
        self._chunk_left = 0  # chunked: bytes left in the current chunk
        self._done = not chunked and self._remaining == 0

    @classmethod
    def from_headers(cls, stream: ByteStream, headers: Message) -> BodyReader:
        encoding = (headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in encoding:
            return cls(stream, None, chunked=True)
        raw_length = headers.get("Content-Length")
        if raw_length is None:
            return cls(stream, 0, chunked=False)
        try:
            length = int(raw_length)
        except ValueError:
            raise BadRequestBody(f"invalid Content-Length {raw_length!r}") from None
        if length < 0:
            raise BadRequestBody("negative Content-Length")
        return cls(stream, length, chunked=False)

    @property
    def finished(self) -> bool:
        return self._done

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        """Up to `size` bytes of the body; b"" once it is all read."""
        if self._done:
            return b""
        if self._chunked:
            return self._read_chunked(size)
        data = self._read_stream(min(size, self._remaining))
        if not data:
            raise ClientDisconnected("the body ended before Content-Length bytes")
        self._remaining -= len(data)
        self._done = self._remaining == 0
        return data

    def read_all(self, limit: int) -> bytes:
        """The whole body, refused when larger than `limit` (for small form bodies)."""
        parts: list[bytes] = []
        total = 0
        while chunk := self.read():
            total += len(chunk)
            if total > limit:
                self.drain()
                raise BadRequestBody(f"the form body is larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def drain(self) -> None:
        """Read and forget the rest, so the connection can serve the next request."""
        while self.read():
            pass

    def _read_stream(self, size: int, line: bool = False) -> bytes:
        try:
            return self._stream.readline(size) if line else self._stream.read(size)
        except OSError as error:  # a reset, or a client silent past the socket timeout
            raise ClientDisconnected(f"reading the body failed: {error}") from error

    def _read_chunked(self, size: int) -> bytes:
        if self._chunk_left == 0:
            self._chunk_left = self._next_chunk_size()
            if self._chunk_left == 0:
                self._skip_trailers()
                self._done = True
                return b""
        data = self._read_stream(min(size, self._chunk_left))
        if not data:
            raise ClientDisconnected("the body ended inside a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._read_stream(2) != b"\r\n":
            raise BadRequestBody("a chunk is not followed by CRLF")
        return data

    def _next_chunk_size(self) -> int:
        line = self._read_stream(MAX_CHUNK_LINE, line=True)
        if not line:
            raise ClientDisconnected("the body ended before its last chunk")
        size_text = line.split(b";", 1)[0].strip()  # chunk extensions are ignored
        try:
            return int(size_text, 16)
        except ValueError:
            raise BadRequestBody(f"invalid chunk size {size_text!r}") from None

    def _skip_trailers(self) -> None:
        while True:
            line = self._read_stream(MAX_CHUNK_LINE, line=True)
            if not line:
                raise ClientDisconnected("the body ended inside its trailers")
            if line in (b"\r\n", b"\n"):
                return


@dataclass
class StoredFile:
    """The `file` part, written to disk."""

    path: str
    filename: str
    content_type: str
    size: int
    sha256: str

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


@dataclass
class MultipartForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: StoredFile | None = None


def read_multipart_form(
    body: BodyReader, boundary: str, file_dir: str, file_field: str = "file"
) -> MultipartForm:
    """Parse a multipart/form-data body: text fields in memory, the part named `file_field`
    with a filename streamed into `file_dir`. Other file parts are read and dropped."""
    form = MultipartForm()
    field_bytes = 0
    stream = _MultipartStream(body, boundary.encode("latin-1"))
    try:
        for headers in stream.parts():
            name = headers.get_param("name", header="content-disposition")
            filename = headers.get_filename()
            if not isinstance(name, str):
                stream.read_part(None)  # a part without a name is not a form field
            elif filename is not None:
                if name == file_field and form.file is None:
                    form.file = _store_part(stream, headers, filename, file_dir)
                else:
                    stream.read_part(None)
            else:
                value = bytearray()

                def collect(data: bytes, value: bytearray = value) -> None:
                    nonlocal field_bytes
                    field_bytes += len(data)
                    if field_bytes > MAX_FIELD_BYTES:
                        raise BadRequestBody("the form fields are too large")
                    value.extend(data)

                stream.read_part(collect)
                form.fields[name] = value.decode("utf-8", errors="replace")
    except BaseException:
        if form.file is not None:
            form.file.delete()
        raise
    return form


def _store_part(
    stream: _MultipartStream, headers: Message, filename: str, file_dir: str
) -> StoredFile:
    digest = hashlib.sha256()
    size = 0
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept on disk past this function
        dir=file_dir, prefix="upload-", delete=False
    )

    def write(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        size += len(data)
        handle.write(data)

    try:
        with handle:
            stream.read_part(write)
    except BaseException:
        os.unlink(handle.name)
        raise
    # Browsers of old sent a full client path; keep the last component, whatever the OS.
    basename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return StoredFile(
        path=handle.name,
        filename=basename,
        content_type=headers.get_content_type(),
        size=size,
        sha256=digest.hexdigest(),
    )


class _MultipartStream:
    """Walks the parts of a multipart body holding one chunk (plus a boundary) in memory."""

    def __init__(self, body: BodyReader, boundary: bytes) -> None:
        if not boundary or len(boundary) > 200:
            raise BadRequestBody("multipart body without a usable boundary")
        self._body = body
        self._delimiter = b"\r\n--" + boundary
        # A CRLF in front lets the first boundary (at the very start) match the delimiter.
        self._buffer = bytearray(b"\r\n")
        self._part_consumed = True

    def parts(self) -> Iterator[Message]:
        """Each part's headers; read its content with read_part() before asking for the next
        (an unread part is skipped)."""
        self._read_to_delimiter(None)  # the preamble means nothing
        while (headers := self._start_next_part()) is not None:
            self._part_consumed = False
            yield headers
            if not self._part_consumed:
                self._read_to_delimiter(None)

    def read_part(self, sink: Callable[[bytes], None] | None) -> None:
        """Pass the current part's content to `sink` (None: drop it), up to the delimiter."""
        self._part_consumed = True
        self._read_to_delimiter(sink)

    def _start_next_part(self) -> Message | None:
        """After a delimiter: the next part's headers, or None after the closing one."""
        self._ensure(2)
        if self._buffer.startswith(b"--"):
            self._body.drain()  # the epilogue means nothing
            return None
        line_end = self._find(b"\r\n", MAX_PART_HEADER_BYTES)
        if self._buffer[:line_end].strip(b" \t"):  # only transport padding may follow
            raise BadRequestBody("garbage after a multipart boundary")
        del self._buffer[: line_end + 2]
        self._ensure(2)
        if self._buffer.startswith(b"\r\n"):  # a part with no headers at all
            del self._buffer[:2]
            return Message()
        headers_end = self._find(b"\r\n\r\n", MAX_PART_HEADER_BYTES)
        raw_headers = bytes(self._buffer[:headers_end]).decode("utf-8", errors="replace")
        del self._buffer[: headers_end + 4]
        return email.message_from_string(raw_headers + "\r\n\r\n")

    def _read_to_delimiter(self, sink: Callable[[bytes], None] | None) -> None:
        delimiter = self._delimiter
        keep = len(delimiter) - 1  # a delimiter may straddle two chunks
        while True:
            index = self._buffer.find(delimiter)
            if index >= 0:
                if sink is not None and index:
                    sink(bytes(self._buffer[:index]))
                del self._buffer[: index + len(delimiter)]
                return
            if len(self._buffer) > keep:
                if sink is not None:
                    sink(bytes(self._buffer[:-keep]))
                del self._buffer[:-keep]
            if not self._fill():
                raise BadRequestBody("the multipart body ended before its closing boundary")

    def _find(self, needle: bytes, limit: int) -> int:
        while True:
            index = self._buffer.find(needle)
            if index >= 0:
                return index
            if len(self._buffer) > limit:
                raise BadRequestBody("multipart part headers are too long")
            if not self._fill():
                raise BadRequestBody("the multipart body ended inside part headers")

    def _ensure(self, size: int) -> None:
        while len(self._buffer) < size:
            if not self._fill():
                raise BadRequestBody("the multipart body ended after a boundary")

    def _fill(self) -> bool:
        chunk = self._body.read(CHUNK_SIZE)
        if not chunk:
            return False
        self._buffer.extend(chunk)
        return True
