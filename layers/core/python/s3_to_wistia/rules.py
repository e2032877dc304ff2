"""Pure decisions: what to skip, how to read Wistia's answers, when to retry.

No I/O and no AWS types here, so every rule is tested on its own.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from s3_to_wistia.model import WistiaAnswer

MAX_NAME_LENGTH = 255
VIDEO_LIMIT_WORDS = "video limit"
# Wistia's words are kept for people to read, not whole: a record must stay far below
# DynamoDB's 400 KB item limit and a dead letter below SQS's 256 KiB.
MAX_REASON_CHARS = 1000
MAX_STORED_ANSWER_CHARS = 32_000
# What the record keeps of an oversized media answer.
MEDIA_FIELDS = ("id", "hashed_id", "name", "type", "created", "updated", "duration", "progress")


def extension_of(key: str) -> str:
    """The key's extension, lowercase and without the dot ('' when there is none)."""
    _, ext = posixpath.splitext(posixpath.basename(key))
    return ext[1:].lower()


def skip_reason_for_key(key: str, extensions: frozenset[str] | None) -> str | None:
    """Why an object is not imported, judging by its key alone; None to import it."""
    if key.endswith("/"):
        return "folder marker (key ends with '/')"
    if extensions is not None and extension_of(key) not in extensions:
        shown = extension_of(key) or "none"
        return f"extension '{shown}' is not in the import filter"
    return None


def skip_reason_for_size(size: int | None) -> str | None:
    if size == 0:
        return "zero-byte object"
    return None


def media_name(key: str, override: str | None) -> str:
    """The Wistia media name: the user's x-amz-meta-wistia-name, else the file name."""
    name = (override or "").strip() or posixpath.basename(key.rstrip("/")) or key
    return name[:MAX_NAME_LENGTH]


def project_for(
    key: str, override: str | None, project_map: tuple[tuple[str, str], ...], default: str | None
) -> str | None:
    """The Wistia project: the object's metadata, else the longest matching key prefix,
    else the default (None lets Wistia file it under Uploads_YYYY-MM-DD)."""
    if override and override.strip():
        return override.strip()
    for prefix, project in project_map:
        if key.startswith(prefix):
            return project
    return default


def without_query(url: str) -> str:
    """A presigned URL with its query string (and so its signature) removed."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


@dataclass(frozen=True)
class Verdict:
    """How to treat one answer from the Upload API."""

    accepted: bool
    retryable: bool
    reason: str
    body: Any  # the parsed JSON answer, or its text
    video_limit: bool = False


def parse_body(answer: WistiaAnswer) -> Any:
    """JSON when the answer is JSON (floats as Decimal for DynamoDB), else text."""
    text = answer.body.decode("utf-8", errors="replace")
    if "json" in answer.content_type.lower():
        try:
            return json.loads(text, parse_float=Decimal)
        except ValueError:
            pass
    return text


def wistia_error_message(body: Any) -> str | None:
    """The words of Wistia's error in either body shape it uses.

    2012: {"error": "This account has exceeded its video limit. ..."}
    today: {"error": {"code": "upload_failed", "detail": "..."}}
    """
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        detail = error.get("detail") or error.get("message") or error.get("code")
        return str(detail) if detail else None
    return None


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "... (truncated)"


def storable_answer(body: Any) -> Any:
    """Wistia's answer as the record keeps it: whole when small, else its core fields
    (a media object) or its first characters (anything else)."""
    if len(json.dumps(body, default=str)) <= MAX_STORED_ANSWER_CHARS:
        return body
    if isinstance(body, dict):
        return {k: body[k] for k in MEDIA_FIELDS if k in body} | {"truncated": True}
    return bounded(str(body), MAX_STORED_ANSWER_CHARS)


def judge(answer: WistiaAnswer) -> Verdict:
    verdict = _judge(answer)
    return Verdict(
        verdict.accepted,
        verdict.retryable,
        bounded(verdict.reason),
        storable_answer(verdict.body),
        verdict.video_limit,
    )


# Answers whose meaning is their status alone.
PERMANENT_REASONS = {
    401: "Wistia rejected the API token (401); check the token secret",
    403: "Wistia refused the import (403): the plan may lack this feature",
}


def _judge(answer: WistiaAnswer) -> Verdict:
    body = parse_body(answer)
    status = answer.status
    if status == 200:
        if isinstance(body, dict) and body.get("hashed_id"):
            return Verdict(True, False, "accepted", body)
        # A 200 without a media object is not an import we can record; Wistia may be degraded.
        return Verdict(False, True, "Wistia answered 200 without a media object", body)
    if status == 429:
        return Verdict(False, True, "Wistia rate limit exceeded (429)", body)
    if status >= 500 or status == 408:
        return Verdict(False, True, f"Wistia is unavailable ({status})", body)
    return _refusal(status, body)


def _refusal(status: int, body: Any) -> Verdict:
    """A permanent answer, in Wistia's words where it gave any."""
    if status in PERMANENT_REASONS:
        return Verdict(False, False, PERMANENT_REASONS[status], body)
    message = wistia_error_message(body)
    if not message:
        return Verdict(False, False, f"Wistia answered {status}", body)
    if status == 400 and VIDEO_LIMIT_WORDS in message.lower():
        return Verdict(False, False, message, body, video_limit=True)
    return Verdict(False, False, f"{message} ({status})", body)


# Wistia's clock and ours may differ: a lost import may look created a little "before" it.
CLOCK_SKEW_SECONDS = 120


def pick_lost_media(medias: Any, name: str, first_submit_at: str) -> dict[str, Any] | None:
    """The media a lost import created, from a Data API list: same name, created no earlier
    than our first submission (less clock skew). The oldest such media wins, so every
    retry adopts the same one."""
    if not isinstance(medias, list):
        return None
    not_before = _parse_time(first_submit_at) - timedelta(seconds=CLOCK_SKEW_SECONDS)
    candidates = []
    for media in medias:
        if not isinstance(media, dict) or media.get("name") != name or not media.get("hashed_id"):
            continue
        try:
            created = _parse_time(str(media.get("created")))
        except ValueError:
            continue
        if created >= not_before:
            candidates.append((created, media))
    candidates.sort(key=lambda pair: pair[0])
    return candidates[0][1] if candidates else None


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def retry_delay(
    attempt: int,
    retry_after: float | None,
    random_fraction: float,
    base: float = 0.5,
    cap: float = 20.0,
) -> float:
    """Full-jitter exponential backoff, never sooner than the server's Retry-After.

    attempt counts from 1 (the delay after the first failure).
    """
    backoff = random_fraction * min(cap, base * 2 ** (attempt - 1))
    if retry_after is not None:
        # Honour the server, then add a little jitter so throttled callers do not return in step.
        return retry_after + random_fraction * base
    return backoff
