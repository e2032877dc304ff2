"""The status poller: the safety net under the webhooks, and all there is for an account
without them. Each scheduled run:

1. lists the records still awaiting their media's final status that nothing was learned
   about for `poll_after_seconds` (queued, processing, or never heard of), least recently
   checked first, from the sparse pending-status index: a query, never a table scan, and
   only as many as the run may ask about;
2. dead-letters the failures whose dead letter is still due (nothing to ask Wistia);
3. asks the Data API about the rest, 100 hashed ids a request, each request taken from the
   run's request budget (the account's limit is the importer's first: with a budget table,
   each request is also booked on the account's shared schedule at the poller's priority,
   and a Retry-After pauses everybody), and applies what it reads through the same code
   path as a webhook event (media_status.StatusUpdater).

It stops asking at the first 429 or 5xx (the records wait for the next run: nothing is
lost), and at a 401 after reading the token once more: an upload-only token cannot read
the Data API, which the log and the StatusPollUnauthorized metric say on every run, and
the run still succeeds so Lambda does not retry it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from s3_to_wistia import config
from s3_to_wistia.budget import pause_if_told
from s3_to_wistia.errors import PermanentError, RetryableError, WistiaUnreachable
from s3_to_wistia.media_events import poll_events
from s3_to_wistia.media_status import StatusUpdater, Tally
from s3_to_wistia.model import PendingMedia, RecordKey, WistiaAnswer
from s3_to_wistia.ports import (
    Log,
    MediaLookup,
    MediaRecords,
    MetricSink,
    RateBudget,
    RequestBudget,
    TokenProvider,
)
from s3_to_wistia.swaps import Swapper, SwapReport
from s3_to_wistia.times import iso_precise

# hashed_ids[] takes at most 100 ids, and per_page at most 100.
IDS_PER_REQUEST = 100
# Time kept back from the run's deadline for the writes after the last answer.
FINISH_RESERVE_SECONDS = 2.0
# How long a run waits for a slot of the account's shared budget before it ends.
SLOT_PATIENCE_SECONDS = 5.0

DEFAULT_REQUESTS_PER_MINUTE = 600
# The poller's share of the account's request budget, at most: the rest is the importer's.
POLLER_SHARE_OF_BUDGET = 0.1


@dataclass(frozen=True)
class PollerSettings:
    """The status poller's configuration."""

    token_secret_id: str
    imports_table_name: str
    dead_letter_queue_url: str
    api_url: str = "https://api.wistia.com/"
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    # A record is polled once nothing was learned about its media for this long.
    poll_after_seconds: int = 900
    # Requests to the Data API in one run (100 medias each).
    max_requests: int = 10
    token_cache_seconds: int = 300
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    aws_region: str | None = None
    # The account's shared request budget (Settings' fields of the same names): with a
    # table, each of the run's requests is booked on it too.
    rate_budget_table: str | None = None
    rate_window_seconds: float = 60.0
    tracing: bool = False  # as Settings.tracing

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PollerSettings:
        env = os.environ if env is None else env
        per_minute = config.integer(
            env, "WISTIA_REQUESTS_PER_MINUTE", cls.requests_per_minute, minimum=1, maximum=1_000_000
        )
        # Whole runs of requests: a schedule of a minute or more never takes more than this
        # share of the account's minute.
        share = max(1, int(per_minute * POLLER_SHARE_OF_BUDGET))
        max_requests = config.integer(env, "STATUS_POLL_MAX_REQUESTS", cls.max_requests, minimum=1)
        if max_requests > share:
            raise config.ConfigError(
                f"STATUS_POLL_MAX_REQUESTS must be at most {share} (a tenth of "
                f"WISTIA_REQUESTS_PER_MINUTE={per_minute}: the rest is the importer's), "
                f"got {max_requests}"
            )
        return cls(
            token_secret_id=config.required(env, "WISTIA_TOKEN_SECRET"),
            imports_table_name=config.required(env, "IMPORTS_TABLE_NAME"),
            dead_letter_queue_url=config.required(env, "DEAD_LETTER_QUEUE_URL"),
            api_url=config.https_url(env, "WISTIA_API_URL", cls.api_url),
            requests_per_minute=per_minute,
            poll_after_seconds=config.integer(
                env, "STATUS_POLL_AFTER_SECONDS", cls.poll_after_seconds, minimum=0
            ),
            max_requests=max_requests,
            token_cache_seconds=config.integer(
                env, "WISTIA_TOKEN_CACHE_SECONDS", cls.token_cache_seconds, minimum=0
            ),
            connect_timeout=config.seconds(env, "WISTIA_CONNECT_TIMEOUT", cls.connect_timeout),
            read_timeout=config.seconds(env, "WISTIA_READ_TIMEOUT", cls.read_timeout),
            aws_region=config.region(env),
            rate_budget_table=config.optional(env, "RATE_BUDGET_TABLE_NAME"),
            rate_window_seconds=config.seconds(
                env, "WISTIA_RATE_WINDOW_SECONDS", cls.rate_window_seconds
            ),
            tracing=config.tracing(env),
        )


