"""ON_OVERWRITE=replace: a new version of a key is imported as a media of its own, and once
that media is ready its file is swapped into the key's original media, so the original's
hashed id, URLs and embeds stay and show the new file.

The import records `replaces_wistia_hashed_id`; the status path (webhook or poller) lists
the record in the by-media-watch index's `swap` partition when its media is ready; each
poller run then advances every swap due, one Data API request each:
- `due`: superseded when a later write or deletion of the key exists (S3's sequencer):
  nothing swaps an older version over a newer one; else Wistia is asked to swap (a
  background job) and the swap is `requested`;
- `requested`: the job is asked about until it is finished (`swapped`, with `swapped_at`)
  or failed (a dead letter: the original media is untouched), unless a later write or
  deletion of the key came meanwhile (superseded: a deletion may have taken the original).
A refusal (the token's rights, a media of another type) is one dead letter; 429, 5xx and
no answer leave the swap for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from s3_to_wistia.budget import pause_if_told
from s3_to_wistia.contracts import DeadLetterMessage, ImportRecord
from s3_to_wistia.errors import PermanentError, RetryableError, WistiaUnreachable
from s3_to_wistia.model import RecordKey, WistiaAnswer
from s3_to_wistia.ports import DeadLetterSink, Log, MetricSink, RequestBudget, TokenProvider
from s3_to_wistia.rules import (
    is_later,
    judge_data_api_change,
    parse_body,
)
from s3_to_wistia.times import iso_now

DUE = "due"
REQUESTED = "requested"
SWAPPED = "swapped"
SUPERSEDED = "superseded"
FAILED = "failed"
REFUSED = "refused"
ORIGINAL_GONE = "original gone"
# Swaps looked at in one run, at most (each costs a request when it is advanced).
SWAPS_PER_RUN = 50


class SwapRecords(Protocol):
    """What the swapper needs of the records (the Records adapter)."""

    def swaps_due(self, limit: int) -> list[ImportRecord]: ...

    def records_of_key(self, bucket: str, key: str) -> list[ImportRecord]: ...

    def set_swap(self, key: RecordKey, status: str, fields: dict[str, str], done: bool) -> None: ...


class MediaSwaps(Protocol):
    """Wistia's swap and its background job (the Data API)."""

    def swap_media(
        self, hashed_id: str, replacement: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer: ...

    def background_job(
        self, job_id: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer: ...


@dataclass
class SwapReport:
    looked_at: int = 0
    requested: int = 0
    swapped: int = 0
    superseded: int = 0
    failed: int = 0
    requests: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class Swapper:
    records: SwapRecords
    wistia: MediaSwaps
    tokens: TokenProvider
    dead_letters: DeadLetterSink
    metrics: MetricSink
    log: Log
    clock: Callable[[], float] = time.time

    def run(self, deadline: float, budget: RequestBudget) -> SwapReport:
        """Advance every swap due, within the run's request budget and time."""
        report = SwapReport()
        for record in self.records.swaps_due(SWAPS_PER_RUN):
            report.looked_at += 1
            if self.clock() >= deadline or not budget.acquire(deadline):
                break
            report.requests += 1
            key = RecordKey(record.object_uri, record.object_version)
            try:
                self._advance(record, key, deadline, budget, report)
            except PermanentError as error:
                self._dead_letter(
                    record, key, REFUSED, error.reason, error.http_status, error.wistia_error
                )
                report.failed += 1
            except (RetryableError, WistiaUnreachable) as error:
                # Left as it is: the next run tries again.
                self.log.warning("swap not advanced; next run", reason=str(error))
        if report.swapped:
            self.metrics.add_metric(name="MediaSwapped", unit="Count", value=report.swapped)
        return report

    def _advance(
        self,
        record: ImportRecord,
        key: RecordKey,
        deadline: float,
        budget: RequestBudget,
        report: SwapReport,
    ) -> None:
        if record.swap_status == REQUESTED:
            self._follow_job(record, key, deadline, budget, report)
            return
        if self._superseded(record):
            self.records.set_swap(key, SUPERSEDED, {}, done=True)
            report.superseded += 1
            self.log.info("swap superseded by a later write of the key")
            return
        original, replacement = str(record.replaces_wistia_hashed_id), str(record.wistia_hashed_id)
        answer = self.wistia.swap_media(original, replacement, self.tokens.get(), deadline)
        pause_if_told(budget, answer, self.clock())
        if answer.status == 404:
            # The original is gone at Wistia: the new media stays, a media of its own.
            self.records.set_swap(key, ORIGINAL_GONE, {}, done=True)
            return
        judge_swap_answer(answer)
        body = parse_body(answer)
        job = body.get("background_job_status") if isinstance(body, dict) else None
        job = job if isinstance(job, dict) else {}
        self.records.set_swap(
            key,
            REQUESTED,
            {"swap_job_id": str(job.get("id", "")), "swap_requested_at": iso_now()},
            done=False,
        )
        report.requested += 1

    def _follow_job(
        self,
        record: ImportRecord,
        key: RecordKey,
        deadline: float,
        budget: RequestBudget,
        report: SwapReport,
    ) -> None:
        answer = self.wistia.background_job(str(record.swap_job_id), self.tokens.get(), deadline)
        pause_if_told(budget, answer, self.clock())
        judge_swap_answer(answer)
        body = parse_body(answer)
        job = body.get("background_job_status") or body if isinstance(body, dict) else {}
        status = job.get("status") if isinstance(job, dict) else None
        if status == "finished":
            self.records.set_swap(key, SWAPPED, {"swapped_at": iso_now()}, done=True)
            report.swapped += 1
            self.log.info(
                "media swapped: the original keeps its hashed id with the new file",
                hashed_id=record.replaces_wistia_hashed_id,
                replacement=record.wistia_hashed_id,
            )
        elif status == "failed" and self._superseded(record):
            # A later write or deletion of the key overtook the swap (the deletion took the
            # original away while the job waited): nothing to report, as for a due swap.
            self.records.set_swap(key, SUPERSEDED, {}, done=True)
            report.superseded += 1
            self.log.info("swap overtaken by a later write or deletion of the key")
        elif status == "failed":
            reason = (
                f"Wistia could not swap media {record.wistia_hashed_id} into "
                f"{record.replaces_wistia_hashed_id}: the original media is unchanged"
            )
            self._dead_letter(record, key, FAILED, reason, None, parse_body(answer))
            report.failed += 1

    def _superseded(self, record: ImportRecord) -> bool:
        others = [
            r
            for r in self.records.records_of_key(record.bucket, record.object_key)
            if r.object_version != record.object_version
        ]
        return any(is_later(r.sequencer, record.sequencer) for r in others)

    def _dead_letter(
        self,
        record: ImportRecord,
        key: RecordKey,
        status: str,
        reason: str,
        http_status: int | None,
        wistia_error: Any,
    ) -> None:
        self.dead_letters.send(
            DeadLetterMessage(
                bucket=record.bucket,
                object_key=record.object_key,
                object_version=record.object_version,
                reason=reason,
                http_status=http_status,
                wistia_error=wistia_error,
                retryable=False,
                attempts=0,
                failed_at=iso_now(),
                source_event=record.source_event,
            )
        )
        self.records.set_swap(key, status, {"error": reason}, done=True)
        self.log.error("swap failed; sent to the dead-letter queue", reason=reason)


def judge_swap_answer(answer: WistiaAnswer) -> None:
    """2xx passes; 429 and 5xx raise RetryableError (the next run); anything else is a
    refusal for good (PermanentError)."""
    judge_data_api_change(
        answer,
        "swap",
        "Wistia refused the swap",
        rights=" (the token needs read, update and delete rights)",
    )
