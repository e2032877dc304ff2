"""Importing one object version: claim, check, sign, submit, record.

Every path ends in exactly one of: a SUBMITTED record; a SKIPPED record with its
reason; a dead letter plus a FAILED record; or a RetryableError that fails the
invocation so Lambda (or SQS) brings the event back. Nothing is dropped silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

from s3_to_wistia.adapters.records import (
    AlreadyHandled,
    Claim,
    Records,
    iso,
    iso_now,
    iso_precise,
    parse_iso,
)
from s3_to_wistia.adapters.secrets import TokenSource
from s3_to_wistia.adapters.storage import ObjectGone, Storage
from s3_to_wistia.adapters.wistia import WistiaClient, WistiaUnreachable
from s3_to_wistia.config import Settings
from s3_to_wistia.errors import PermanentError, RetryableError
from s3_to_wistia.model import ObjectInfo, ObjectRef, Outcome, PresignedUrl, Status, WistiaAnswer
from s3_to_wistia.rules import (
    Verdict,
    judge,
    media_name,
    parse_body,
    parse_retry_after,
    pick_lost_media,
    project_for,
    retry_delay,
    skip_reason_for_key,
    skip_reason_for_size,
    without_query,
)

# Time kept back from the invocation's deadline to write the record or dead letter.
FINISH_RESERVE_SECONDS = 2.0
# How long after a timed-out submission Wistia may still create its media.
SETTLE_SECONDS = 30.0


@dataclass
class Tries:
    """What one object's submissions have come to so far, across invocations."""

    count: int = 0
    # Submissions whose answer never came: Wistia may hold a media for them.
    unanswered: int = 0
    first_submit_at: str | None = None
    # When a submission last timed out: Wistia had the whole request and may still be
    # creating the media, so nobody submits again until SETTLE_SECONDS have passed.
    timed_out_at: str | None = None


