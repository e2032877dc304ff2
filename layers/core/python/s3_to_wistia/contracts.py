"""The two contracts other programs read: the import record and the dead-letter message
(../shared/CONTRACT.md). Each has one writer and one reader, here, used by the functions,
the operators' tools and the tests alike, so the shapes cannot drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus

from s3_to_wistia.model import ObjectRef

# SQS takes 256 KiB by default; Wistia's HTML error pages must not crowd out the rest.
MAX_WISTIA_ERROR_CHARS = 4000
# What a dead letter keeps of an SQS message that is not an S3 event.
MAX_UNREADABLE_BODY_CHARS = 100_000

# The value of `media_watch` while a record waits for its media's final status: the
# pending-status index (by-media-watch) lists exactly the records that hold it.
MEDIA_WATCHING = "pending"
# The by-media-watch index's other partition: replacements ready to be swapped in.
SWAP_WATCHING = "swap"
# Wistia's processing statuses (../shared/CONTRACT.md, "Processing status").
MEDIA_STATUSES = ("queued", "processing", "ready", "failed", "deleted")
# Statuses after which nothing is awaited. A failed media is awaited until its dead letter
# is sent (see MediaStatusChange).
MEDIA_DONE = frozenset({"ready", "deleted"})
# Recording a new media (a first import or a redrive's) starts its processing status
# afresh: these attributes described the media the record held before.
PREVIOUS_MEDIA_ATTRIBUTES = (
    "media_status",
    "media_status_at",
    "media_ready_at",
    "media_event",
    "media_dead_letter_due",
)
MEDIA_FAILED_REASON = (
    "Wistia could not process the media (usually a format or size error, or a URL it could "
    "not fetch); a redrive imports the object again with a fresh URL"
)
# An S3 ETag (what an unversioned bucket's record holds as its object version).
_ETAG = re.compile(r'"?[0-9a-fA-F]{32}(-[0-9]+)?"?')


@dataclass(frozen=True, kw_only=True)
class RecordFields:
    """What an import writes into its record besides its key and status; None leaves an
    attribute as it is."""

    error: str | None = None
    http_status: int | None = None
    attempts: int | None = None
    # Submissions whose answer never came (Wistia may hold a media for them), when the first
    # was sent, and when one last timed out (Wistia may still be creating the media).
    unanswered_submits: int | None = None
    first_submit_at: str | None = None
    timed_out_at: str | None = None
    wistia_hashed_id: str | None = None
    wistia_media_id: int | None = None
    wistia_response: Any = None
    # The presigned URL without its query string: a signature is a credential.
    source_url: str | None = None
    url_expires_at: str | None = None
    submitted_at: str | None = None
    # Wistia answered none of the submissions, but its media list showed the import.
    recovered_lost_answer: bool | None = None
    # True when the URL names the S3 version, so Wistia fetches exactly these bytes; False
    # in an unversioned bucket, where an overwrite before Wistia's fetch would be fetched.
    version_pinned: bool | None = None
    # Set with each new media: the record waits for the media's final status (MEDIA_WATCHING,
    # so the pending-status index lists it) and was last checked then; the event that named
    # the object, so a media Wistia fails can be dead-lettered and redriven as it came.
    media_watch: str | None = None
    media_checked_at: str | None = None
    source_event: dict[str, Any] | None = None
    # S3's order of the key's writes and deletions (see rules.is_later).
    sequencer: str | None = None
    # A deletion's record (status DELETED): when it was followed, what became of the key's
    # media at Wistia, and which media that was (not `wistia_hashed_id`: the deletion did
    # not create it, and the status index must not find this record for it).
    deleted_at: str | None = None
    media_action: str | None = None
    media_action_hashed_id: str | None = None
    # ON_OVERWRITE=replace: the media this version's media is swapped into once ready (the
    # key's original media, whose hashed id, URLs and embeds stay), and how the swap went
    # (SWAP_STATES), Wistia's background job, when it was asked and when it finished.
    replaces_wistia_hashed_id: str | None = None
    swap_status: str | None = None
    swap_job_id: str | None = None
    swap_requested_at: str | None = None
    swapped_at: str | None = None

    def attributes(self) -> dict[str, Any]:
        """The attributes to write: every field that is set."""
        values = ((field.name, getattr(self, field.name)) for field in fields(self))
        written = {name: value for name, value in values if value is not None}
        if self.source_event is not None:
            # Only the functions read it back, whole: as one JSON text it costs a fraction of
            # a nested map to write and read, and holds any JSON (lone surrogates escaped).
            written["source_event"] = json.dumps(
                self.source_event, default=_json_default, separators=(",", ":")
            )
        return written


@dataclass(frozen=True, kw_only=True)
class ImportRecord(RecordFields):
    """One object version's import record, as stored."""

    bucket: str
    object_key: str
    object_version: str
    status: str
    created_at: str | None = None
    updated_at: str | None = None
    # The claim of the invocation importing it now (status IN_PROGRESS), and until when.
    claim_id: str | None = None
    lease_expires_at: Decimal | None = None
    # Set by the operators' redrive (and `s3-to-wistia import --again`) each time it
    # reopens the record.
    redrives: int | None = None
    redriven_at: str | None = None
    # The medias earlier imports of this object version created, oldest first, when an
    # operator imported it again on purpose (`s3-to-wistia import --again`).
    replaced_wistia_hashed_ids: list[str] | None = None
    # Wistia's processing of the media (MediaStatusChange writes them): its status, the
    # generated_at of the event applied last (or when the poller read it), when it became
    # ready, the order key of the event applied last, and since when the dead letter of a
    # failed media is being sent (absent once it is).
    media_status: str | None = None
    media_status_at: str | None = None
    media_ready_at: str | None = None
    media_event: str | None = None
    media_dead_letter_due: str | None = None

    @property
    def object_uri(self) -> str:
        return f"s3://{self.bucket}/{self.object_key}"

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any]) -> ImportRecord:
        """The one reader: a stored item (plain values, as boto3 deserialises them).
        Attributes this version does not know are ignored, so older readers keep working
        when the record gains attributes."""
        known = {field.name for field in fields(cls)}
        values = {name: value for name, value in attributes.items() if name in known}
        for name in (
            "http_status",
            "attempts",
            "unanswered_submits",
            "wistia_media_id",
            "redrives",
        ):
            if isinstance(values.get(name), Decimal):
                values[name] = int(values[name])
        if "object_key" not in values and "object_uri" in attributes:
            # Every writer sets bucket and object_key; derive them from the key if not.
            bucket, _, key = str(attributes["object_uri"]).removeprefix("s3://").partition("/")
            values.setdefault("bucket", bucket)
            values["object_key"] = key
        values.setdefault("status", "")
        if "source_event" in values:
            values["source_event"] = _source_event(values["source_event"])
        return cls(**values)

    def redrive_source_event(self) -> dict[str, Any]:
        """The event that imports this object version again: the one that named it, else
        (records written before it was kept) an S3 record rebuilt from the key."""
        source = self.source_event
        if isinstance(source, dict) and (
            source.get("eventSource") == "aws:s3" or source.get("source") == "aws.s3"
        ):
            return source
        version = self.object_version.strip('"')
        named = {"eTag": version} if _ETAG.fullmatch(version) else {"versionId": version}
        return {
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "bucket": {"name": self.bucket},
                "object": {"key": quote_plus(self.object_key, safe="/"), **named},
            },
        }


