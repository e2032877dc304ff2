"""The project's small vocabulary: objects to import, what S3 says of them, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"  # claimed by one invocation; internal, short-lived
    PENDING_RETRY = "PENDING_RETRY"  # a retryable failure; the event comes back to finish it
    SUBMITTED = "SUBMITTED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    DELETED = "DELETED"  # the record of an object's deletion (its own record, see Removal)


@dataclass(frozen=True)
class ObjectRef:
    """One object version named by an event, its key already decoded."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    # The original S3 record or EventBridge event, kept so a dead letter can be redriven.
    source_event: dict[str, Any] = field(compare=False, repr=False)
    # S3's order of the key's writes and deletions (hex; absent from backfills and redrives).
    sequencer: str | None = field(default=None, compare=False)

    @property
    def version(self) -> str:
        """The record's sort key: S3's versionId, else the ETag (unversioned buckets)."""
        return self.version_id or self.etag or "unknown"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Removal:
    """One object deletion named by an event: a delete marker (versioned bucket), a version
    deleted for good, or an unversioned object deleted."""

    bucket: str
    key: str
    version_id: str | None  # the delete marker's, or the deleted version's
    sequencer: str | None
    delete_marker: bool
    source_event: dict[str, Any] = field(compare=False, repr=False)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def as_key_ref(self) -> ObjectRef:
        """The key itself, whatever version is current (to ask S3 whether it still has one)."""
        return ObjectRef(self.bucket, self.key, None, None, None, self.source_event)

    def as_record_ref(self) -> ObjectRef:
        """The deletion's own record: `deleted:` and the version or the sequencer, so it
        never shares a key with an object version's import record."""
        mark = self.version_id or self.sequencer or "unknown"
        return ObjectRef(
            bucket=self.bucket,
            key=self.key,
            version_id=f"deleted:{mark}",
            etag=None,
            size=None,
            source_event=self.source_event,
            sequencer=self.sequencer,
        )


@dataclass(frozen=True)
class ObjectInfo:
    """What one HEAD says of the object."""

    size: int
    content_type: str | None
    metadata: dict[str, str]
    # What decides whether S3 serves it through a presigned URL at all.
    storage_class: str | None = None  # None is STANDARD
    archive_status: str | None = None  # Intelligent-Tiering's ARCHIVE_ACCESS, DEEP_ARCHIVE_ACCESS
    restore: str | None = None  # x-amz-restore: 'ongoing-request="false", expiry-date=...'
    encryption: str | None = None  # AES256, aws:kms, aws:kms:dsse
    kms_key_id: str | None = None
    etag: str | None = None
    version_id: str | None = None  # None in a bucket that never had versioning


@dataclass(frozen=True)
class ProbeAnswer:
    """What S3 answered a ranged GET of one byte through the presigned URL: what Wistia's
    fetch would get."""

    status: int
    error_code: str | None = None
    error_message: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class PresignedUrl:
    url: str
    expires_at: float  # epoch seconds: the earlier of X-Amz-Expires and the credentials' expiry


@dataclass(frozen=True)
class WistiaAnswer:
    status: int
    body: bytes
    content_type: str
    retry_after: str | None


@dataclass(frozen=True)
class Claim:
    """One invocation's hold on an object version's record, and what earlier ones left."""

    claim_id: str
    # Submissions made by earlier invocations whose answer never came back.
    earlier_attempts: int
    first_submit_at: str | None
    # When an earlier invocation's submission last timed out (Wistia may still be at it).
    timed_out_at: str | None = None


@dataclass(frozen=True)
class Outcome:
    status: Status
    object: ObjectRef
    detail: str = ""
    # An earlier delivery (an event or a backfill) had already finished the object.
    earlier: bool = False


@dataclass(frozen=True)
class RecordKey:
    """The key of one import record: s3://bucket/key and the object version."""

    object_uri: str
    object_version: str


@dataclass(frozen=True)
class MediaEvent:
    """One thing learned about a Wistia media's processing: a webhook event, or what the
    status poller read from the Data API."""

    uuid: str
    type: str  # media.processing, media.ready, ...; "poll" for the poller's readings
    hashed_id: str
    # The processing status it says (queued, processing, ready, failed, deleted), or None
    # for an event type that says nothing about it (media.created, media.updated, ...).
    status: str | None
    # generated_at (or when the poller read it), ISO-8601 UTC with milliseconds.
    generated_at: str


@dataclass(frozen=True)
class PendingMedia:
    """A record whose media's final status is not known yet (or whose failure is not yet
    dead-lettered), as the pending-status index lists it."""

    key: RecordKey
    hashed_id: str
    media_status: str | None
    checked_at: str


@dataclass(frozen=True)
class ImportOptions:
    """What one caller asks of an import beyond the function's settings: a backfill's
    job-wide project and Wistia's hint for bulk uploads. The event path passes none."""

    project_id: str | None = None  # below the object's own metadata, above the settings
    low_priority: bool = False
