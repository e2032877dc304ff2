"""The submission policy, driven with every sequence of attempt results Hypothesis finds.

Whatever Wistia, the network and the secret do, the loop ends; it never sleeps past the
deadline nor sooner than Retry-After; it reads the token again at most once; a permanent
answer is never retried; and every answer that may have created a media is remembered, so
the next submission looks for it first."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from s3_to_wistia.errors import PermanentError
from s3_to_wistia.model import Claim
from s3_to_wistia.policy import (
    SETTLE_SECONDS,
    Accepted,
    AttemptResult,
    Decision,
    Fail,
    FoundLost,
    HandBack,
    NotFoundYet,
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

MEDIA = {"hashed_id": "m1"}
NOW = 1_800_000_000.0

results = st.one_of(
    st.just(Accepted(MEDIA)),
    st.just(FoundLost(MEDIA)),
    st.just(NotFoundYet()),
    st.builds(
        Refused,
        st.builds(PermanentError, st.just("refused"), st.sampled_from([400, 401, 403, None])),
    ),
    st.builds(
        Unavailable,
        st.just("busy"),
        st.one_of(st.none(), st.floats(0, 120)),
        st.booleans(),
    ),
    st.builds(Unreachable, st.just("no answer"), st.booleans(), st.booleans()),
)


@dataclass
class Run:
    decisions: list[Decision]
    tries: Tries
    sleeps: list[float]
    results: list[AttemptResult]


def drive(
    script: list[AttemptResult],
    max_attempts: int,
    budget: float,
    fraction: float,
) -> Run:
    """The Importer's loop with the attempts taken from `script` (the last one repeats)."""
    now, deadline = NOW, NOW + budget
    tries = Tries()
    decisions: list[Decision] = []
    sleeps: list[float] = []
    used: list[AttemptResult] = []
    for step in range(100):
        tries = tries.next_attempt()
        result = script[min(step, len(script) - 1)]
        used.append(result)
        decision, tries = decide(
            result,
            tries,
            now=now,
            deadline=deadline,
            max_attempts=max_attempts,
            random_fraction=fraction,
        )
        decisions.append(decision)
        if isinstance(decision, Wait):
            sleeps.append(decision.delay)
            now += decision.delay
        elif not isinstance(decision, ReadTokenAgain):
            return Run(decisions, tries, sleeps, used)
    raise AssertionError("the policy never ended")


scripts = st.lists(results, min_size=1, max_size=30)
attempt_limits = st.integers(1, 20)
budgets = st.floats(0, 900)
fractions = st.floats(0, 1)


@settings(max_examples=400)
@given(scripts, attempt_limits, budgets, fractions)
def test_the_loop_ends_within_its_attempts_and_never_sleeps_past_the_deadline(
    script: list[AttemptResult], max_attempts: int, budget: float, fraction: float
) -> None:
    run = drive(script, max_attempts, budget, fraction)

    # A 401 adds one pass to read the token again; nothing else exceeds the limit.
    assert run.tries.count <= max_attempts + 1
    assert sum(run.sleeps) <= budget + 1e-6  # float sums of the delays
    assert isinstance(run.decisions[-1], Submit | Fail | HandBack)


@settings(max_examples=400)
@given(scripts, attempt_limits, budgets, fractions)
def test_the_token_is_read_again_at_most_once_and_only_after_a_401(
    script: list[AttemptResult], max_attempts: int, budget: float, fraction: float
) -> None:
    run = drive(script, max_attempts, budget, fraction)

    rereads = [i for i, d in enumerate(run.decisions) if isinstance(d, ReadTokenAgain)]
    assert len(rereads) <= 1
    for index in rereads:
        result = run.results[index]
        assert isinstance(result, Refused) and result.error.http_status == 401


@settings(max_examples=400)
@given(scripts, attempt_limits, budgets, fractions)
def test_answers_decide_as_they_must(
    script: list[AttemptResult], max_attempts: int, budget: float, fraction: float
) -> None:
    run = drive(script, max_attempts, budget, fraction)

    last, final = run.results[-1], run.decisions[-1]
    if isinstance(last, Accepted | FoundLost):
        assert final == Submit(MEDIA, recovered=isinstance(last, FoundLost))
    if isinstance(final, Fail):
        # Only a permanent answer fails an object, and a 401 only on its second time.
        assert isinstance(last, Refused)
        if last.error.http_status == 401:
            assert run.tries.token_refreshed
    if isinstance(last, NotFoundYet):
        assert isinstance(final, HandBack)


@settings(max_examples=400)
@given(scripts, attempt_limits, budgets, fractions)
def test_every_retry_honours_retry_after_and_every_maybe_created_answer_is_remembered(
    script: list[AttemptResult], max_attempts: int, budget: float, fraction: float
) -> None:
    run = drive(script, max_attempts, budget, fraction)

    waits = iter(run.sleeps)
    for result, decision in zip(run.results, run.decisions, strict=True):
        if isinstance(decision, Wait):
            delay = next(waits)
            if isinstance(result, Unavailable) and result.retry_after is not None:
                assert delay >= result.retry_after
    maybe_created = sum(
        (isinstance(r, Unreachable) and r.maybe_received)
        or (isinstance(r, Unavailable) and r.maybe_created)
        for r, d in zip(run.results, run.decisions, strict=True)
    )
    assert run.tries.unanswered == maybe_created


@given(
    st.integers(0, 5),
    st.one_of(st.none(), st.floats(0, 3 * SETTLE_SECONDS)),
    st.booleans(),
)
def test_a_submission_of_unknown_fate_is_looked_for_before_submitting_again(
    unanswered: int, timed_out_ago: float | None, lookup: bool
) -> None:
    tries = Tries(
        unanswered=unanswered,
        timed_out_at=None if timed_out_ago is None else NOW - timed_out_ago,
    )

    step = plan(tries, NOW, lookup)

    if not lookup or unanswered == 0:
        assert step is Step.SUBMIT
    elif timed_out_ago is not None and timed_out_ago < SETTLE_SECONDS:
        assert step is Step.LOOK_ONLY
    else:
        assert step is Step.LOOK_THEN_SUBMIT


def test_what_earlier_invocations_left_in_the_record_carries_over() -> None:
    claim = Claim("c", 2, "2027-01-15T08:00:00Z", "2027-01-15T08:00:05.250Z")

    tries = Tries.after(claim)

    assert (tries.unanswered, tries.first_submit_at, tries.timed_out_at) == (
        2,
        NOW,
        NOW + 5.25,
    )
