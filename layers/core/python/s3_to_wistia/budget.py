"""The account's request budget: every caller of Wistia in one deployment books its
requests on one schedule, so together they stay under WISTIA_REQUESTS_PER_MINUTE.

The schedule is a single frontier (a generic cell rate algorithm): the time of the next
free slot, one slot every `Pace.spacing` seconds. A caller books the next slot (moving the
frontier on by one spacing, atomically, in the ScheduleStore) and waits until its time, so
requests leave evenly spaced whoever sends them; nobody holds anything: a caller that dies
after booking wastes its slot, and the schedule goes on.

- Shares: the budget is shared by priority. A caller may book only while the schedule is
  booked less than its share of BOOKING_HORIZON_SECONDS ahead: imports book into the next
  10 s, the poller only when less than 1 s is booked, so it takes what imports leave, and
  everybody gets the whole rate when alone.
- Pause: a 429 or 503 with Retry-After pauses the whole schedule: nobody in the account
  gets a slot before it ends (MAX_PAUSE_SECONDS at most). Every caller that sees one
  pauses it (`pause_if_told`).
- Amortised: when the schedule is idle a booking takes the slots one process can use within
  the pace's tolerance (up to MAX_STASH), usable at once; concurrent callers in one process
  share one booking. The store is written once per several requests when the account is
  far from its limit, and once per request, exactly paced, near it.

Nothing here does I/O itself: the store is a port (DynamoDB in AWS, memory in one process).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from s3_to_wistia.errors import RetryableError
from s3_to_wistia.rules import parse_retry_after

if TYPE_CHECKING:
    from s3_to_wistia.model import WistiaAnswer
    from s3_to_wistia.ports import Log, RateBudget, RequestBudget, ScheduleStore

# The callers, by the names every entry point uses; their share of the booking horizon.
IMPORTS = "imports"  # the import function (S3 events)
CLI = "cli"  # an operator's command (s3-to-wistia upload, ...)
BACKFILL = "backfill"  # the S3 Batch Operations function
RECONCILE = "reconcile"  # reconciling records with Wistia's media list
POLLER = "poller"  # the status poller
SHARES = {IMPORTS: 1.0, CLI: 0.6, BACKFILL: 0.3, RECONCILE: 0.2, POLLER: 0.1}
BOOKING_HORIZON_SECONDS = 10.0

# Paced this far under the limit: room for slots used a little early or late, and for
# clocks that disagree a little (see Pace).
HEADROOM = 0.03
# A slot may be used this share of the rate window away from its time.
TOLERANCE_SHARE = 0.01
MAX_STASH = 30
MAX_PAUSE_SECONDS = 120.0
# Wistia's answers that pause the whole account's budget when they carry Retry-After.
PAUSING_STATUSES = frozenset({429, 503})
# A slot is worth waiting for only if the request has this long left after it.
MIN_CALL_SECONDS = 1.0
# A thread waiting for another's booking looks again at least this often.
WAIT_SLICE_SECONDS = 1.0


@dataclass(frozen=True)
class Pace:
    """The schedule's shape: `spacing` seconds between slots; a slot may be used up to
    `tolerance` seconds after its time (slots booked while the schedule was idle also that
    much before it)."""

    spacing: float
    tolerance: float

    @classmethod
    def of(cls, requests_per_minute: int, window_seconds: float = 60.0) -> Pace:
        """With every slot used within `tolerance` of its time, any `window_seconds` holds
        at most requests_per_minute * window / 60 requests, with about
        (HEADROOM - 2 * TOLERANCE_SHARE) of the window to spare for clocks that disagree
        and requests delayed on their way (0.6 s of a minute)."""
        spacing = 60.0 / (requests_per_minute * (1.0 - HEADROOM))
        return cls(spacing, window_seconds * TOLERANCE_SHARE)

    @property
    def idle_slots(self) -> int:
        """Slots one booking takes when the schedule is idle: as many as can be used at
        once without leaving the tolerance."""
        return max(1, min(MAX_STASH, int(self.tolerance / self.spacing) + 1))


def lookahead(caller: str) -> float:
    """How far ahead the schedule may already be booked for `caller` to book in it."""
    if caller not in SHARES:
        raise ValueError(f"unknown caller of Wistia {caller!r}; one of {', '.join(SHARES)}")
    return SHARES[caller] * BOOKING_HORIZON_SECONDS


@dataclass(frozen=True)
class Booked:
    """Slots start, start + spacing, ... (`count` of them) are ours."""

    start: float
    count: int


@dataclass(frozen=True)
class Later:
    """The first free slot is at `start`, later than the booking allowed."""

    start: float


class SharedBudget:
    """The RateBudget of one process over a shared ScheduleStore; safe across threads."""

    def __init__(
        self,
        store: ScheduleStore,
        pace: Pace,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._pace = pace
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._ready = threading.Condition()
        # Booked by this process, not used yet: (usable from, slot time).
        self._slots: deque[tuple[float, float]] = deque()
        self._booking = False  # a thread is booking for the others
        self._waiting = 0  # threads waiting for that booking
        self._paused_until = 0.0

    def take(self, caller: str, deadline: float) -> bool:
        """Wait for a slot; False when none can be had by `deadline` (epoch seconds)."""
        ahead = lookahead(caller)
        refused = 0
        while self._clock() <= deadline:
            usable_from, book = self._local_slot(deadline)
            if usable_from is not None:
                self._wait_until(usable_from)
                if self._clock() < self._paused_until:
                    continue  # another thread was told to pause meanwhile: not this slot
                return True
            if not book:
                continue  # another thread booked meanwhile: look at its slots
            retry_at = self._book(book, ahead, deadline)
            if retry_at is None:
                continue
            if retry_at > deadline:
                return False
            refused += 1
            self._wait_until(min(deadline, retry_at + self._backoff(refused, ahead)))
        return False

    def _backoff(self, refused: int, ahead: float) -> float:
        """Told "later" `refused` times in a row: a random share of a window that doubles
        each time, up to the caller's horizon. Every caller told "later" learns the same
        first free slot; without it they would all write at that moment, one would get
        the slot, and the table would take a write per waiting caller per slot."""
        window = min(ahead, self._pace.spacing * 2.0**refused)
        return self._jitter() * window

    def pause(self, seconds: float) -> None:
        """Nobody in the account gets a slot for `seconds` (at most MAX_PAUSE_SECONDS)."""
        until = self._clock() + max(0.0, min(seconds, MAX_PAUSE_SECONDS))
        with self._ready:
            self._paused_until = max(self._paused_until, until)
            self._slots = deque(pair for pair in self._slots if pair[1] >= until)
        self._store.pause(until)

    def _local_slot(self, deadline: float) -> tuple[float | None, int]:
        """When a slot this process booked may be used, or how many slots this thread must
        book (0: it waited for the thread booking now; look again)."""
        with self._ready:
            now = self._clock()
            while self._slots and self._slots[0][1] + self._pace.tolerance < now:
                self._slots.popleft()  # too late to use: wasted, as a dead holder's are
            if self._slots and self._slots[0][0] <= deadline:
                return self._slots.popleft()[0], 0
            if self._booking:
                self._waiting += 1
                self._ready.wait(min(max(0.0, deadline - now), WAIT_SLICE_SECONDS))
                self._waiting -= 1
                return None, 0
            self._booking = True
            # One booking serves the threads waiting now, up to MAX_STASH of them: the
            # schedule never runs further ahead of any clock than its stores can tell.
            return None, min(MAX_STASH, 1 + self._waiting)

    def _book(self, wanted: int, ahead: float, deadline: float) -> float | None:
        """Book `wanted` slots (more when the schedule is idle); None when booked, else
        when to try again."""
        try:
            now = self._clock()
            latest = min(now + ahead, deadline)
            answer = self._store.book(
                wanted,
                max(wanted, self._pace.idle_slots),
                self._pace.spacing,
                max(now, self._paused_until),
                latest,
            )
        finally:
            with self._ready:
                self._booking = False
                self._ready.notify_all()
        if isinstance(answer, Later):
            # Again when the schedule is booked less than `ahead` beyond now; a slot past
            # the deadline cannot be had at all.
            if answer.start > deadline:
                return deadline + 1.0
            return max(answer.start - ahead, now + self._pace.spacing)
        # Slots found idle may be used up to the tolerance early (at once, when the store
        # gave idle_slots); the others at their time.
        early = self._pace.tolerance if answer.start <= now else 0.0
        slots = [answer.start + i * self._pace.spacing for i in range(answer.count)]
        with self._ready:
            self._slots.extend((max(now, slot - early), slot) for slot in slots)
            self._ready.notify_all()
        return None

    def _wait_until(self, at: float) -> None:
        wait = at - self._clock()
        if wait > 0:
            self._sleep(wait)


class MemorySchedule:
    """The ScheduleStore of one process: the same schedule, kept in memory (the CLI and
    tests without a table)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frontier = 0.0
        self._paused_until = 0.0

    def book(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later:
        with self._lock:
            start = max(self._frontier, self._paused_until, now)
            if start > latest_start:
                return Later(start)
            count = idle_slots if start == now else slots
            self._frontier = start + count * spacing
            return Booked(start, count)

    def pause(self, until: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, until)


def pause_if_told(
    budget: RateBudget | RequestBudget | None,
    answer: WistiaAnswer,
    now: float,
    log: Log | None = None,
) -> float | None:
    """Retry-After's seconds, if the answer has one. On a 429 or 503 they pause every caller
    in the account (a `budget` of None: there is none to pause), not only the one that saw
    it; a pause that cannot be shared (the budget's table unavailable) is Wistia's to
    repeat to the others. With `log`, both are said."""
    seconds = parse_retry_after(answer.retry_after, now)
    if seconds is None or answer.status not in PAUSING_STATUSES or budget is None:
        return seconds
    try:
        budget.pause(seconds)
    except RetryableError as error:
        if log is not None:
            log.warning("could not pause the request budget", reason=str(error))
    if log is not None:
        log.info(
            "Wistia asked to slow down; the request budget is paused",
            http_status=answer.status,
            seconds=round(seconds, 2),
        )
    return seconds


class Unmetered:
    """No budget at all: every take succeeds at once (tests of other behaviour)."""

    def take(self, caller: str, deadline: float) -> bool:
        lookahead(caller)
        return True

    def pause(self, seconds: float) -> None:
        return None
