"""Importing one object version: claim, check, sign, submit, record.

Every path ends in exactly one of: a SUBMITTED record; a SKIPPED record with its
reason; a dead letter plus a FAILED record; or a RetryableError that fails the
invocation so Lambda (or SQS) brings the event back. Nothing is dropped silently.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn

from s3_to_wistia.budget import IMPORTS, MIN_CALL_SECONDS, Unmetered, pause_if_told
from s3_to_wistia.config import Settings
from s3_to_wistia.contracts import MEDIA_WATCHING, DeadLetterMessage, ImportRecord, RecordFields
from s3_to_wistia.deletions import GONE_AT_WISTIA, latest_import
from s3_to_wistia.errors import (
    AlreadyHandled,
    ClaimedElsewhere,
    ObjectGone,
    PermanentError,
    RetryableError,
    WistiaUnreachable,
)
from s3_to_wistia.model import (
    Claim,
    ImportOptions,
    ObjectInfo,
    ObjectRef,
    Outcome,
    PresignedUrl,
    ProbeAnswer,
    Status,
)
from s3_to_wistia.policy import (
    Accepted,
    AttemptResult,
    Fail,
    FoundLost,
    HandBack,
    NotFoundYet,
    OverBudget,
    ReadTokenAgain,
    Refused,
    Step,
    Submit,
    Tries,
    Unavailable,
    Unreachable,
    Wait,
    decide,
    plan,
)
from s3_to_wistia.ports import (
    DeadLetterSink,
    Log,
    MetricSink,
    ObjectStore,
    RateBudget,
    RecordStore,
    TokenProvider,
    WistiaApi,
)
from s3_to_wistia.redact import redact, redact_value, scrub_exception
from s3_to_wistia.rules import (
    ProbeVerdict,
    bounded,
    is_later,
    judge,
    judge_probe,
    media_name,
    named_medias,
    parse_body,
    pick_lost_media,
    project_for,
    skip_reason_for_key,
    skip_reason_for_size,
    storable_answer,
    unfetchable_key_reason,
    unservable_reason,
    without_query,
)
from s3_to_wistia.times import iso, iso_now, iso_precise

# Time kept back from the invocation's deadline to write the record or dead letter.
FINISH_RESERVE_SECONDS = 2.0
# S3's two reads of an object (HEAD, and the probe through the URL) run beside its claim:
# two threads for each of the records an SQS batch imports at once.
READ_THREADS = 20
# How often a delivery that finds the claim held asks again (the last one repeats).
HOLDER_POLL_SECONDS = (0.25, 0.5, 1.0, 2.0)


def _read_pool() -> Executor:
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="s3-read")


@dataclass(frozen=True)
class _Reads:
    """What S3 is being asked of one object while its claim is written."""

    info: Future[ObjectInfo]
    signed: Future[tuple[PresignedUrl, ProbeAnswer | None]]


NO_OPTIONS = ImportOptions()


@dataclass
class Importer:
    settings: Settings
    storage: ObjectStore
    records: RecordStore
    dead_letters: DeadLetterSink
    wistia: WistiaApi
    tokens: TokenProvider
    metrics: MetricSink
    log: Log
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    random_fraction: Callable[[], float] = field(default=random.random)
    # Every request to Wistia waits for its slot in the account's budget (wiring gives the
    # shared one; unmetered only where nothing else calls Wistia, as in unit tests).
    budget: RateBudget = field(default_factory=Unmetered)
    caller: str = IMPORTS
    # Threads for the reads beside the claim (made when first used).
    reads: Executor = field(default_factory=_read_pool)

    def import_object(
        self,
        obj: ObjectRef,
        deadline: float,
        options: ImportOptions = NO_OPTIONS,
        described: ObjectInfo | None = None,
        wait_for_holder: bool = True,
    ) -> Outcome:
        """Import one object version. `described`: what a HEAD of this very version said a
        moment ago (a backfill asks before it can name the object), so it is not asked again.
        Another delivery of it that holds the claim right now is waited for
        (`wait_for_holder`): its record ends final, or its lease runs out and this delivery
        takes over; without waiting, the outcome is IN_PROGRESS."""
        skip = skip_reason_for_key(obj.key, self.settings.extensions) or skip_reason_for_size(
            obj.size
        )
        if skip:
            self.records.record_skipped(obj, skip)
            return self._skipped(obj, skip)
        # S3 is read while the claim is written: reads change nothing, and a duplicate
        # delivery only drops what they found.
        reads = self._start_reads(obj, described)
        claim = self._claim(obj, deadline, wait_for_holder)
        if isinstance(claim, Outcome):
            return claim
        try:
            prepared = self._prepare(obj, claim, options, reads)
        except Exception as error:
            self._release_unexpected(obj, claim, error, claim.earlier_attempts)
            raise
        if isinstance(prepared, Outcome):
            return prepared
        form, presigned = prepared
        return self._submit(obj, claim, form, presigned, deadline)

    def _start_reads(self, obj: ObjectRef, described: ObjectInfo | None) -> _Reads | None:
        """HEAD (unless `described` already says what it would), and the presigned URL with
        its probe, on threads; None when the key alone shows that Wistia could never fetch
        the object."""
        if unfetchable_key_reason(obj.key):
            return None
        info: Future[ObjectInfo]
        if described is None:
            info = self.reads.submit(self.storage.head, obj)
        else:
            info = Future()
            info.set_result(described)
        return _Reads(info, self.reads.submit(self._signed, obj))

    def _signed(self, obj: ObjectRef) -> tuple[PresignedUrl, ProbeAnswer | None]:
        presigned = self.storage.presign(obj, self.settings.presigned_url_expires)
        if not self.settings.probe_import_url:
            return presigned, None
        return presigned, self.storage.probe(presigned.url)

    def _claim(self, obj: ObjectRef, deadline: float, wait: bool) -> Claim | Outcome:
        """The claim on the record, or how the object ended without it.

        S3 delivers at least once and Lambda retries a failed event, so a delivery may find
        the claim held: by a live invocation about to finish, or by one that died (its lease
        ends with its timeout). Waiting turns both into a success, the first when the record
        ends final, the second by taking the claim over once the lease has run out, instead
        of failing an invocation (an error for S3's ordinary duplicates) or dropping an
        event the dead holder will never finish."""
        pauses = iter(HOLDER_POLL_SECONDS)
        waited = False
        while True:
            try:
                return self.records.claim(obj, lease_until=deadline + FINISH_RESERVE_SECONDS)
            except AlreadyHandled as done:
                self.log.info("duplicate delivery ignored", record_status=done.status)
                if not waited:
                    self._count("DuplicateDeliveries")
                return Outcome(
                    Status(done.status), obj, "already handled by another delivery", earlier=True
                )
            except ClaimedElsewhere:
                if not waited:
                    self._count("DuplicateDeliveries")
                if not wait:
                    self.log.info("duplicate delivery: another invocation is importing it")
                    return Outcome(Status.IN_PROGRESS, obj, "another invocation is importing it")
                pause = next(pauses, HOLDER_POLL_SECONDS[-1])
                if self.clock() + pause > deadline - FINISH_RESERVE_SECONDS:
                    raise
                if not waited:
                    self.log.info("another invocation is importing it; waiting for it")
                waited = True
                self.sleep(pause)

    def _prepare(
        self, obj: ObjectRef, claim: Claim, options: ImportOptions, reads: _Reads | None
    ) -> Outcome | tuple[dict[str, str], PresignedUrl]:
        """Everything before the submission: can Wistia fetch this object at all? The form
        and the URL when it can, else how the object ended. The reads are judged in their
        order (the key, HEAD, the size, the probe), whichever answered first."""
        try:
            info, reads = self._servable(obj, reads)
            skip = skip_reason_for_size(info.size)
            if skip:
                return self._finish_skipped(obj, claim, skip)
            presigned, answer = reads.signed.result()
            if answer is not None:
                self._judge_probe(obj, info, answer)
        except ObjectGone as gone:
            return self._finish_skipped(obj, claim, str(gone))
        except PermanentError as error:
            return self._fail(obj, claim, error, attempts=0)
        except RetryableError as error:
            fields = RecordFields(error=str(error), unanswered_submits=claim.earlier_attempts)
            self.records.release(obj, claim, fields)
            raise
        return self._form(obj, info, presigned.url, options), presigned

    def _servable(self, obj: ObjectRef, reads: _Reads | None) -> tuple[ObjectInfo, _Reads]:
        """What S3 says of the object, once sure S3 would serve it through a URL at all."""
        reason = unfetchable_key_reason(obj.key)
        if reason or reads is None:
            raise PermanentError(reason or "the object's key cannot be fetched")
        info = reads.info.result()
        reason = unservable_reason(info)
        if reason:
            raise PermanentError(reason)
        return info, reads

    def _judge_probe(self, obj: ObjectRef, info: ObjectInfo, answer: ProbeAnswer) -> None:
        """One byte GET through the URL: what S3 answered it, it answers Wistia's fetch."""
        # Unversioned: the URL cannot pin the bytes, so at least they must still be ours.
        expected_etag = None if obj.version_id else obj.etag
        verdict, reason = judge_probe(answer, info, expected_etag)
        if verdict is ProbeVerdict.GONE:
            raise ObjectGone(reason)
        if verdict is ProbeVerdict.REFUSED:
            raise PermanentError(reason, answer.status)
        if verdict is ProbeVerdict.RETRY:
            raise RetryableError(reason)

    def _release_unexpected(
        self, obj: ObjectRef, claim: Claim, error: Exception, unanswered: int
    ) -> NoReturn:
        """An exception nobody planned for: hand the claim back with what is known, so the
        next delivery starts over (looking for a media first if one may exist), and let the
        exception fail the invocation, scrubbed of any credential it may quote."""
        if isinstance(error, RetryableError):
            raise error  # every planned path has settled the record already
        reason = bounded(redact(f"unexpected {type(error).__name__}: {error}"))
        self.log.error("unexpected failure; the object is handed back for a retry", reason=reason)
        # If even that fails, the claim's lease ends with the invocation and the retry
        # takes it over.
        with contextlib.suppress(RetryableError):
            self.records.release(
                obj, claim, RecordFields(error=reason, unanswered_submits=unanswered)
            )
        raise scrub_exception(error) from None

    def _submit(
        self,
        obj: ObjectRef,
        claim: Claim,
        form: dict[str, str],
        presigned: PresignedUrl,
        deadline: float,
    ) -> Outcome:
        """Attempt, then follow the policy's decision, until it says how the object ends."""
        tries = Tries.after(claim)
        refresh_token = False
        while True:
            tries = tries.next_attempt()
            try:
                result, tries = self._attempt(form, tries, refresh_token, deadline)
            except Exception as error:
                # The submission may have reached Wistia: the next delivery looks first.
                self._release_unexpected(obj, claim, error, tries.unanswered + 1)
            decision, tries = decide(
                result,
                tries,
                now=self.clock(),
                deadline=deadline,
                max_attempts=self.settings.max_attempts,
                random_fraction=self.random_fraction(),
            )
            refresh_token = isinstance(decision, ReadTokenAgain)
            if isinstance(decision, Submit):
                try:
                    return self._submitted(obj, claim, decision, presigned, tries)
                except Exception as error:
                    self._release_unexpected(obj, claim, error, tries.unanswered + 1)
            if isinstance(decision, Fail):
                return self._fail(obj, claim, decision.error, tries.count)
            if isinstance(decision, HandBack):
                self._hand_back(obj, claim, decision.reason, tries)
            if isinstance(decision, Wait):
                self._count("WistiaRetries")
                self.log.info(
                    "retrying the import",
                    reason=decision.reason,
                    attempt=tries.count,
                    delay_seconds=round(decision.delay, 2),
                )
                self.sleep(decision.delay)
            elif refresh_token:
                # The token may have been rotated since it was cached: read it once more.
                self.log.info("Wistia rejected the cached token; reading the secret again")

    def _attempt(
        self, form: dict[str, str], tries: Tries, refresh_token: bool, deadline: float
    ) -> tuple[AttemptResult, Tries]:
        """One pass: the token, a look for a lost import if the policy asks, the submission."""
        step = plan(tries, self.clock(), self.settings.lookup_before_resubmit)
        # Wistia's answer must come in time to write it down (in a very short invocation,
        # the reserve is half of what is left).
        calls_end = deadline - min(FINISH_RESERVE_SECONDS, max(0.0, deadline - self.clock()) / 2)
        try:
            token = self.tokens.get(refresh=refresh_token)
            if step is not Step.SUBMIT:
                if not self._slot(calls_end):
                    return OverBudget(), tries
                found = self._find_lost_import(form, token, tries, calls_end)
                if found is not None:
                    return FoundLost(found), tries
                if step is Step.LOOK_ONLY:
                    return NotFoundYet(), tries
            if not self._slot(calls_end):
                return OverBudget(), tries
            tries = tries.submitting(self.clock())
            return self._judged(self.wistia.import_url(form, token, calls_end)), tries
        except PermanentError as error:
            return Refused(error), tries
        except WistiaUnreachable as error:
            return Unreachable(error.reason, error.maybe_received, error.still_working), tries
        except RetryableError as error:
            return Unavailable(str(error)), tries

    def _slot(self, calls_end: float) -> bool:
        """Wait for this request's slot in the account's budget; waiting counts against the
        invocation's time, so some must be left for the request itself (in a very short
        invocation, half of what is left)."""
        left = max(0.0, calls_end - self.clock())
        return self.budget.take(self.caller, calls_end - min(MIN_CALL_SECONDS, left / 2))

    def _judged(self, answer: Any) -> AttemptResult:
        verdict = judge(answer)
        if verdict.accepted:
            return Accepted(verdict.body)
        if verdict.retryable:
            retry_after = pause_if_told(self.budget, answer, self.clock(), self.log)
            return Unavailable(
                verdict.reason, retry_after=retry_after, maybe_created=answer.status == 200
            )
        if verdict.video_limit:
            self._count("VideoLimitReached")
        return Refused(PermanentError(verdict.reason, answer.status, verdict.body))

    def _find_lost_import(
        self, form: dict[str, str], token: str, tries: Tries, calls_end: float
    ) -> dict[str, Any] | None:
        """The media an earlier, unanswered submission created at Wistia, if any."""
        answer = self.wistia.list_medias(form["name"], form.get("project_id"), token, calls_end)
        pause_if_told(self.budget, answer, self.clock(), self.log)
        if answer.status == 401:
            raise PermanentError(judge(answer).reason, 401, judge(answer).body)
        if answer.status != 200:
            raise RetryableError(
                f"could not look for a lost import in Wistia's media list ({answer.status})"
            )
        first_submit_at = tries.first_submit_at or self.clock()
        medias = parse_body(answer)
        candidates = [str(m["hashed_id"]) for m in named_medias(medias, form["name"])]
        # Another file of the same name may have been imported meanwhile: not ours.
        taken = frozenset(self.records.recorded_media(candidates)) if candidates else frozenset()
        found = pick_lost_media(medias, form["name"], iso(first_submit_at), taken)
        if found is None:
            return None
        self.log.info("found the media a lost answer had created", hashed_id=found["hashed_id"])
        self._count("LostAnswersRecovered")
        return dict(storable_answer(redact_value(found)))

    def _hand_back(self, obj: ObjectRef, claim: Claim, reason: str, tries: Tries) -> NoReturn:
        """Hand the object back for a later delivery, remembering unanswered submissions."""
        self.log.warning(
            "giving the import back for a later retry", reason=reason, attempts=tries.count
        )
        self.records.release(
            obj,
            claim,
            RecordFields(
                error=reason,
                unanswered_submits=tries.unanswered,
                first_submit_at=_iso_or_none(iso, tries.first_submit_at),
                timed_out_at=_iso_or_none(iso_precise, tries.timed_out_at),
            ),
        )
        raise RetryableError(f"{reason}; gave up after {tries.count} attempt(s) in this invocation")

    def _form(
        self, obj: ObjectRef, info: ObjectInfo, url: str, options: ImportOptions
    ) -> dict[str, str]:
        meta = info.metadata
        name = media_name(
            obj.key,
            meta.get("wistia-name"),
            self.settings.media_name_from,
            self.settings.media_name_strip_prefix,
        )
        form = {"url": url, "name": name}
        description = meta.get("wistia-description")
        # The object's own metadata first, then what the caller (a backfill job) asks.
        project_id = project_for(
            obj.key,
            meta.get("wistia-project-id") or options.project_id,
            self.settings.project_map,
            self.settings.project_id,
        )
        if description:
            form["description"] = description
        if project_id:
            form["project_id"] = project_id
        if self.settings.contact_id is not None:
            form["contact_id"] = str(self.settings.contact_id)
        if options.low_priority:
            form["low_priority"] = "true"  # Wistia's hint for bulk uploads and migrations
        return form

    def _submitted(
        self,
        obj: ObjectRef,
        claim: Claim,
        decision: Submit,
        presigned: PresignedUrl,
        tries: Tries,
    ) -> Outcome:
        media = decision.media
        hashed_id = str(media["hashed_id"])
        submitted_at = iso_now()
        fields = RecordFields(
            wistia_hashed_id=hashed_id,
            wistia_media_id=media.get("id"),
            wistia_response=media,
            source_url=without_query(presigned.url),
            url_expires_at=iso(presigned.expires_at),
            submitted_at=submitted_at,
            attempts=tries.count,
            unanswered_submits=tries.unanswered,
            recovered_lost_answer=True if decision.recovered else None,
            version_pinned=obj.version_id is not None,
            # Awaiting the media's final status from now on (webhooks, else the poller); the
            # event is kept so a media Wistia fails can be redriven as it came.
            media_watch=MEDIA_WATCHING,
            media_checked_at=submitted_at,
            source_event=obj.source_event,
            replaces_wistia_hashed_id=self._replaced_media(obj, hashed_id),
        )
        self.records.finish(obj, claim, Status.SUBMITTED, fields)
        self._count("ImportsSubmitted")
        self.log.info("import submitted", wistia_hashed_id=hashed_id, attempts=tries.count)
        return Outcome(Status.SUBMITTED, obj, hashed_id)

    def _replaced_media(self, obj: ObjectRef, hashed_id: str) -> str | None:
        """ON_OVERWRITE=replace: the key's media this new version is to be swapped into,
        once its own media is ready; None for a media of its own."""
        if self.settings.on_overwrite != "replace":
            return None
        original = replaced_media(self.records.records_of_key(obj.bucket, obj.key), obj)
        if original is not None and original != hashed_id:
            self.log.info(
                "an overwrite: swapped into the key's media once ready", replaces=original
            )
            return original
        return None

    def _fail(self, obj: ObjectRef, claim: Claim, error: PermanentError, attempts: int) -> Outcome:
        # The dead letter goes first: if the queue is down the invocation must fail, so
        # Lambda keeps the event, and the claim is handed back for that retry.
        message = DeadLetterMessage.for_object(
            obj,
            error.reason,
            failed_at=iso_now(),
            http_status=error.http_status,
            wistia_error=error.wistia_error,
            attempts=attempts,
        )
        try:
            self.dead_letters.send(message)
        except RetryableError:
            reason = f"{error.reason} (dead-letter queue unreachable)"
            self.records.release(obj, claim, RecordFields(error=reason, unanswered_submits=0))
            raise
        fields = RecordFields(error=error.reason, http_status=error.http_status, attempts=attempts)
        self.records.finish(obj, claim, Status.FAILED, fields)
        self._count("ImportsFailed")
        self.log.error(
            "import failed; sent to the dead-letter queue",
            reason=error.reason,
            http_status=error.http_status,
        )
        return Outcome(Status.FAILED, obj, error.reason)

    def _finish_skipped(self, obj: ObjectRef, claim: Claim, reason: str) -> Outcome:
        self.records.finish(obj, claim, Status.SKIPPED, RecordFields(error=reason))
        return self._skipped(obj, reason)

    def _skipped(self, obj: ObjectRef, reason: str) -> Outcome:
        self._count("ImportsSkipped")
        self.log.info("object skipped", reason=reason)
        return Outcome(Status.SKIPPED, obj, reason)

    def _count(self, name: str) -> None:
        self.metrics.add_metric(name=name, unit="Count", value=1)


def _iso_or_none(format_time: Callable[[float], str], epoch: float | None) -> str | None:
    return None if epoch is None else format_time(epoch)


def replaced_media(records: list[ImportRecord], obj: ObjectRef) -> str | None:
    """The media a new version of the key replaces: the original of the latest other
    version whose media is ready (what that one replaced, if it was a replacement itself),
    unless a deletion came after it and took the media away."""
    ready = [r for r in records if _other_version(r, obj) and r.media_status == "ready"]
    latest = latest_import(ready)
    if latest is None or _deleted_since(records, latest):
        return None
    return latest.replaces_wistia_hashed_id or latest.wistia_hashed_id


def _other_version(record: ImportRecord, obj: ObjectRef) -> bool:
    version = record.object_version
    return version != obj.version and not version.startswith("deleted:")


def _deleted_since(records: list[ImportRecord], imported: ImportRecord) -> bool:
    """Whether a deletion of the key took its media away after `imported`."""
    return any(
        r.object_version.startswith("deleted:")
        and r.media_action in GONE_AT_WISTIA
        and not is_later(imported.sequencer, r.sequencer)
        for r in records
    )
