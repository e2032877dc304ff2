"""Pure decisions: what to skip, how to read Wistia's answers, when to retry.

No I/O and no AWS types here, so every rule is tested on its own.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from s3_to_wistia.errors import PermanentError, RetryableError
from s3_to_wistia.model import ObjectInfo, ProbeAnswer, WistiaAnswer
from s3_to_wistia.redact import redact, redact_value

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


# --- what S3 could never serve through a presigned URL ------------------------------------------

ARCHIVE_STORAGE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
ARCHIVE_TIERS = frozenset({"ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"})
SSE_C_REASON = (
    "the object is encrypted with a customer-provided key (SSE-C): S3 serves it only to "
    "requests that send the key, which a presigned URL for Wistia cannot; store it with "
    "SSE-S3 or SSE-KMS instead, then redrive"
)
DOT_SEGMENTS_REASON = (
    "the key has '.' or '..' path segments: a URL fetcher resolves them and asks S3 for "
    "another key, so Wistia could never fetch this one; rename the object"
)


def unfetchable_key_reason(key: str) -> str | None:
    """Why no fetcher could GET this key through a URL, judging by the key alone."""
    if any(segment in (".", "..") for segment in key.split("/")):
        return DOT_SEGMENTS_REASON
    return None


def is_restored(restore: str | None) -> bool:
    """x-amz-restore says a restored copy is there: ongoing-request="false"."""
    return bool(restore) and 'ongoing-request="false"' in str(restore)


def unservable_reason(info: ObjectInfo) -> str | None:
    """Why S3 would refuse Wistia's GET of this object, from what its HEAD says."""
    tier = info.archive_status if info.archive_status in ARCHIVE_TIERS else None
    if info.storage_class in ARCHIVE_STORAGE_CLASSES or tier:
        if is_restored(info.restore):
            return None
        where = f"{info.storage_class or 'INTELLIGENT_TIERING'}" + (f", {tier}" if tier else "")
        if info.restore:
            return (
                f"the object is archived ({where}) and its restore is still running: S3 "
                "serves it once restored; redrive it then"
            )
        return (
            f"the object is archived ({where}): S3 serves it only once restored; restore it "
            "(aws s3api restore-object), then redrive"
        )
    return None


class ProbeVerdict(StrEnum):
    FETCHABLE = "fetchable"
    GONE = "gone"
    REFUSED = "refused"  # permanent: Wistia's fetch would be refused the same way
    RETRY = "retry"


def judge_probe(
    answer: ProbeAnswer, info: ObjectInfo, expected_etag: str | None
) -> tuple[ProbeVerdict, str]:
    """What a ranged GET through the presigned URL says of Wistia's coming fetch."""
    if answer.status in (200, 206):
        if expected_etag and answer.etag and _etag(answer.etag) != _etag(expected_etag):
            return ProbeVerdict.GONE, (
                "the object was overwritten before it could be imported; the newer object's "
                "own event imports it"
            )
        return ProbeVerdict.FETCHABLE, "fetchable"
    if answer.status == 404:
        return ProbeVerdict.GONE, "the object was deleted before it could be imported"
    if answer.status == 429 or answer.status >= 500:
        return (
            ProbeVerdict.RETRY,
            f"S3 could not serve the presigned URL now ({answer.status} {answer.error_code})",
        )
    return _refused_probe(answer.status, answer.error_code or "", answer.error_message or "", info)


def _refused_probe(
    status: int, code: str, message: str, info: ObjectInfo
) -> tuple[ProbeVerdict, str]:
    if code == "InvalidObjectState":
        return ProbeVerdict.REFUSED, unservable_reason(info) or (
            "the object is archived: S3 serves it only once restored; restore it, then redrive"
        )
    if status == 400 and (code == "InvalidRequest" or "encrypt" in message.lower()):
        return ProbeVerdict.REFUSED, SSE_C_REASON
    return _refused_url(status, code, message, info)


def _refused_url(
    status: int, code: str, message: str, info: ObjectInfo
) -> tuple[ProbeVerdict, str]:
    lowered = message.lower()
    if "kms" in lowered or (code == "AccessDenied" and info.encryption == "aws:kms"):
        key = info.kms_key_id or "its KMS key"
        return ProbeVerdict.REFUSED, (
            f"the object is encrypted with {key}, which the URL's signer may not use "
            "(kms:Decrypt): add the key to the KmsKeyArns parameter (and to the signing "
            "user's policy, if any), then redrive"
        )
    if "expired" in lowered:
        return ProbeVerdict.RETRY, (
            "the presigned URL expired at once (its signing credentials expired): the next "
            "attempt signs with fresh ones"
        )
    described = f"{status} {code}".strip()
    return ProbeVerdict.REFUSED, bounded(
        f"S3 refused the presigned URL ({described}): a bucket policy or the signer's "
        "permissions deny the GET, and Wistia's fetch would be refused the same way"
    )


def _etag(value: str) -> str:
    return value.strip().strip('"')


def media_name(
    key: str, override: str | None, rule: str = "file-name", strip_prefix: str = ""
) -> str:
    """The Wistia media name: the user's x-amz-meta-wistia-name, else the file name (the
    key's last segment) or the key (less `strip_prefix`), as the MEDIA_NAME_FROM rule says.
    Names that tell objects apart also keep the search for a lost answer from confusing two
    files of the same name."""
    name = (override or "").strip()
    if not name and rule == "key":
        # Of a long key, the end tells files apart: keep the last 255 characters.
        name = key.removeprefix(strip_prefix) if key != strip_prefix else key
        return name[-MAX_NAME_LENGTH:]
    name = name or posixpath.basename(key.rstrip("/")) or key
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
    """JSON when the answer is JSON (floats as Decimal for DynamoDB; NaN and Infinity kept
    as the words), else text."""
    text = answer.body.decode("utf-8", errors="replace")
    if "json" in answer.content_type.lower():
        try:
            return json.loads(text, parse_float=Decimal, parse_constant=str)
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