@dataclass(frozen=True)
class MediaStatusChange:
    """The one writer of a record's processing status: one status learned about its media,
    applied only when it is newer than the one stored (`order`, see media_events)."""

    status: str
    status_at: str
    order: str
    checked_at: str

    def sets(self) -> dict[str, Any]:
        values = {
            "media_status": self.status,
            "media_status_at": self.status_at,
            "media_event": self.order,
            "media_checked_at": self.checked_at,
        }
        if self.status not in MEDIA_DONE:
            # Still awaited (or, failed, awaiting its dead letter): the poller looks after it.
            values["media_watch"] = MEDIA_WATCHING
        return values

    def sets_if_absent(self) -> dict[str, Any]:
        """Kept from the first time: when the media became ready."""
        return {"media_ready_at": self.status_at} if self.status == "ready" else {}

    def removes(self) -> tuple[str, ...]:
        return ("media_watch",) if self.status in MEDIA_DONE else ()


@dataclass(frozen=True)
class StatusWrite:
    """What became of a MediaStatusChange: `applied` or not (an older or repeated event),
    and the record as it was before; None when no record holds that media (any more)."""

    applied: bool
    before: ImportRecord | None


@dataclass(frozen=True)
class DeadLetterMessage:
    """An object the function could not import, with what it takes to redrive it."""

    bucket: str | None
    object_key: str | None
    object_version: str | None
    reason: str
    http_status: int | None
    wistia_error: Any
    retryable: bool
    attempts: int
    failed_at: str
    # The original S3 record or EventBridge event: redriving sends it as it is.
    source_event: dict[str, Any] | None

    @classmethod
    def for_object(
        cls,
        obj: ObjectRef,
        reason: str,
        *,
        failed_at: str,
        http_status: int | None = None,
        wistia_error: Any = None,
        retryable: bool = False,
        attempts: int = 0,
    ) -> DeadLetterMessage:
        return cls(
            bucket=obj.bucket,
            object_key=obj.key,
            object_version=obj.version,
            reason=reason,
            http_status=http_status,
            wistia_error=wistia_error,
            retryable=retryable,
            attempts=attempts,
            failed_at=failed_at,
            source_event=obj.source_event,
        )

    @classmethod
    def for_media_failure(
        cls, record: ImportRecord, hashed_id: str, *, failed_at: str
    ) -> DeadLetterMessage:
        """A media Wistia accepted and then could not process: retryable, since a redrive
        imports the object again (with a fresh URL)."""
        return cls(
            bucket=record.bucket,
            object_key=record.object_key,
            object_version=record.object_version,
            reason=MEDIA_FAILED_REASON,
            http_status=None,
            wistia_error={"event": "media.failed", "hashed_id": hashed_id},
            retryable=True,
            attempts=record.attempts or 0,
            failed_at=failed_at,
            source_event=record.redrive_source_event(),
        )

    @classmethod
    def for_unreadable_message(
        cls, reason: str, body: str, message_id: str, *, failed_at: str
    ) -> DeadLetterMessage:
        """An SQS message that is not an S3 event: kept with its body, for a person to read."""
        return cls(
            bucket=None,
            object_key=None,
            object_version=None,
            reason=f"unreadable SQS message {message_id}: {reason}",
            http_status=None,
            wistia_error=None,
            retryable=False,
            attempts=0,
            failed_at=failed_at,
            source_event={
                "sqs_message_id": message_id,
                "body": body[:MAX_UNREADABLE_BODY_CHARS],
            },
        )

    def to_json(self) -> str:
        """The one writer: the message body, Wistia's error bounded in size."""
        body = {field.name: getattr(self, field.name) for field in fields(self)}
        body["wistia_error"] = _bounded_error(self.wistia_error)
        return json.dumps(body, default=_json_default, ensure_ascii=False)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> DeadLetterMessage | None:
        """The one reader: a parsed message body, or None when another writer sent it
        (Lambda's on-failure destination, EventBridge's dead-letter delivery)."""
        if "source_event" not in body or "reason" not in body:
            return None
        source = body.get("source_event")
        status = body.get("http_status")
        return cls(
            bucket=_text_or_none(body.get("bucket")),
            object_key=_text_or_none(body.get("object_key")),
            object_version=_text_or_none(body.get("object_version")),
            reason=str(body.get("reason") or "no reason given"),
            http_status=status
            if isinstance(status, int) and not isinstance(status, bool)
            else None,
            wistia_error=body.get("wistia_error"),
            retryable=bool(body.get("retryable", False)),
            attempts=int(body.get("attempts") or 0),
            failed_at=str(body.get("failed_at") or ""),
            source_event=source if isinstance(source, dict) else None,
        )

    def redrive_event(self) -> dict[str, Any] | None:
        """The event to invoke the function with, or None when the message holds none."""
        source = self.source_event
        if isinstance(source, dict) and source.get("eventSource") == "aws:s3":
            return {"Records": [source]}
        if isinstance(source, dict) and source.get("source") == "aws.s3":
            return source
        return None


def _source_event(stored: Any) -> dict[str, Any] | None:
    """The JSON text the record keeps (a map in records written before), as it came."""
    if isinstance(stored, str):
        try:
            stored = json.loads(stored)
        except ValueError:
            return None
    source = _plain_json(stored)
    return source if isinstance(source, dict) else None


def _plain_json(value: Any) -> Any:
    """A value read from DynamoDB with its numbers as JSON has them (ints stay ints)."""
    if isinstance(value, dict):
        return {k: _plain_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(item) for item in value]
    if isinstance(value, Decimal):
        return _json_default(value)
    return value


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _bounded_error(error: Any) -> Any:
    if error is None:
        return None
    text = error if isinstance(error, str) else json.dumps(error, default=_json_default)
    if len(text) <= MAX_WISTIA_ERROR_CHARS:
        return error
    return text[:MAX_WISTIA_ERROR_CHARS] + "... (truncated)"


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")
