"""The submission policy, as pure decisions: before an attempt, what to do (look for a lost
import first? submit?); after it, what comes next (record, fail, read the token again,
wait, or hand the object back). No I/O, no clock, no randomness of its own: the Importer
runs the attempts and follows the answers, and the property tests drive them directly.

The policies it combines:
- a 401 may mean the token was rotated since it was cached: read the secret once more;
- Wistia has no idempotency key, so after a submission whose answer never came, look in
  Wistia's media list before submitting again (lookup_before_resubmit);
- after a timeout Wistia had the whole request and may still be creating the media: for
  SETTLE_SECONDS nobody submits again, they look and hand the object back;
- retries back off with jitter, honour Retry-After, stop at max_attempts and never sleep
  past the invocation's deadline: the object is then handed back to Lambda's retries;
- no slot in the account's request budget before the deadline: handed back as well.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from s3_to_wistia.errors import PermanentError
from s3_to_wistia.model import Claim
from s3_to_wistia.rules import retry_delay
from s3_to_wistia.times import parse_iso

# How long after a timed-out submission Wistia may still create its media.
SETTLE_SECONDS = 30.0


@dataclass(frozen=True)
class Tries:
    """What one object's submissions have come to so far, across invocations."""

    count: int = 0  # attempts in this invocation
    # Submissions whose answer never came: Wistia may hold a media for them.
    unanswered: int = 0
    first_submit_at: float | None = None  # epoch seconds
    timed_out_at: float | None = None  # epoch seconds
    # The token was read again after a 401 (at most once per invocation).
    token_refreshed: bool = False

    @classmethod
    def after(cls, claim: Claim) -> Tries:
        """What earlier invocations left in the record."""
        return cls(
            unanswered=claim.earlier_attempts,
            first_submit_at=_epoch(claim.first_submit_at),
            timed_out_at=_epoch(claim.timed_out_at),
        )

    def next_attempt(self) -> Tries:
        return replace(self, count=self.count + 1)

    def submitting(self, now: float) -> Tries:
        return self if self.first_submit_at is not None else replace(self, first_submit_at=now)


class Step(Enum):
    """What an attempt does."""

    SUBMIT = "submit"
    LOOK_THEN_SUBMIT = "look for a lost import, then submit if there is none"
    LOOK_ONLY = "look for a lost import; Wistia may still be creating it"


def plan(tries: Tries, now: float, lookup_before_resubmit: bool) -> Step:
    if not (lookup_before_resubmit and tries.unanswered):
        return Step.SUBMIT
    if tries.timed_out_at is not None and now - tries.timed_out_at < SETTLE_SECONDS:
        return Step.LOOK_ONLY
    return Step.LOOK_THEN_SUBMIT


# --- what an attempt came to -------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    media: dict[str, Any]


@dataclass(frozen=True)
class FoundLost:
    """The media an earlier, unanswered submission created."""

    media: dict[str, Any]


@dataclass(frozen=True)
class NotFoundYet:
    """Looked and found nothing, while Wistia may still be creating the media."""


@dataclass(frozen=True)
class Refused:
    """A permanent answer (or an unusable secret)."""

    error: PermanentError


@dataclass(frozen=True)
class Unavailable:
    """An answer that may be better later: 429, 5xx, a 200 we cannot read, a lookup or a
    secret that failed for now."""

    reason: str
    retry_after: float | None = None
    # Wistia answered 200 but with nothing we can read: it may have created the media.
    maybe_created: bool = False


@dataclass(frozen=True)
class Unreachable:
    reason: str
    maybe_received: bool
    still_working: bool = False


@dataclass(frozen=True)
class OverBudget:
    """The account's request budget had no slot for the request before the deadline: the
    request was not sent."""


AttemptResult = (
    Accepted | FoundLost | NotFoundYet | Refused | Unavailable | Unreachable | OverBudget
)
OVER_BUDGET_REASON = "no slot in the account's Wistia request budget before the deadline"


# --- what comes next ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Submit:
    media: dict[str, Any]
    recovered: bool = False


@dataclass(frozen=True)
class Fail:
    error: PermanentError


@dataclass(frozen=True)
class ReadTokenAgain:
    pass


@dataclass(frozen=True)
class Wait:
    delay: float
    reason: str


@dataclass(frozen=True)
class HandBack:
    reason: str


Decision = Submit | Fail | ReadTokenAgain | Wait | HandBack


def decide(
    result: AttemptResult,
    tries: Tries,
    *,
    now: float,
    deadline: float,
    max_attempts: int,
    random_fraction: float,
) -> tuple[Decision, Tries]:
    """What to do after an attempt, and the tries as they stand after it."""
    if isinstance(result, Unreachable | Unavailable):
        return _retry_or_hand_back(
            result,
            tries,
            now=now,
            deadline=deadline,
            max_attempts=max_attempts,
            random_fraction=random_fraction,
        )
    if isinstance(result, Refused):
        if result.error.http_status == 401 and not tries.token_refreshed:
            return ReadTokenAgain(), replace(tries, token_refreshed=True)
        return Fail(result.error), tries
    if isinstance(result, NotFoundYet):
        return HandBack("Wistia may still be creating the media"), tries
    if isinstance(result, OverBudget):
        return HandBack(OVER_BUDGET_REASON), tries
    return Submit(result.media, recovered=isinstance(result, FoundLost)), tries


def _retry_or_hand_back(
    result: Unreachable | Unavailable,
    tries: Tries,
    *,
    now: float,
    deadline: float,
    max_attempts: int,
    random_fraction: float,
) -> tuple[Decision, Tries]:
    """Wait and try again, unless the tries or the invocation's time are used up."""
    if isinstance(result, Unreachable):
        retry_after = None
        tries = replace(
            tries,
            unanswered=tries.unanswered + int(result.maybe_received),
            timed_out_at=now if result.still_working else tries.timed_out_at,
        )
    else:
        retry_after = result.retry_after
        tries = replace(tries, unanswered=tries.unanswered + int(result.maybe_created))
    delay = retry_delay(tries.count, retry_after, random_fraction)
    if tries.count >= max_attempts or delay > deadline - now:
        return HandBack(result.reason), tries
    return Wait(delay, result.reason), tries


def _epoch(text: str | None) -> float | None:
    return None if text is None else parse_iso(text)