def judge_data_api_change(answer: WistiaAnswer, doing: str, refused: str, rights: str) -> None:
    """Wistia's answer to a change through the Data API (an archive, a delete, a swap): a
    2xx passes; 429 and 5xx raise RetryableError (the next try); anything else is a
    refusal for good (PermanentError): `refused` and Wistia's words, scrubbed as an
    import's are (it may quote what it was sent), then `rights` for a 401 or 403."""
    if 200 <= answer.status < 300:
        return
    if answer.status == 429 or answer.status >= 500:
        raise RetryableError(f"Wistia answered {answer.status} to the {doing}")
    body = storable_answer(redact_value(parse_body(answer)))
    words = bounded(redact(wistia_error_message(body) or f"HTTP {answer.status}"))
    hint = rights if answer.status in (401, 403) else ""
    raise PermanentError(
        f"{refused} ({answer.status}: {words}){hint}",
        http_status=answer.status,
        wistia_error=body,
    )


def bounded(text: str, limit: int = MAX_REASON_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "... (truncated)"


def storable_answer(body: Any) -> Any:
    """Wistia's answer as the record keeps it: whole when small, else its core fields
    (a media object) or its first characters (anything else); every value one DynamoDB
    can store."""
    body = storable(body)
    if len(json.dumps(body, default=str)) <= MAX_STORED_ANSWER_CHARS:
        return body
    if isinstance(body, dict):
        return {k: body[k] for k in MEDIA_FIELDS if k in body} | {"truncated": True}
    return bounded(str(body), MAX_STORED_ANSWER_CHARS)


# DynamoDB numbers: 38 significant digits, magnitudes from 1E-130 to below 1E+126.
_DYNAMODB_DIGITS = 38
_SMALLEST_EXPONENT = -130
_LARGEST_EXPONENT = 126


def storable(value: Any) -> Any:
    """A JSON value DynamoDB accepts as it is: numbers it cannot hold and texts that are not
    valid Unicode (lone surrogates) become text it can."""
    if isinstance(value, dict):
        return {_storable_scalar(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return _storable_scalar(value)


def _storable_scalar(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace").decode("utf-8")
    if isinstance(value, float):
        return str(value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return value if _fits_dynamodb(Decimal(value)) else str(value)
    return value


def _fits_dynamodb(number: Decimal) -> bool:
    """Exact arithmetic only: a decimal context would round a long number into range. Every
    digit counts, trailing zeros too: boto3 refuses to round any away."""
    if not number.is_finite():
        return False
    if number == 0:
        return True
    digits = len(number.as_tuple().digits)
    magnitude = number.adjusted()  # the power of ten of the first digit
    return digits <= _DYNAMODB_DIGITS and _SMALLEST_EXPONENT <= magnitude < _LARGEST_EXPONENT


def judge(answer: WistiaAnswer) -> Verdict:
    """The answer judged, its words and body scrubbed of credentials (Wistia may quote the
    signed URL it was given) and fit to be stored."""
    verdict = _judge(answer)
    return Verdict(
        verdict.accepted,
        verdict.retryable,
        bounded(redact(verdict.reason)),
        storable_answer(redact_value(verdict.body)),
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


def named_medias(medias: Any, name: str) -> list[dict[str, Any]]:
    """The medias of a Data API list that carry exactly this name and a hashed id."""
    if not isinstance(medias, list):
        return []
    return [
        media
        for media in medias
        if isinstance(media, dict) and media.get("name") == name and media.get("hashed_id")
    ]


def pick_lost_media(
    medias: Any, name: str, first_submit_at: str, taken: frozenset[str] = frozenset()
) -> dict[str, Any] | None:
    """The media a lost import created, from a Data API list: same name, created no earlier
    than our first submission (less clock skew), held by no other object's record (`taken`).
    The oldest such media wins, so every retry adopts the same one."""
    not_before = _parse_time(first_submit_at) - timedelta(seconds=CLOCK_SKEW_SECONDS)
    candidates = []
    for media in named_medias(medias, name):
        created = _created(media)
        if media["hashed_id"] not in taken and created is not None and created >= not_before:
            candidates.append((created, media))
    candidates.sort(key=lambda pair: pair[0])
    return candidates[0][1] if candidates else None


def _created(media: dict[str, Any]) -> datetime | None:
    try:
        return _parse_time(str(media.get("created")))
    except ValueError:
        return None


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when
    it is neither (a negative or non-ASCII number included)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value, re.ASCII):
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


def sequencer_order(sequencer: str, width: int) -> int:
    """A sequencer as a number to compare with others of the same key: S3's sequencers are
    hex strings of varying length, compared after padding the shorter with zeros on the
    right."""
    return int(sequencer.ljust(width, "0"), 16)


def is_later(sequencer: str | None, than: str | None) -> bool:
    """Whether `sequencer` names a later write or deletion of the key than `than`. An event
    without one (a backfill, a redrive) is never later than one that has it."""
    if sequencer is None:
        return False
    if than is None:
        return True
    width = max(len(sequencer), len(than))
    return sequencer_order(sequencer, width) > sequencer_order(than, width)