@dataclass
class RunAllowance:
    """The poller's own request budget: `requests` in one run, never waiting. Small next to
    the account's limit (config: at most a tenth of WISTIA_REQUESTS_PER_MINUTE)."""

    requests: int
    used: int = 0

    def acquire(self, deadline: float) -> bool:
        if self.used >= self.requests:
            return False
        self.used += 1
        return True

    def pause(self, seconds: float) -> None:
        return None  # the run stops at a 429 anyway; nobody else shares this allowance


@dataclass
class BookedRun:
    """A run's allowance whose every request is also booked on the account's shared budget
    (budget.SharedBudget), as `caller`: the poller takes only what imports leave. It waits
    for a slot at most `patience` seconds (waiting is billed; the next scheduled run tries
    again)."""

    allowance: RunAllowance
    shared: RateBudget
    caller: str
    patience: float = SLOT_PATIENCE_SECONDS
    clock: Callable[[], float] = time.time

    def acquire(self, deadline: float) -> bool:
        if not self.allowance.acquire(deadline):
            return False
        return self.shared.take(self.caller, min(deadline, self.clock() + self.patience))

    def pause(self, seconds: float) -> None:
        self.shared.pause(seconds)


class Stop(Enum):
    BUDGET = "the run's request budget is spent"
    NO_BUDGET = "the account's request budget could not be read: the rest waits for the next run"
    TIME = "the run's time is up"
    THROTTLED = "Wistia is rate limiting (429): the rest waits for the next run"
    UNAVAILABLE = "Wistia is unavailable: the rest waits for the next run"
    UNAUTHORIZED = (
        "the Wistia token cannot read the Data API (401; an upload-only token?): the poller "
        "cannot follow media statuses, give the token read rights; webhooks still work"
    )
    REFUSED = "Wistia refused the media lookup"
    NO_TOKEN = "the Wistia token cannot be read"  # noqa: S105 - a message, not a secret


@dataclass
class PollReport:
    pending: int = 0  # records found awaiting their media's status
    asked: int = 0  # medias asked about
    requests: int = 0  # requests sent to Wistia
    missing: int = 0  # medias Wistia no longer lists (read as deleted)
    tally: Tally = field(default_factory=Tally)
    stopped: Stop | None = None
    detail: str = ""
    swaps: SwapReport | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "pending": self.pending,
            "asked": self.asked,
            "requests": self.requests,
            "applied": self.tally.applied,
            "unchanged": self.tally.stale,
            "missing": self.missing,
            "failures_dead_lettered": self.tally.failures,
            "stopped": self.stopped.value if self.stopped else None,
            "swaps": self.swaps.as_dict() if self.swaps else None,
        }


