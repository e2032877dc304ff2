"""A multipart/form-data body streamed from a file on disk, for the Upload API's file upload.

The body is produced chunk by chunk, so memory holds one chunk whatever the file's size,
and its length is known before the first byte is sent: the request carries a
Content-Length (some servers refuse a chunked upload, and a length lets them refuse a
too-large file before it is sent). Standard library and urllib3 only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from urllib3.fields import RequestField
from urllib3.filepost import choose_boundary

CHUNK_SIZE = 1024 * 1024
OCTET_STREAM = "application/octet-stream"


class SourceFileError(Exception):
    """The file could not be sent as it was when checked: it changed, went away or could not
    be read. Not an OSError, so an HTTP client cannot mistake it for a network failure."""


@dataclass
class MultipartFile:
    """One file and the text fields that go with it, as a multipart/form-data body.

    `expected_size` is the size the caller checked (stat) before deciding to send the file;
    each call of `chunks()` opens the file anew, so a retry sends it again from the start.
    """

    path: str
    filename: str
    expected_size: int
    fields: Mapping[str, str] = field(default_factory=dict)
    file_field: str = "file"
    file_content_type: str = OCTET_STREAM
    chunk_size: int = CHUNK_SIZE
    boundary: str = field(default_factory=choose_boundary)
    # True once the last byte of the body was handed to the connection: from then on the
    # server may have the whole request, and may act on it even if its answer is lost.
    sent_everything: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        parts = []
        for name, value in self.fields.items():
            parts.append(self._part_head(RequestField(name=name, data=value), None))
            parts.append(value.encode("utf-8") + b"\r\n")
        upload = RequestField(name=self.file_field, data=b"", filename=self.filename)
        parts.append(self._part_head(upload, self.file_content_type))
        self._head = b"".join(parts)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_length(self) -> int:
        return len(self._head) + self.expected_size + len(self._tail)

    def chunks(self, on_progress: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The whole body; `on_progress(n)` after each n bytes of the file are handed on."""
        self.sent_everything = False
        yield self._head
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below, around the yields
        except OSError as error:
            raise SourceFileError(f"cannot read {self.path}: {error.strerror}") from error
        with handle:
            before = os.fstat(handle.fileno())
            if before.st_size != self.expected_size:
                raise SourceFileError(
                    f"{self.path} is now {before.st_size} bytes, not {self.expected_size}"
                )
            left = self.expected_size
            while left:
                try:
                    chunk = handle.read(min(self.chunk_size, left))
                except OSError as error:
                    raise SourceFileError(f"cannot read {self.path}: {error.strerror}") from error
                if not chunk:
                    raise SourceFileError(f"{self.path} got shorter while it was being sent")
                left -= len(chunk)
                yield chunk
                if on_progress is not None:
                    on_progress(len(chunk))
            after = os.fstat(handle.fileno())
        # Checked before the closing boundary: a server never sees a complete body that is
        # not the file as it was.
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise SourceFileError(f"{self.path} was modified while it was being sent")
        yield self._tail
        self.sent_everything = True

    def _part_head(self, part: RequestField, content_type: str | None) -> bytes:
        # urllib3 renders the part's headers, quoting names and filenames as browsers do.
        part.make_multipart(content_type=content_type)
        return f"--{self.boundary}\r\n".encode("ascii") + part.render_headers().encode("utf-8")