class DeadLetterSink(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class MetricSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


@dataclass
class Importer:
    settings: Settings
    storage: Storage
    records: Records
    dead_letters: DeadLetterSink
    wistia: WistiaClient
    tokens: TokenSource
    metrics: MetricSink
    log: Any
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    random_fraction: Callable[[], float] = field(default=random.random)

    def import_object(self, obj: ObjectRef, deadline: float) -> Outcome:
        skip = skip_reason_for_key(obj.key, self.settings.extensions) or skip_reason_for_size(
            obj.size
        )
        if skip:
            self.records.record_skipped(obj, skip)
            return self._skipped(obj, skip)
        try:
            claim = self.records.claim(obj, lease_until=deadline + FINISH_RESERVE_SECONDS)
        except AlreadyHandled as done:
            self.log.info("duplicate delivery ignored", record_status=done.status)
            self._count("DuplicateDeliveries")
            return Outcome(Status(done.status), obj, "already handled by an earlier delivery")
        try:
            info = self.storage.head(obj)
        except ObjectGone as gone:
            self.records.finish(obj, claim, Status.SKIPPED, {"error": str(gone)})
            return self._skipped(obj, str(gone))
        except PermanentError as error:
            return self._fail(obj, claim, error, attempts=0)
        except RetryableError as error:
            self.records.release(obj, claim, str(error), claim.earlier_attempts)
            raise
        skip = skip_reason_for_size(info.size)
        if skip:
            self.records.finish(obj, claim, Status.SKIPPED, {"error": skip})
            return self._skipped(obj, skip)
        presigned = self.storage.presign(obj, self.settings.presigned_url_expires)
        return self._submit(obj, claim, self._form(obj, info, presigned.url), presigned, deadline)

    def _submit(
        self,
        obj: ObjectRef,
        claim: Claim,
        form: dict[str, str],
        presigned: PresignedUrl,
        deadline: float,
    ) -> Outcome:
        tries = Tries(
            unanswered=claim.earlier_attempts,
            first_submit_at=claim.first_submit_at,
            timed_out_at=claim.timed_out_at,
        )
        looks_first = self.settings.lookup_before_resubmit
        refresh_token = False
        while True:
            tries.count += 1
            lost = answer = None
            try:
                token = self.tokens.get(refresh=refresh_token)
                if tries.unanswered and looks_first:
                    lost = self._find_lost_import(form, token, tries)
                if lost is None and not (looks_first and self._may_still_be_working(tries)):
                    tries.first_submit_at = tries.first_submit_at or iso(self.clock())
                    answer = self.wistia.import_url(form, token)
                    verdict = self._judged(answer)
            except PermanentError as error:
                if error.http_status == 401 and not refresh_token:
                    # The token may have been rotated since it was cached: read it once more.
                    self.log.info("Wistia rejected the cached token; reading the secret again")
                    refresh_token = True
                    continue
                return self._fail(obj, claim, error, tries.count)
            except (WistiaUnreachable, RetryableError) as error:
                if isinstance(error, WistiaUnreachable) and error.maybe_received:
                    tries.unanswered += 1
                    if error.still_working:
                        tries.timed_out_at = iso_precise(self.clock())
                self._wait_or_give_up(obj, claim, str(error), tries, None, deadline)
                continue
            if lost is not None:
                return self._submitted(obj, claim, lost, presigned, tries, recovered=True)
            if answer is None:
                # Wistia timed out holding the whole request and may yet create the media:
                # resubmitting now could make a second one. Hand the object back; the next
                # delivery, a minute on, looks again first.
                self._give_up(obj, claim, "Wistia may still be creating the media", tries)
            if verdict.accepted:
                return self._submitted(obj, claim, verdict.body, presigned, tries)
            if answer.status == 200:
                tries.unanswered += 1  # Wistia accepted something we cannot read: look first
            retry_after = parse_retry_after(answer.retry_after, self.clock())
            self._wait_or_give_up(obj, claim, verdict.reason, tries, retry_after, deadline)

    def _may_still_be_working(self, tries: Tries) -> bool:
        if tries.timed_out_at is None:
            return False
        return self.clock() - parse_iso(tries.timed_out_at) < SETTLE_SECONDS

    def _judged(self, answer: WistiaAnswer) -> Verdict:
        """Wistia's answer judged; a permanent refusal is raised as PermanentError."""
        verdict = judge(answer)
        if not (verdict.accepted or verdict.retryable):
            if verdict.video_limit:
                self._count("VideoLimitReached")
            raise PermanentError(verdict.reason, answer.status, verdict.body)
        return verdict

    def _find_lost_import(
        self, form: dict[str, str], token: str, tries: Tries
    ) -> dict[str, Any] | None:
        """The media an earlier, unanswered submission created at Wistia, if any."""
        answer = self.wistia.list_medias(form["name"], form.get("project_id"), token)
        if answer.status == 401:
            raise PermanentError(judge(answer).reason, 401, judge(answer).body)
        if answer.status != 200:
            raise RetryableError(
                f"could not look for a lost import in Wistia's media list ({answer.status})"
            )
        found = pick_lost_media(
            parse_body(answer), form["name"], tries.first_submit_at or iso(self.clock())
        )
        if found is not None:
            self.log.info("found the media a lost answer had created", hashed_id=found["hashed_id"])
            self._count("LostAnswersRecovered")
        return found

    def _wait_or_give_up(
        self,
        obj: ObjectRef,
        claim: Claim,
        reason: str,
        tries: Tries,
        retry_after: float | None,
        deadline: float,
    ) -> None:
        """Sleep before the next attempt, or hand the object back to Lambda's retries."""
        delay = retry_delay(tries.count, retry_after, self.random_fraction())
        if tries.count >= self.settings.max_attempts or self.clock() + delay > deadline:
            self._give_up(obj, claim, reason, tries)
        self._count("WistiaRetries")
        self.log.info(
            "retrying the import", reason=reason, attempt=tries.count, delay_seconds=round(delay, 2)
        )
        self.sleep(delay)

    def _give_up(self, obj: ObjectRef, claim: Claim, reason: str, tries: Tries) -> NoReturn:
        """Hand the object back for a later delivery, remembering unanswered submissions."""
        self.log.warning(
            "giving the import back for a later retry", reason=reason, attempts=tries.count
        )
        self.records.release(
            obj, claim, reason, tries.unanswered, tries.first_submit_at, tries.timed_out_at
        )
        raise RetryableError(f"{reason}; gave up after {tries.count} attempt(s) in this invocation")

    def _form(self, obj: ObjectRef, info: ObjectInfo, url: str) -> dict[str, str]:
        meta = info.metadata
        form = {"url": url, "name": media_name(obj.key, meta.get("wistia-name"))}
        description = meta.get("wistia-description")
        project_id = project_for(
            obj.key,
            meta.get("wistia-project-id"),
            self.settings.project_map,
            self.settings.project_id,
        )
        if description:
            form["description"] = description
        if project_id:
            form["project_id"] = project_id
        if self.settings.contact_id is not None:
            form["contact_id"] = str(self.settings.contact_id)
        return form

    def _submitted(
        self,
        obj: ObjectRef,
        claim: Claim,
        media: dict[str, Any],
        presigned: PresignedUrl,
        tries: Tries,
        recovered: bool = False,
    ) -> Outcome:
        hashed_id = str(media["hashed_id"])
        fields = {
            "wistia_hashed_id": hashed_id,
            "wistia_media_id": media.get("id"),
            "wistia_response": media,
            "source_url": without_query(presigned.url),
            "url_expires_at": iso(presigned.expires_at),
            "submitted_at": iso_now(),
            "attempts": tries.count,
            "unanswered_submits": tries.unanswered,
        }
        if recovered:
            # Wistia answered none of our submissions, but its media list shows the import.
            fields["recovered_lost_answer"] = True
        self.records.finish(obj, claim, Status.SUBMITTED, fields)
        self._count("ImportsSubmitted")
        self.log.info("import submitted", wistia_hashed_id=hashed_id, attempts=tries.count)
        return Outcome(Status.SUBMITTED, obj, hashed_id)

    def _fail(self, obj: ObjectRef, claim: Claim, error: PermanentError, attempts: int) -> Outcome:
        # The dead letter goes first: if the queue is down the invocation must fail, so
        # Lambda keeps the event, and the claim is handed back for that retry.
        message = {
            "bucket": obj.bucket,
            "object_key": obj.key,
            "object_version": obj.version,
            "reason": error.reason,
            "http_status": error.http_status,
            "wistia_error": error.wistia_error,
            "retryable": False,
            "attempts": attempts,
            "failed_at": iso_now(),
            "source_event": obj.source_event,
        }
        try:
            self.dead_letters.send(message)
        except RetryableError:
            self.records.release(obj, claim, f"{error.reason} (dead-letter queue unreachable)", 0)
            raise
        fields = {"error": error.reason, "http_status": error.http_status, "attempts": attempts}
        self.records.finish(obj, claim, Status.FAILED, fields)
        self._count("ImportsFailed")
        self.log.error(
            "import failed; sent to the dead-letter queue",
            reason=error.reason,
            http_status=error.http_status,
        )
        return Outcome(Status.FAILED, obj, error.reason)

    def _skipped(self, obj: ObjectRef, reason: str) -> Outcome:
        self._count("ImportsSkipped")
        self.log.info("object skipped", reason=reason)
        return Outcome(Status.SKIPPED, obj, reason)

    def _count(self, name: str) -> None:
        self.metrics.add_metric(name=name, unit="Count", value=1)