@dataclass
class StatusPoller:
    records: MediaRecords
    wistia: MediaLookup
    tokens: TokenProvider
    updater: StatusUpdater
    metrics: MetricSink
    log: Log
    poll_after_seconds: float
    max_requests: int
    clock: Callable[[], float] = time.time
    # ON_OVERWRITE=replace: the swaps due advance first, from the same request budget.
    swapper: Swapper | None = None

    def run(self, deadline: float, budget: RequestBudget) -> PollReport:
        """One scheduled run, ending by `deadline` (epoch seconds)."""
        swaps = self._swaps(deadline, budget)
        cutoff = iso_precise(self.clock() - self.poll_after_seconds)
        pending = self.records.pending_media(cutoff, self.max_requests * IDS_PER_REQUEST)
        report = PollReport(pending=len(pending), swaps=swaps)
        to_ask = []
        for item in pending:
            if item.media_status == "failed":
                # Failed already; its dead letter could not be sent then. No need to ask.
                if self.updater.dead_letter_failure(item.key, item.hashed_id):
                    report.tally.failures += 1
            else:
                to_ask.append(item)
        for start in range(0, len(to_ask), IDS_PER_REQUEST):
            report.stopped = self._ask(
                to_ask[start : start + IDS_PER_REQUEST], deadline, budget, report
            )
            if report.stopped is not None:
                break
        self._report(report)
        return report

    def _swaps(self, deadline: float, budget: RequestBudget) -> SwapReport | None:
        if self.swapper is None:
            return None
        return self.swapper.run(deadline - FINISH_RESERVE_SECONDS, budget)

    def _ask(
        self, batch: list[PendingMedia], deadline: float, budget: RequestBudget, report: PollReport
    ) -> Stop | None:
        calls_end = deadline - FINISH_RESERVE_SECONDS
        keys: dict[str, list[RecordKey]] = {}
        for item in batch:
            keys.setdefault(item.hashed_id, []).append(item.key)
        hashed_ids = list(keys)
        refresh = False
        while True:
            if self.clock() >= calls_end:
                return Stop.TIME
            turn = self._turn(budget, calls_end, report)
            if turn is not None:
                return turn
            # A lower bound of when Wistia read the statuses: an event generated while the
            # request was under way is newer, and wins.
            read_at = iso_precise(self.clock())
            try:
                answer = self.wistia.medias_by_hashed_ids(
                    hashed_ids, self.tokens.get(refresh=refresh), calls_end
                )
            except PermanentError as error:
                report.detail = error.reason
                return Stop.NO_TOKEN
            except (WistiaUnreachable, RetryableError) as error:
                report.requests += 1
                report.detail = str(error)
                return Stop.UNAVAILABLE
            report.requests += 1
            if answer.status == 401 and not refresh:
                refresh = True  # the token may have been rotated: read it once more
                continue
            stop = judge_lookup(answer)
            if stop is not None:
                report.detail = f"HTTP {answer.status}"
                pause_if_told(budget, answer, self.clock())
                return stop
            return self._apply(answer, hashed_ids, keys, read_at, report)

    def _turn(self, budget: RequestBudget, calls_end: float, report: PollReport) -> Stop | None:
        """None when the next request may go now, else why the run stops."""
        try:
            if budget.acquire(calls_end):
                return None
        except RetryableError as error:
            report.detail = str(error)
            return Stop.NO_BUDGET
        return Stop.BUDGET

    def _apply(
        self,
        answer: WistiaAnswer,
        hashed_ids: list[str],
        keys: dict[str, list[RecordKey]],
        read_at: str,
        report: PollReport,
    ) -> Stop | None:
        try:
            events, missing = poll_events(json.loads(answer.body), hashed_ids, read_at)
        except ValueError:
            report.detail = "the media list is not JSON"
            return Stop.REFUSED
        report.asked += len(hashed_ids)
        report.missing += len(missing)
        readings = [(key, event) for event in events for key in keys[event.hashed_id]]
        report.tally.add(self.updater.apply_readings(readings))
        return None

    def _report(self, report: PollReport) -> None:
        count = self.metrics.add_metric
        count(name="StatusPollRequests", unit="Count", value=report.requests)
        count(name="StatusPollMediaChecked", unit="Count", value=report.asked)
        if report.stopped in (Stop.THROTTLED, Stop.UNAVAILABLE):
            name = "StatusPollThrottled" if report.stopped is Stop.THROTTLED else "StatusPollErrors"
            count(name=name, unit="Count", value=1)
        if report.stopped is Stop.UNAUTHORIZED:
            count(name="StatusPollUnauthorized", unit="Count", value=1)
        level = (
            self.log.error
            if report.stopped in (Stop.UNAUTHORIZED, Stop.NO_TOKEN)
            else self.log.info
        )
        level(
            "status poll done"
            if report.stopped is None
            else f"status poll stopped: {report.stopped.value}",
            detail=report.detail or None,
            **report.as_dict(),
        )


def judge_lookup(answer: WistiaAnswer) -> Stop | None:
    """What an answer to the media lookup means for the run: None to go on (200)."""
    if answer.status == 200:
        return None
    if answer.status == 401:
        return Stop.UNAUTHORIZED
    if answer.status == 429 or (answer.status == 503 and answer.retry_after):
        return Stop.THROTTLED
    if answer.status >= 500:
        return Stop.UNAVAILABLE
    return Stop.REFUSED
