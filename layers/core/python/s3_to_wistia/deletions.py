"""Following an object's deletion at Wistia, as ON_DELETE asks: keep its media, archive it
or delete it.

Every deletion event gets a record of its own (status DELETED, version `deleted:...`), so
a repeated or concurrent delivery is claimed once and does nothing twice. The media is
touched only when all of these hold:
- ON_DELETE is archive or delete;
- no write of the key is later than the deletion (S3's sequencer): an object deleted
  then uploaded again keeps its media, whatever order the events arrive in;
- S3 has no current version of the key any more (deleting an old version, or a key
  re-created since, leaves the media alone);
- a record of this project holds the media of the key's latest version: medias the
  project did not create are never touched.
A refusal (a token without delete rights, 401/403) is one dead letter that a redrive
follows again once the token has the rights; 429, 5xx and timeouts hand the event back.
The archive or delete is a request like any other: it waits for its slot in the account's
request budget, and a 429 or 503 with Retry-After pauses the budget for everyone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from s3_to_wistia.budget import IMPORTS, MIN_CALL_SECONDS, Unmetered, pause_if_told
from s3_to_wistia.config import Settings
from s3_to_wistia.contracts import DeadLetterMessage, ImportRecord, RecordFields
from s3_to_wistia.errors import (
    AlreadyHandled,
    ObjectGone,
    PermanentError,
    RetryableError,
    WistiaUnreachable,
)
from s3_to_wistia.model import Claim, Outcome, Removal, Status, WistiaAnswer
from s3_to_wistia.ports import (
    DeadLetterSink,
    KeyRecords,
    Log,
    MediaRemover,
    MetricSink,
    ObjectStore,
    RateBudget,
    TokenProvider,
)
from s3_to_wistia.rules import (
    is_later,
    judge_data_api_change,
    sequencer_order,
)
from s3_to_wistia.times import iso_now

DELETION_PREFIX = "deleted:"
# What became of the key's media (the record's media_action).
KEPT = "kept"
ARCHIVED = "archived"
DELETED = "deleted"
ALREADY_GONE = "already gone"
LEFT = "left alone"
GONE_AT_WISTIA = frozenset({ARCHIVED, DELETED, "already gone"})
# How long the claim on a deletion's record lasts beyond the invocation's deadline.
LEASE_RESERVE_SECONDS = 5.0


@dataclass(frozen=True)
class Decision:
    action: str
    why: str
    hashed_id: str | None = None


@dataclass
class RemovalFollower:
    settings: Settings
    storage: ObjectStore
    records: KeyRecords
    dead_letters: DeadLetterSink
    wistia: MediaRemover
    tokens: TokenProvider
    metrics: MetricSink
    log: Log
    clock: Callable[[], float] = time.time
    # The account's request budget, booked as the import function's (wiring shares the
    # importer's): deletions and imports come from the same S3 events.
    budget: RateBudget = field(default_factory=Unmetered)
    caller: str = IMPORTS

    def follow(self, removal: Removal, deadline: float) -> Outcome:
        """Record the deletion and, when ON_DELETE asks and nothing forbids it, archive or
        delete the key's media. Raises RetryableError to have the event delivered again."""
        ref = removal.as_record_ref()
        try:
            claim = self.records.claim(ref, lease_until=deadline + LEASE_RESERVE_SECONDS)
        except AlreadyHandled as done:
            self.log.info("duplicate deletion event ignored", record_status=done.status)
            return Outcome(Status(done.status), ref, "already followed", earlier=True)
        try:
            decision, latest = self._decide(removal)
            if latest is not None:
                decision = self._act(decision, deadline)
                if latest.version_pinned is False and decision.action in GONE_AT_WISTIA:
                    # Unversioned: the same bytes uploaded again get the same ETag, so the
                    # same record; it must let them be imported again.
                    self.records.mark_object_deleted(latest)
        except PermanentError as error:
            return self._refused(removal, claim, error)
        except RetryableError as error:
            self.records.release(ref, claim, RecordFields(error=str(error)))
            raise
        self.records.finish(
            ref,
            claim,
            Status.DELETED,
            RecordFields(
                deleted_at=iso_now(),
                media_action=decision.action,
                media_action_hashed_id=decision.hashed_id,
                error=decision.why,
                sequencer=removal.sequencer,
            ),
        )
        self.log.info(
            "deletion followed", media_action=decision.action, hashed_id=decision.hashed_id
        )
        self.metrics.add_metric(
            METRIC_OF_ACTION.get(decision.action, "DeletionsRecorded"), "Count", 1
        )
        return Outcome(Status.DELETED, ref, f"{decision.action}: {decision.why}")

    def _decide(self, removal: Removal) -> tuple[Decision, ImportRecord | None]:
        """What to do, and the import whose media it is done to (None: nothing to do)."""
        if self.settings.on_delete == KEPT_SETTING:
            return Decision(KEPT, "ON_DELETE is keep: the media stays at Wistia"), None
        writes = [
            r
            for r in self.records.records_of_key(removal.bucket, removal.key)
            if not r.object_version.startswith(DELETION_PREFIX)
        ]
        forbidden = self._forbidden(removal, writes)
        if forbidden:
            return Decision(LEFT, forbidden), None
        latest = latest_import(writes)
        if latest is None:
            return Decision(LEFT, "no media of this project holds the key"), None
        verb = "archive" if self.settings.on_delete == "archive" else "delete"
        # The key's media: the original a replacement was (or is to be) swapped into.
        media = latest.replaces_wistia_hashed_id or latest.wistia_hashed_id
        return Decision(verb, "the key's latest version was deleted", media), latest

    def _forbidden(self, removal: Removal, writes: list[ImportRecord]) -> str | None:
        """Why the key's media must stay, though the key was deleted."""
        if any(is_later(r.sequencer, removal.sequencer) for r in writes):
            return "the key was written again after this deletion"
        if self._key_exists(removal):
            return "S3 still has a current version of the key"
        return None

    def _key_exists(self, removal: Removal) -> bool:
        try:
            self.storage.head(removal.as_key_ref())
        except ObjectGone:
            return False
        return True

    def _act(self, decision: Decision, deadline: float) -> Decision:
        hashed_id = decision.hashed_id or ""
        token = self.tokens.get()
        if not self.budget.take(self.caller, deadline - MIN_CALL_SECONDS):
            raise RetryableError(
                f"no slot of the account's request budget left for the {decision.action} "
                "before the invocation's deadline"
            )
        try:
            if decision.action == "archive":
                answer = self.wistia.archive_media(hashed_id, token, deadline)
            else:
                answer = self.wistia.delete_media(hashed_id, token, deadline)
        except WistiaUnreachable as error:
            raise RetryableError(f"Wistia did not answer the {decision.action}: {error}") from None
        pause_if_told(self.budget, answer, self.clock())
        done = ARCHIVED if decision.action == "archive" else DELETED
        return judge_removal(answer, decision, done)

    def _refused(self, removal: Removal, claim: Claim, error: PermanentError) -> Outcome:
        ref = removal.as_record_ref()
        reason = str(error)
        self.records.finish(
            ref,
            claim,
            Status.FAILED,
            RecordFields(error=reason, http_status=error.http_status, sequencer=removal.sequencer),
        )
        self.dead_letters.send(
            DeadLetterMessage.for_object(
                ref,
                reason,
                failed_at=iso_now(),
                http_status=error.http_status,
                wistia_error=error.wistia_error,
            )
        )
        self.log.error("deletion not followed; sent to the dead-letter queue", reason=reason)
        self.metrics.add_metric("DeletionsFailed", "Count", 1)
        return Outcome(Status.FAILED, ref, reason)


