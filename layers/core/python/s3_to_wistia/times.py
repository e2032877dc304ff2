"""Timestamps as the records and messages write them: ISO-8601 UTC with a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(epoch: float) -> str:
    """Seconds precision: what users read (submitted_at, url_expires_at)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_precise(epoch: float) -> str:
    """Milliseconds precision: what code compares (timed_out_at, failed_at)."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """Epoch seconds of an ISO-8601 time; a time without zone is taken as UTC."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
