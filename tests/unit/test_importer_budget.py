"""The Importer and the account's request budget, against in-memory fakes: each request to
Wistia waits for its slot; no slot in time hands the object back; Wistia's Retry-After
pauses everybody."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from s3_to_wistia.budget import BACKFILL, IMPORTS
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.model import Status
from unit.fakes import World, obj, ok, status, world

DEADLINE_SECONDS = 60.0


@dataclass
class FakeBudget:
    """A budget that says yes (or no, or fails), and remembers who asked and when."""

    answers: list[bool | Exception] = field(default_factory=lambda: [True])
    takes: list[tuple[str, float]] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)
    # What Wistia had been asked when each take came (how many forms).
    forms_at_take: list[int] = field(default_factory=list)
    w: World | None = None

    def take(self, caller: str, deadline: float) -> bool:
        self.takes.append((caller, deadline))
        if self.w is not None:
            self.forms_at_take.append(len(self.w.wistia.forms))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def budgeted(imports: list, budget: FakeBudget | None = None, caller: str = IMPORTS) -> World:
    w = world(imports)
    budget = budget or FakeBudget()
    budget.w = w
    w.importer.budget = budget
    w.importer.caller = caller
    w.objects.put(obj().key)
    return w


def test_each_submission_waits_for_its_slot_first() -> None:
    budget = FakeBudget()
    w = budgeted([status(500), ok("m1")], budget)

    outcome = w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert outcome.status is Status.SUBMITTED
    # One slot per request, each asked for before its request went out
    assert budget.forms_at_take == [0, 1]
    assert [caller for caller, _ in budget.takes] == [IMPORTS, IMPORTS]
    # and the wait may not eat the time the request itself needs
    assert all(deadline < w.clock() + DEADLINE_SECONDS - 2.0 for _, deadline in budget.takes)


def test_the_lookup_for_a_lost_import_waits_for_a_slot_too() -> None:
    budget = FakeBudget()
    w = budgeted([ok("m1")], budget)
    w.records.items[(obj().uri, obj().version)] = {
        "status": "PENDING_RETRY",
        "unanswered_submits": 1,
    }

    w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert w.wistia.lookups == 1
    assert len(budget.takes) == 2  # the lookup, then the submission


def test_no_slot_before_the_deadline_hands_the_object_back_without_calling_wistia() -> None:
    w = budgeted([ok()], FakeBudget([False]))

    with pytest.raises(RetryableError, match="request budget"):
        w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert w.wistia.forms == []
    assert w.dead_letters.sent == []
    record = w.records.record(obj())
    assert record.status == "PENDING_RETRY"
    assert "request budget" in (record.error or "")


def test_a_budget_that_cannot_be_read_is_retried_like_an_unavailable_wistia() -> None:
    budget = FakeBudget([RetryableError("the request budget could not be read"), True])
    w = budgeted([ok("m1")], budget)

    outcome = w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert outcome.status is Status.SUBMITTED
    assert len(w.wistia.forms) == 1
    assert len(w.clock.slept) == 1  # one backoff between the two tries


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_on_a_429_or_503_pauses_the_whole_budget(code: int) -> None:
    budget = FakeBudget()
    w = budgeted([status(code, "Rate limit exceeded", retry_after="3"), ok("m1")], budget)

    outcome = w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert outcome.status is Status.SUBMITTED
    assert budget.pauses == [3.0]
    assert w.clock.slept[0] >= 3.0  # and this caller waits it out as well


def test_other_retryable_answers_pause_nobody() -> None:
    budget = FakeBudget()
    w = budgeted([status(500, retry_after="3"), status(429), ok("m1")], budget)

    w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert budget.pauses == []


def test_a_pause_that_cannot_be_shared_still_waits_and_imports() -> None:
    class Unpausable(FakeBudget):
        def pause(self, seconds: float) -> None:
            raise RetryableError("the request budget could not be paused")

    w = budgeted([status(429, retry_after="2"), ok("m1")], Unpausable())

    outcome = w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert outcome.status is Status.SUBMITTED
    assert "could not pause the request budget" in w.log.messages()


def test_the_caller_name_reaches_the_budget() -> None:
    budget = FakeBudget()
    w = budgeted([ok()], budget, caller=BACKFILL)

    w.importer.import_object(obj(), w.clock() + DEADLINE_SECONDS)

    assert budget.takes[0][0] == BACKFILL
