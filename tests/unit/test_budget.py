"""The account's request budget (s3_to_wistia.budget), with the schedule in memory and
processes whose clocks pass only when they sleep: how callers share it, pause it, die
holding it and disagree about the time."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import pytest

from s3_to_wistia.budget import (
    BACKFILL,
    CLI,
    IMPORTS,
    MAX_PAUSE_SECONDS,
    POLLER,
    SHARES,
    Booked,
    Later,
    MemorySchedule,
    Pace,
    SharedBudget,
    lookahead,
)

START = 1_800_000_000.0


class World:
    """True time, shared by every process; each process sees it through its own clock."""

    def __init__(self) -> None:
        self.now = START

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class CountingStore:
    """The in-memory schedule, counting the writes a process makes to it."""

    schedule: MemorySchedule = field(default_factory=MemorySchedule)
    bookings: list[Booked | Later] = field(default_factory=list)

    def book(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later:
        answer = self.schedule.book(slots, idle_slots, spacing, now, latest_start)
        self.bookings.append(answer)
        return answer

    def pause(self, until: float) -> None:
        self.schedule.pause(until)


@dataclass
class Process:
    """One process of the account: its budget, its clock's error, and when its requests
    really left (true time)."""

    budget: SharedBudget
    world: World
    skew: float = 0.0
    sent: list[float] = field(default_factory=list)

    def take(self, caller: str = IMPORTS, within: float = 60.0) -> bool:
        took = self.budget.take(caller, self.world.now + self.skew + within)
        if took:
            self.sent.append(self.world.now)
        return took


def process(world: World, store: CountingStore, pace: Pace, skew: float = 0.0) -> Process:
    budget = SharedBudget(store, pace, clock=lambda: world.now + skew, sleep=world.sleep)
    return Process(budget, world, skew)


PACE = Pace.of(600)  # 600 a minute: a slot every 103 ms, 0.6 s of tolerance


def test_every_callers_requests_leave_at_the_accounts_pace() -> None:
    # Given an import function and a backfill sharing the account's budget
    world, store = World(), CountingStore()
    imports, backfill = process(world, store, PACE), process(world, store, PACE)

    # When both send as fast as the budget lets them, taking turns
    for _ in range(30):
        assert imports.take()
        assert backfill.take(BACKFILL)

    # Then together they never go faster than 97% of 600 a minute, once past the few
    # slots an idle schedule lends at once
    sent = sorted(imports.sent + backfill.sent)
    assert sent[-1] - sent[0] >= (len(sent) - PACE.idle_slots) * PACE.spacing - 1e-6
    assert PACE.spacing == pytest.approx(60 / (600 * 0.97))


def test_an_idle_account_books_several_slots_in_one_write() -> None:
    # Given an account far from its limit (6,000 a minute) and one process
    world, store = World(), CountingStore()
    one = process(world, store, Pace.of(6000))

    # When it sends ten requests 10 ms apart
    for _ in range(10):
        assert one.take()
        world.sleep(0.01)

    # Then the store was written once, not ten times: the slots were lent at once
    assert len(store.bookings) == 1
    assert store.bookings[0] == Booked(START, Pace.of(6000).idle_slots)
    assert Pace.of(6000).idle_slots >= 10


def test_near_the_limit_every_request_is_booked_and_paced() -> None:
    # Given two processes sending as fast as they can, where Wistia counts by the second
    # (so the schedule lends nothing ahead)
    world, store = World(), CountingStore()
    pace = Pace.of(600, window_seconds=1.0)
    first, second = process(world, store, pace), process(world, store, pace)

    # When they keep sending
    for _ in range(10):
        first.take()
        second.take()

    # Then each request was booked on its own and left one spacing after the one before
    assert len(store.bookings) == 20
    sent = sorted(first.sent + second.sent)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap == pytest.approx(pace.spacing, abs=1e-6) for gap in gaps)


def test_imports_book_ahead_where_the_poller_waits_for_what_they_leave() -> None:
    # Given imports have booked the next 5 seconds
    world, store = World(), CountingStore()
    imports, poller = process(world, store, PACE), process(world, store, PACE)
    store.schedule.book(1, 1, 5.0, world.now, world.now + 10)

    # When the poller needs a request within 2 s, and an import one within 10 s
    refused = poller.take(POLLER, within=2.0)
    took = imports.take(IMPORTS, within=10.0)

    # Then the poller is told no at once (it hands its work back), the import goes after
    # the booked 5 s
    assert refused is False
    assert took is True
    assert imports.sent == [pytest.approx(START + 5.0)]
    # And given time the poller gets a slot once less than its 1 s is booked ahead
    assert poller.take(POLLER, within=30.0)
    assert poller.sent[0] >= imports.sent[0]


def test_the_shares_put_imports_first_and_the_poller_last() -> None:
    assert lookahead(IMPORTS) > lookahead(CLI) > lookahead(BACKFILL) > lookahead(POLLER) > 0
    assert max(SHARES.values()) == SHARES[IMPORTS] == 1.0
    with pytest.raises(ValueError, match="unknown caller"):
        lookahead("someone")


def test_a_pause_holds_back_every_process_of_the_account() -> None:
    # Given one process was told by Wistia to wait 3 s
    world, store = World(), CountingStore()
    told, other = process(world, store, PACE), process(world, store, PACE)
    told.budget.pause(3.0)

    # When another process wants to send
    assert other.take()

    # Then it waited the pause out too
    assert other.sent == [pytest.approx(START + 3.0)]


def test_a_pause_longer_than_the_deadline_hands_the_work_back_at_once() -> None:
    world, store = World(), CountingStore()
    told, other = process(world, store, PACE), process(world, store, PACE)
    told.budget.pause(30.0)

    assert other.take(within=5.0) is False
    assert world.now == START  # it did not sit out a wait that could not end in time


def test_a_pause_is_capped_whatever_retry_after_says() -> None:
    world, store = World(), CountingStore()
    told = process(world, store, PACE)
    told.budget.pause(86_400.0)

    assert told.take(within=MAX_PAUSE_SECONDS + 1.0)
    assert told.sent == [pytest.approx(START + MAX_PAUSE_SECONDS)]


def test_a_dead_holder_wastes_only_what_it_booked_and_blocks_nobody() -> None:
    # Given a process booked slots and died before using them (a Lambda killed mid-way)
    world, store = World(), CountingStore()
    dead = process(world, store, PACE)
    assert dead.take()
    booked = store.bookings[-1]
    assert isinstance(booked, Booked)

    # When another process wants to send
    survivor = process(world, store, PACE)
    assert survivor.take()

    # Then it goes right after the dead one's slots: nothing to release, nothing stuck
    assert survivor.sent[0] - START <= booked.count * PACE.spacing + 1e-6
    assert survivor.sent[0] - START <= PACE.tolerance + PACE.spacing


def test_slots_left_unused_too_long_are_dropped_not_used_late() -> None:
    # Given a process holding slots lent by an idle schedule
    world, store = World(), CountingStore()
    one = process(world, store, Pace.of(6000))
    assert one.take()
    writes = len(store.bookings)

    # When its next request comes long after them
    world.sleep(5.0)
    assert one.take()

    # Then it booked a fresh slot rather than use a stale one
    assert len(store.bookings) == writes + 1
    assert one.sent[-1] == START + 5.0


def test_clocks_that_disagree_a_little_keep_every_window_under_the_limit() -> None:
    # Given Wistia counts 10 requests a second (600 a minute), and three processes whose
    # clocks disagree by 6 ms (within the budget's allowance of 1% of the window)
    world, store = World(), CountingStore()
    pace = Pace.of(600, window_seconds=1.0)
    processes = [process(world, store, pace, skew) for skew in (-0.003, 0.0, 0.003)]

    # When they all send as fast as they may for a while
    for _ in range(40):
        for one in processes:
            assert one.take()

    # Then no second of true time holds more than 10 requests
    sent = sorted(t for one in processes for t in one.sent)
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest <= 10


def test_a_clock_far_ahead_delays_the_others_once_by_its_lead_at_most() -> None:
    # Given a process whose clock runs 2 s ahead books first
    world, store = World(), CountingStore()
    ahead, right = process(world, store, PACE, skew=2.0), process(world, store, PACE)
    assert ahead.take()

    # When a process with the right time wants to send, twice
    assert right.take()
    assert right.take()

    # Then it waited the lead out once (the frontier is where the other clock put it),
    # and then went at the ordinary pace
    assert right.sent[0] - START <= 2.0 + PACE.idle_slots * PACE.spacing + 1e-6
    assert right.sent[1] - right.sent[0] == pytest.approx(PACE.spacing, abs=1e-6)


def test_threads_of_one_process_share_a_booking() -> None:
    # Given an idle account and ten threads of one process (an SQS batch's records)
    store = CountingStore()
    budget = SharedBudget(store, Pace.of(60_000))
    results: list[bool] = []

    def send() -> None:
        results.append(budget.take(IMPORTS, deadline=float("inf")))

    # When they all ask for a slot at once
    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then each got one, from one write (two if the first slots aged out meanwhile)
    assert results == [True] * 10
    assert len(store.bookings) <= 2


@dataclass
class Crowded:
    """A schedule other callers keep full: the first `refusals` bookings find it booked to
    the caller's horizon and a slot beyond (someone else got each slot that opened)."""

    world: World
    refusals: int
    attempts: list[float] = field(default_factory=list)

    def book(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later:
        self.attempts.append(self.world.now)
        if len(self.attempts) <= self.refusals:
            return Later(latest_start + spacing)
        return Booked(now, slots)

    def pause(self, until: float) -> None:
        return None


def test_a_caller_refused_again_and_again_backs_off_up_to_its_horizon() -> None:
    # Given a schedule other callers keep booked to the horizon (hundreds of invocations
    # waiting), and a caller whose random share of each back-off is the whole window
    world = World()
    store = Crowded(world, refusals=9)
    budget = SharedBudget(
        store, PACE, clock=lambda: world.now, sleep=world.sleep, jitter=lambda: 1.0
    )

    # When it waits for a slot
    assert budget.take(IMPORTS, deadline=START + 600)

    # Then it asked again after a window doubling each time (from two slots), up to the
    # 10 s the imports' horizon spans, not at every slot that opened: each of those asks is
    # a write to the one item every caller of the account books on
    gaps = [b - a for a, b in itertools.pairwise(store.attempts)]
    windows = [min(10.0, PACE.spacing * 2**n) for n in range(1, 10)]
    assert gaps == pytest.approx([PACE.spacing + w for w in windows])
    assert max(gaps) == pytest.approx(PACE.spacing + 10.0)


def test_the_back_off_never_waits_past_the_deadline() -> None:
    world = World()
    budget = SharedBudget(
        Crowded(world, refusals=100),
        PACE,
        clock=lambda: world.now,
        sleep=world.sleep,
        jitter=lambda: 1.0,
    )

    assert budget.take(IMPORTS, deadline=START + 20) is False
    assert world.now <= START + 20 + PACE.spacing


def test_a_pause_that_comes_while_a_thread_waits_for_its_slot_holds_it_back() -> None:
    # Given a thread waiting for its slot 2 s ahead, while another thread of the process
    # is answered 429 with Retry-After: 5
    world, store = World(), CountingStore()
    store.schedule.book(1, 1, 2.0, START, START + 10)  # the next 2 s are someone else's
    told: list[float] = []

    def sleep(seconds: float) -> None:
        if not told:
            told.append(world.now)
            budget.pause(5.0)
        world.sleep(seconds)

    budget = SharedBudget(store, PACE, clock=lambda: world.now, sleep=sleep)

    # When the waiting thread wakes at its slot
    assert budget.take(IMPORTS, deadline=START + 60)

    # Then it does not send inside the pause: it goes once the pause is over
    assert world.now >= START + 5.0