KEPT_SETTING = "keep"
METRIC_OF_ACTION = {
    ARCHIVED: "MediaArchived",
    DELETED: "MediaDeleted",
    ALREADY_GONE: "MediaDeleted",
}


def latest_import(records: list[ImportRecord]) -> ImportRecord | None:
    """The import of the key's latest version that holds a media: the greatest sequencer
    (records without one, from backfills or redrives, count as older), then the latest
    submission."""
    imported = [r for r in records if r.status == Status.SUBMITTED.value and r.wistia_hashed_id]
    width = max((len(r.sequencer) for r in imported if r.sequencer), default=1)

    def order(record: ImportRecord) -> tuple[int, str]:
        sequence = sequencer_order(record.sequencer, width) if record.sequencer else -1
        return sequence, record.submitted_at or ""

    return max(imported, key=order, default=None)


def judge_removal(answer: WistiaAnswer, decision: Decision, done: str) -> Decision:
    """Wistia's answer to an archive or a delete: done, already gone (404), refused for good
    (401/403: the token's rights), or to be retried."""
    if answer.status == 404:
        return Decision(ALREADY_GONE, "Wistia no longer has the media", decision.hashed_id)
    judge_data_api_change(
        answer,
        decision.action,
        f"Wistia refused to {decision.action} media {decision.hashed_id}",
        rights=": the token needs read, update and delete rights; give them, then redrive "
        "this message",
    )
    return Decision(done, decision.why, decision.hashed_id)
