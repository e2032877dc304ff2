"""Is this file media Wistia can process? Decided from its first bytes, as a transcoder
probing the container would: a renamed text file or an HTML error page ends `failed`.

Only the container's signature is checked, not the streams inside it: a file that starts
like an MP4 is taken for one. Images and documents, which Wistia hosts too, are outside
what the emulator models (audio and video) and fail like any other unknown file.
"""

from __future__ import annotations

HEAD_BYTES = 512  # enough for two MPEG-TS packets (and the M2TS timestamp prefix)
TS_PACKET = 188
M2TS_PACKET = 192
ASF_HEADER_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
MXF_PARTITION_KEY = bytes.fromhex("060e2b34020501010d010201")
# Top-level atoms an old QuickTime .mov may start with instead of `ftyp`.
QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


def container_of(head: bytes) -> str | None:
    """The container the bytes start with ("mp4/mov", "avi", "mkv/webm", ...), or None."""
    checks = (
        _iso_bmff,
        _riff,
        _aiff,
        _ebml,
        _mpeg_ts,
        _mpeg_ps,
        _ogg,
        _flac,
        _mpeg_audio,
        _asf,
        _flv,
        _mxf,
    )
    for check in checks:
        if found := check(head):
            return found
    return None


def _iso_bmff(head: bytes) -> str | None:
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "iso-bmff (mp4/mov/m4a/3gp)"
    if len(head) >= 8 and head[4:8] in QUICKTIME_ATOMS and int.from_bytes(head[:4]) >= 8:
        return "quicktime"
    return None


def _riff(head: bytes) -> str | None:
    if head[:4] != b"RIFF":
        return None
    return {b"AVI ": "avi", b"AVIX": "avi", b"WAVE": "wav"}.get(head[8:12])


def _aiff(head: bytes) -> str | None:
    return "aiff" if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC") else None


def _ebml(head: bytes) -> str | None:
    return "ebml (mkv/webm)" if head[:4] == b"\x1a\x45\xdf\xa3" else None


def _mpeg_ts(head: bytes) -> str | None:
    # A sync byte every packet: one alone is too weak a sign (0x47 is "G").
    for offset, packet, name in ((0, TS_PACKET, "mpeg-ts"), (4, M2TS_PACKET, "m2ts")):
        if len(head) > offset + packet and head[offset] == head[offset + packet] == 0x47:
            return name
    return None


def _mpeg_ps(head: bytes) -> str | None:
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg-ps"
    if head[:4] == b"\x00\x00\x01\xb3":  # an MPEG-1/2 video elementary stream (.m2v)
        return "mpeg-video"
    return None


def _ogg(head: bytes) -> str | None:
    return "ogg" if head[:4] == b"OggS" else None


def _flac(head: bytes) -> str | None:
    return "flac" if head[:4] == b"fLaC" else None


def _mpeg_audio(head: bytes) -> str | None:
    if head[:3] == b"ID3":
        return "mp3 (id3)"
    if len(head) < 3 or head[0] != 0xFF:
        return None
    if head[1] & 0xF6 == 0xF0:  # ADTS: 12-bit sync, layer 00
        return "aac (adts)"
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    if head[1] & 0xE0 == 0xE0 and layer != 0 and bitrate != 0xF:
        return "mpeg audio"
    return None


def _asf(head: bytes) -> str | None:
    return "asf (wmv/wma)" if head[:16] == ASF_HEADER_GUID else None


def _flv(head: bytes) -> str | None:
    return "flv" if head[:4] == b"FLV\x01" else None


def _mxf(head: bytes) -> str | None:
    return "mxf" if head[:12] == MXF_PARTITION_KEY else None
