"""The request budget's schedule in DynamoDB (moto's server, the table made from
template.yaml): concurrent processes booking, the regimes a booking must guess (idle,
busy, paused), and the Importer waiting for its slot against it."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import boto3
import pytest
from botocore.config import Config

from local_stack.events import s3_notification, upload
from local_stack.harness import (
    CapturedLogger,
    CountingMetrics,
    LambdaContext,
    budget_times,
)
from local_stack.template import Stack
from s3_to_wistia.adapters.budget import DynamoDBSchedule
from s3_to_wistia.backfill import BackfillSettings
from s3_to_wistia.budget import BACKFILL, IMPORTS, POLLER, Booked, Later, Pace, SharedBudget
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import ObjectRef, Status
from s3_to_wistia.pacing import PacedWistia
from s3_to_wistia.wiring import build_backfill_function, build_rate_budget
from wistia_emulator import WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


def schedule(stack: Stack) -> DynamoDBSchedule:
    client = boto3.session.Session().client("dynamodb", config=Config(max_pool_connections=20))
    return DynamoDBSchedule(client, stack.resources["RateBudgetTable"])


def test_processes_booking_at_once_never_share_a_slot(stack: Stack) -> None:
    # Given eight processes, each with its own client, booking 15 slots each at once
    spacing = 0.01
    booked: list[Booked] = []
    lock = threading.Lock()
    now = time.time()

    def book_many() -> None:
        store = schedule(stack)
        for _ in range(15):
            answer = store.book(1, 1, spacing, now, now + 3600)
            assert isinstance(answer, Booked)
            with lock:
                booked.append(answer)

    threads = [threading.Thread(target=book_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the 120 slots are 120 distinct places of the schedule, a spacing apart
    starts = sorted(b.start for b in booked)
    assert len(starts) == 120
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(spacing, abs=1e-5)
    assert budget_times(stack)["next_slot_at"] == pytest.approx(starts[-1] + spacing, abs=1e-5)


def test_an_idle_schedule_lends_several_slots_and_a_busy_one_only_what_is_asked(
    stack: Stack,
) -> None:
    store, now = schedule(stack), time.time()

    idle = store.book(1, 5, 0.1, now, now + 10)
    busy = store.book(1, 5, 0.1, now, now + 10)

    assert idle == Booked(pytest.approx(now), 5)  # type: ignore[arg-type]
    assert isinstance(busy, Booked)
    assert (busy.start, busy.count) == (pytest.approx(now + 0.5), 1)


def test_a_pause_moves_every_later_booking_past_its_end(stack: Stack) -> None:
    first, second, now = schedule(stack), schedule(stack), time.time()
    first.book(1, 1, 0.1, now, now + 10)

    second.pause(now + 2.0)
    after = first.book(1, 1, 0.1, now, now + 10)  # `first` last saw no pause
    shorter = schedule(stack)
    shorter.pause(now + 1.0)  # a shorter pause does not shorten it

    assert isinstance(after, Booked)
    assert after.start == pytest.approx(now + 2.0)
    assert budget_times(stack)["paused_until"] == pytest.approx(now + 2.0)


def test_a_booking_beyond_the_latest_start_is_refused_and_books_nothing(stack: Stack) -> None:
    store, now = schedule(stack), time.time()
    store.book(1, 1, 5.0, now, now + 10)  # the next 5 s are taken

    refused = schedule(stack).book(1, 1, 0.1, now, now + 1.0)

    assert refused == Later(pytest.approx(now + 5.0))  # type: ignore[arg-type]
    assert budget_times(stack)["next_slot_at"] == pytest.approx(now + 5.0)


def test_the_shared_budget_over_dynamodb_paces_processes_and_refuses_the_poller(
    stack: Stack,
) -> None:
    pace = Pace.of(6000, window_seconds=1.0)
    budgets = [SharedBudget(schedule(stack), pace) for _ in range(3)]
    schedule(stack).book(1, 1, 5.0, time.time(), time.time() + 60)  # imports hold 5 s

    assert budgets[0].take(POLLER, deadline=time.time() + 2.0) is False
    before = budget_times(stack)["next_slot_at"]
    assert budgets[1].take(IMPORTS, deadline=time.time() + 0.5) is False  # 5 s is too far
    assert budget_times(stack)["next_slot_at"] == before  # the refusals booked nothing


def test_a_missing_budget_table_is_a_retryable_error_naming_the_budget(stack: Stack) -> None:
    store = DynamoDBSchedule(boto3.client("dynamodb"), "no-such-budget-table")

    with pytest.raises(RetryableError, match="request budget"):
        store.book(1, 1, 0.1, time.time(), time.time() + 1)


def test_the_importer_books_its_submissions_on_the_stacks_budget(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given the function as the template configures it (the budget table included)
    assert settings.rate_budget_table == stack.resources["RateBudgetTable"]
    importer = importer_for(settings)
    objects = [upload(stack.bucket, f"budget/{n}.mp4", VIDEO) for n in range(3)]
    started = time.time()

    # When it imports three objects
    for obj in objects:
        answer = handle_event(
            s3_notification(obj),
            LambdaContext(),
            importer,
            importer.dead_letters,
            captured_log.logger,
        )
        assert answer["results"][0]["status"] == "SUBMITTED"

    # Then their submissions were booked on the schedule every caller of the stack shares
    assert len(wistia_emulator.requests()) == 3
    assert budget_times(stack)["next_slot_at"] > started


def test_without_a_table_the_budget_is_this_process_alone(settings: Settings) -> None:
    budget = build_rate_budget(replace(settings, rate_budget_table=None))

    assert budget.take(IMPORTS, deadline=time.time() + 1.0)


def test_the_backfill_books_on_the_stacks_budget_instead_of_its_own_pace(
    stack: Stack, settings: Settings, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given the backfill function as the template configures it (the budget table included)
    function = build_backfill_function(
        settings, BackfillSettings(), captured_log.logger, CountingMetrics()
    )
    up = upload(stack.bucket, "budget/backfill.mp4", VIDEO)
    obj = ObjectRef(up.bucket, up.key, up.version_id, up.etag, up.size, source_event={})
    started = time.time()

    outcome = function.importer.import_object(obj, deadline=time.time() + 20)

    # Then its submission was booked on the schedule every caller shares, as the backfill's
    assert outcome.status is Status.SUBMITTED
    assert budget_times(stack)["next_slot_at"] > started
    assert function.importer.caller == BACKFILL
    assert not isinstance(function.importer.wistia, PacedWistia)


def test_without_a_budget_table_the_backfill_keeps_to_its_own_pace(
    settings: Settings, captured_log: CapturedLogger
) -> None:
    backfill = BackfillSettings(requests_per_minute=120, concurrency=4)

    function = build_backfill_function(
        replace(settings, rate_budget_table=None), backfill, captured_log.logger, CountingMetrics()
    )

    # BACKFILL_REQUESTS_PER_MINUTE over BACKFILL_CONCURRENCY instances: one call every 2 s each
    assert isinstance(function.importer.wistia, PacedWistia)
    assert function.importer.wistia.pace.interval == 2.0


def skewed(stack: Stack, seconds: float) -> SharedBudget:
    """A process whose clock is `seconds` off (a laptop running the CLI, say)."""

    def clock() -> float:
        return time.time() + seconds

    client = boto3.session.Session().client("dynamodb")
    store = DynamoDBSchedule(client, stack.resources["RateBudgetTable"], clock=clock)
    return SharedBudget(store, Pace.of(600), clock=clock)


@pytest.mark.parametrize(("seconds", "words"), [(3600.0, "ahead of"), (-3600.0, "behind")])
def test_a_process_whose_clock_is_wrong_is_refused_naming_its_clock(
    stack: Stack, seconds: float, words: str
) -> None:
    with pytest.raises(RetryableError, match=f"clock is 3(599|600|601) s {words} AWS's"):
        skewed(stack, seconds).take(IMPORTS, deadline=time.time() + seconds + 30)


def test_what_a_clock_an_hour_fast_booked_holds_nobody_back(stack: Stack) -> None:
    # Given a process whose clock is an hour fast booked (and was refused: too late, the
    # frontier is an hour ahead of everybody else's now)
    with pytest.raises(RetryableError, match="clock"):
        skewed(stack, 3600.0).take(IMPORTS, deadline=time.time() + 3630)
    assert budget_times(stack)["next_slot_at"] > time.time() + 3000

    # When a process with the right time wants to send within five seconds
    right = SharedBudget(schedule(stack), Pace.of(600))
    took = right.take(IMPORTS, deadline=time.time() + 5.0)

    # Then it gets its slot: the hour was put back to now, not waited out
    assert took is True
    assert budget_times(stack)["next_slot_at"] < time.time() + 5.0


def test_a_pause_an_hour_long_from_a_wrong_clock_is_put_back(stack: Stack) -> None:
    # Given a pause's end an hour away (Retry-After is capped at 120 s: a wrong clock wrote it)
    schedule(stack).pause(time.time() + 3600)

    # When a process with the right time wants to send
    took = SharedBudget(schedule(stack), Pace.of(600)).take(IMPORTS, time.time() + 5.0)

    # Then it does, and the pause ends now
    assert took is True
    assert budget_times(stack)["paused_until"] <= time.time()
