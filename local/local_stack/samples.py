"""Sample media for `make run`, made on the fly: real (tiny) AVI and WAV files in pure Python,
so nothing is downloaded and no encoder is needed.

The AVI is uncompressed RGB video, the simplest form every player and transcoder reads:

    RIFF 'AVI '
      LIST 'hdrl'  avih (main header), LIST 'strl' (strh stream header, strf BITMAPINFOHEADER)
      LIST 'movi'  one '00db' chunk per frame (bottom-up BGR rows)
      idx1         one entry per frame: where its chunk is inside 'movi'
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass

AVIF_HASINDEX = 0x10
AVIIF_KEYFRAME = 0x10
FRAME_CHUNK_ID = b"00db"  # stream 00, uncompressed DIB frame


def chunk(fourcc: bytes, payload: bytes) -> bytes:
    """A RIFF chunk: id, little-endian size, payload, padded to an even length."""
    return fourcc + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def riff_list(list_type: bytes, *children: bytes) -> bytes:
    return chunk(b"LIST", list_type + b"".join(children))


def avi_bytes(
    width: int = 32, height: int = 24, frames: int = 12, fps: int = 12, hue: int = 0
) -> bytes:
    """An uncompressed 24-bit AVI of a colour bar sweeping across a gradient."""
    frame_data = [_frame(width, height, n, frames, hue) for n in range(frames)]
    frame_size = len(frame_data[0])
    main_header = struct.pack(
        "<10I4I",
        1_000_000 // fps,  # microseconds per frame
        frame_size * fps,  # max bytes per second
        0,  # padding granularity
        AVIF_HASINDEX,
        frames,  # total frames
        0,  # initial frames
        1,  # streams
        frame_size,  # suggested buffer size
        width,
        height,
        0,
        0,
        0,
        0,  # reserved
    )
    stream_header = struct.pack(
        "<4s4sIHHIIIIIIIIhhhh",
        b"vids",
        b"DIB ",
        0,  # flags
        0,  # priority
        0,  # language
        0,  # initial frames
        1,  # scale: rate / scale = frames per second
        fps,  # rate
        0,  # start
        frames,  # length, in frames
        frame_size,  # suggested buffer size
        0xFFFFFFFF,  # quality: driver default
        frame_size,  # sample size
        0,
        0,
        width,
        height,  # frame rectangle
    )
    bitmap_header = struct.pack(
        "<IiiHHIIiiII",
        40,  # size of this header
        width,
        height,  # positive: rows stored bottom-up
        1,  # planes
        24,  # bits per pixel
        0,  # BI_RGB: uncompressed
        frame_size,
        2835,
        2835,  # 72 dpi
        0,
        0,
    )
    header_list = riff_list(
        b"hdrl",
        chunk(b"avih", main_header),
        riff_list(b"strl", chunk(b"strh", stream_header), chunk(b"strf", bitmap_header)),
    )
    movi = riff_list(b"movi", *(chunk(FRAME_CHUNK_ID, data) for data in frame_data))
    # idx1 offsets count from the 'movi' list type, so the first frame chunk is at 4.
    index = b"".join(
        struct.pack("<4sIII", FRAME_CHUNK_ID, AVIIF_KEYFRAME, 4 + n * (8 + frame_size), frame_size)
        for n in range(frames)
    )
    return chunk(b"RIFF", b"AVI " + header_list + movi + chunk(b"idx1", index))


def _frame(width: int, height: int, n: int, frames: int, hue: int) -> bytes:
    """One frame: a gradient background with a bright bar at column n * width / frames."""
    bar = n * width // frames
    row_padding = b"\0" * (-(width * 3) % 4)  # DIB rows are 4-byte aligned
    rows = []
    for y in range(height):
        pixels = bytearray()
        for x in range(width):
            if abs(x - bar) <= 1:
                pixels += bytes((255, 255, 255))
            else:
                pixels += bytes(((hue + 8 * x) % 256, (4 * y) % 256, (hue * 3 + 5 * n) % 256))
        rows.append(bytes(pixels) + row_padding)
    return b"".join(rows)


def wav_bytes(seconds: float = 0.5, rate: int = 8000, frequency: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV of a sine tone."""
    count = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(count)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


@dataclass(frozen=True)
class Sample:
    """One object `make run` uploads, and where it must end up."""

    key: str
    body: bytes
    status: str  # the import record's expected status
    reason: str | None = None  # words the record's error must contain (SKIPPED, FAILED)
    delivered_twice: bool = False  # its S3 notification is handed to the function twice
    trips_video_limit: bool = False  # uploaded last, once the account is full
    # Wistia accepts the import, then cannot process the file: media.failed, a dead letter.
    fails_at_wistia: bool = False

    @property
    def importable(self) -> bool:
        """Reaches Wistia (accepted or not)."""
        return self.status == "SUBMITTED" or self.trips_video_limit or self.fails_at_wistia


def builtin_samples() -> list[Sample]:
    """Media with awkward names, the objects the function must skip, and one too many."""
    return [
        Sample("Product Demo (2026).avi", avi_bytes(hue=0), "SUBMITTED", delivered_twice=True),
        Sample("talks/C++ talk + Q&A.avi", avi_bytes(hue=70), "SUBMITTED"),
        Sample("audio/café déjà vu.wav", wav_bytes(), "SUBMITTED"),
        Sample("日本語のビデオ.avi", avi_bytes(hue=140), "SUBMITTED"),
        Sample("incoming/", b"", "SKIPPED", reason="folder marker"),
        Sample("incoming/empty.avi", b"", "SKIPPED", reason="zero-byte"),
        Sample("incoming/notes.txt", b"Remember: upload the keynote.\n", "SKIPPED", reason="'txt'"),
        # A file named like a video that is not one: Wistia accepts the import, then fails it.
        Sample(
            "Not really a video.avi",
            b"Meeting notes, saved with the wrong name.\n" * 8,
            "FAILED",
            reason="could not process the media",
            fails_at_wistia=True,
        ),
        Sample(
            "One video too many.avi",
            avi_bytes(hue=210),
            "FAILED",
            reason="video limit",
            trips_video_limit=True,
        ),
    ]
