"""The ports: every collaborator the core calls, as the core needs it. Adapters
(s3_to_wistia.adapters) implement them against AWS and Wistia; the unit tests implement
them in memory. Failures cross a port only as the exceptions of s3_to_wistia.errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from s3_to_wistia.contracts import (
    DeadLetterMessage,
    ImportRecord,
    MediaStatusChange,
    RecordFields,
    StatusWrite,
)
from s3_to_wistia.model import (
    Claim,
    ObjectInfo,
    ObjectRef,
    PendingMedia,
    PresignedUrl,
    ProbeAnswer,
    RecordKey,
    Status,
    WistiaAnswer,
)

if TYPE_CHECKING:
    from s3_to_wistia.budget import Booked, Later


class ObjectStore(Protocol):
    """The bucket (S3)."""

    def head(self, obj: ObjectRef) -> ObjectInfo:
        """What S3 says of the object version; ObjectGone when it is not there any more."""
        ...

    def presign(self, obj: ObjectRef, expires_in: int) -> PresignedUrl: ...

    def probe(self, url: str) -> ProbeAnswer:
        """A ranged GET of one byte through the presigned URL; RetryableError when S3
        cannot be reached."""
        ...


class RecordStore(Protocol):
    """The import records (DynamoDB); the record is also the claim that makes an import
    happen once."""

    def claim(self, obj: ObjectRef, lease_until: float) -> Claim:
        """Make the record IN_PROGRESS for this invocation only. AlreadyHandled when a
        delivery finished it; ClaimedElsewhere while another invocation holds it."""
        ...

    def record_skipped(self, obj: ObjectRef, reason: str) -> None: ...

    def finish(self, obj: ObjectRef, claim: Claim, status: Status, fields: RecordFields) -> None:
        """Close the claim with its final status (or PENDING_RETRY, see release)."""
        ...

    def release(self, obj: ObjectRef, claim: Claim, fields: RecordFields) -> None:
        """Hand the object back for a later delivery (PENDING_RETRY), keeping `fields`."""
        ...

    def recorded_media(self, hashed_ids: list[str]) -> set[str]:
        """Which of these Wistia medias some record already holds."""
        ...

    def records_of_key(self, bucket: str, key: str) -> list[ImportRecord]:
        """Every record of one key: each version's import and each deletion."""
        ...


class KeyRecords(RecordStore, Protocol):
    """The import records as following deletions uses them."""

    def mark_object_deleted(self, record: ImportRecord) -> None:
        """The record's object (an unversioned one) and its media are gone: the same bytes
        uploaded again are imported again."""
        ...


class MediaRecords(Protocol):
    """The import records as the webhook receiver and the status poller use them: found by
    their media's hashed id, or listed while their media's final status is awaited."""

    def records_of_media(self, hashed_id: str) -> list[RecordKey]:
        """The records holding this Wistia media (the hashed-id index); none for a media
        this project did not create."""
        ...

    def apply_media_status(
        self, key: RecordKey, hashed_id: str, change: MediaStatusChange
    ) -> StatusWrite:
        """Write `change` if the record still holds this media and the change is newer
        than the status it holds (one conditional write)."""
        ...

    def claim_media_failure(
        self, key: RecordKey, hashed_id: str, now: str, stale_before: str
    ) -> ImportRecord | None:
        """SUBMITTED -> FAILED for a media Wistia failed, once: the record (as written) for
        the one caller that must send its dead letter now, else None. A failure whose
        dead letter has been due since before `stale_before` is handed out again."""
        ...

    def settle_media_failure(self, key: RecordKey, hashed_id: str, claimed_at: str) -> None:
        """The dead letter is sent: nothing is awaited of this record any more."""
        ...

    def release_media_failure(self, key: RecordKey, hashed_id: str, claimed_at: str) -> None:
        """The dead letter could not be sent: the next caller may send it at once."""
        ...

    def mark_swap_due(self, key: RecordKey, hashed_id: str, now: str) -> bool:
        """List a ready replacement for its swap; False when it is not due (any more)."""
        ...

    def pending_media(self, checked_before: str, limit: int) -> list[PendingMedia]:
        """Records still awaiting their media's final status (or its dead letter), last
        checked before `checked_before`, least recently checked first, at most `limit`."""
        ...


class DeadLetterSink(Protocol):
    """The dead-letter queue (SQS): the last place an object can go."""

    def send(self, message: DeadLetterMessage) -> None: ...


class WistiaApi(Protocol):
    """Wistia's Upload API and the part of its Data API the import uses."""

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """POST the import form, answer included by `deadline` (epoch seconds);
        WistiaUnreachable when no answer came back."""
        ...

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer: ...


class RateBudget(Protocol):
    """The account's request budget, shared by every caller of Wistia in the deployment
    (s3_to_wistia.budget): ask it before each request to Wistia."""

    def take(self, caller: str, deadline: float) -> bool:
        """Wait for this request's slot: True when it may be sent now, False when no slot
        can be had by `deadline` (epoch seconds; hand the work back then). `caller` is one
        of budget.SHARES (IMPORTS, CLI, BACKFILL, RECONCILE, POLLER): its priority.
        RetryableError when the budget cannot be read."""
        ...

    def pause(self, seconds: float) -> None:
        """Wistia answered 429 or 503 with Retry-After: nobody in the account gets a slot
        for `seconds`. RetryableError when the pause could not be shared."""
        ...


class ScheduleStore(Protocol):
    """Where the budget's schedule lives, for every process of the account (DynamoDB)."""

    def book(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later:
        """Atomically: the first free slot is the latest of the frontier, the pause's end
        and `now`. Later when that is after `latest_start` (nothing booked); else book
        `idle_slots` slots from it when it is `now` (the schedule was idle), `slots`
        otherwise, moving the frontier on by that many `spacing`s."""
        ...

    def pause(self, until: float) -> None:
        """No slot before `until` (a pause only ever grows)."""
        ...


class MediaRemover(Protocol):
    """The Data API's archive and delete of one media (following deletions)."""

    def archive_media(
        self, hashed_id: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer: ...

    def delete_media(
        self, hashed_id: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer: ...


class MediaLookup(Protocol):
    """The Data API's media list, asked for given medias (the status poller)."""

    def medias_by_hashed_ids(
        self, hashed_ids: list[str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """GET /v1/medias.json with up to 100 hashed_ids[] (and per_page=100)."""
        ...


class RequestBudget(Protocol):
    """The requests to Wistia a poller run may still send: its own allowance, booked on the
    deployment's shared budget (RateBudget) when it has a budget table."""

    def acquire(self, deadline: float) -> bool:
        """True when one more request may go now (waiting, at most until `deadline`, for
        one to come free); False when none will in time. RetryableError when the shared
        budget cannot be read."""
        ...

    def pause(self, seconds: float) -> None:
        """Wistia answered 429 or 503 with Retry-After: every caller sharing the budget
        waits `seconds`. RetryableError when the pause could not be shared."""
        ...


class SigningSecret(Protocol):
    """The webhook's secret key, from its secret."""

    def get(self, refresh: bool = False) -> str: ...


class TokenProvider(Protocol):
    """The Wistia API token, from its secret."""

    def get(self, refresh: bool = False) -> str: ...


class MetricSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class Log(Protocol):
    """The structured log (Powertools Logger): a message and key=value pairs."""

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None: ...

    def thread_safe_append_keys(self, **additional_keys: object) -> None: ...

    def thread_safe_clear_keys(self) -> None: ...
