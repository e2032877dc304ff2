"""DynamoDB: the request budget's schedule, one item for the whole account.

The item holds the schedule's frontier (`next_slot_at`, the next free slot) and the end of
any pause (`paused_until`), epoch seconds. A booking is one conditional UpdateItem. The
first free slot is the latest of the frontier, the pause's end and now; DynamoDB's
expressions have no max(), so the update guesses which of the three it is (from the item
as last seen) and its condition checks the guess. A wrong guess fails the condition,
returns the item as it is, and the next try knows: one write in the steady state, two
after a change of regime (idle to busy, a pause).

Clocks: every caller books with its own clock, so each answer's Date (DynamoDB's clock, to
the second) is checked against it: a caller whose clock is more than MAX_CLOCK_SKEW_SECONDS
off is refused (a laptop running the CLI with a wrong clock would hold the whole account
back, or jump its queue). A frontier or pause further ahead than any caller with a right
clock can book (implausible_lead) was left by one with a wrong clock: the first caller that
has checked its own clock puts it back to now, so nobody waits it out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3_to_wistia.budget import (
    BOOKING_HORIZON_SECONDS,
    MAX_PAUSE_SECONDS,
    MAX_STASH,
    Booked,
    Later,
)
from s3_to_wistia.errors import RetryableError

# The item's key: one schedule for every caller of the account.
BUDGET_KEY = {"budget": {"S": "wistia-account"}}
# Tries of one booking: each failed one learns the item's state (a change of regime costs
# one); more only if the regime keeps changing under it.
BOOKING_TRIES = 6
THROTTLED_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
# How far a caller's clock may be from DynamoDB's (beyond the Date header's whole second).
MAX_CLOCK_SKEW_SECONDS = 2.0


def implausible_lead(spacing: float) -> tuple[float, float]:
    """How far ahead of a right clock the frontier and the pause's end can never be: a
    booking starts within the horizon and takes at most MAX_STASH slots; a pause lasts at
    most MAX_PAUSE_SECONDS; and the clock that wrote them may be MAX_CLOCK_SKEW_SECONDS off."""
    frontier = BOOKING_HORIZON_SECONDS + MAX_STASH * spacing + MAX_CLOCK_SKEW_SECONDS
    return frontier, MAX_PAUSE_SECONDS + MAX_CLOCK_SKEW_SECONDS


class DynamoDBSchedule:
    """The ScheduleStore in a DynamoDB table keyed by `budget` (string)."""

    def __init__(
        self, dynamodb_client: Any, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = dynamodb_client
        self._table = table_name
        # The caller's clock, the one its bookings are in (checked against DynamoDB's).
        self._clock = clock
        # When this booking began: (the caller's time, monotonic time).
        self._began = (0.0, 0.0)
        # The item as last seen: frontier and pause end (0.0 when absent).
        self._seen = (0.0, 0.0)
        # This process's clock agreed with DynamoDB's in an answer.
        self._clock_checked = False

    def book(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later:
        self._began = (self._clock(), time.monotonic())
        for _ in range(BOOKING_TRIES):
            answer = self._try(slots, idle_slots, spacing, now, latest_start)
            if answer is not None:
                return answer
        raise RetryableError("the request budget stayed contended; try again")

    def _try(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later | None:
        """One try; None when it only learnt the item's state (or put a wrong mark back)."""
        wrong = self._wrong_clocks_mark(spacing)
        if wrong and self._clock_checked:
            self._put_back(wrong)
            return None
        frontier, paused_until = self._seen
        # The item only ever moves forward: what was seen is a lower bound.
        start = max(frontier, paused_until, now)
        if start > latest_start and not wrong:
            return Later(start)
        if start == now or wrong:
            # (a mark to put back: first one answer, to check this process's clock)
            return self._write(_IDLE, idle_slots, spacing, now, now, latest_start)
        if start == paused_until and paused_until > frontier:
            return self._write(_PAUSED, slots, spacing, start, now, latest_start)
        return self._write(_BUSY, slots, spacing, start, now, latest_start)

    def pause(self, until: float) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=BUDGET_KEY,
                UpdateExpression="SET paused_until = :until",
                ConditionExpression="attribute_not_exists(paused_until) OR paused_until < :until",
                ExpressionAttributeValues={":until": _number(until)},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":  # a longer pause stands
                raise _classified(error, "be paused") from error
        except BotoCoreError as error:
            raise RetryableError(f"the request budget could not be paused: {error}") from error

    def _wrong_clocks_mark(self, spacing: float) -> dict[str, float]:
        """The item's times (as last seen) that no right clock could have written."""
        now = self._began[0]
        frontier_lead, pause_lead = implausible_lead(spacing)
        frontier, paused_until = self._seen
        wrong = {}
        if frontier > now + frontier_lead:
            wrong["next_slot_at"] = frontier
        if paused_until > now + pause_lead:
            wrong["paused_until"] = paused_until
        return wrong

    def _put_back(self, wrong: dict[str, float]) -> None:
        """Set the times a wrong clock wrote back to now, if they are still what was seen."""
        names = sorted(wrong)
        self._update(
            "SET " + ", ".join(f"{n} = :now" for n in names),
            " AND ".join(f"{n} = :{n}" for n in names),
            {":now": _number(self._clock()), **{f":{n}": _number(wrong[n]) for n in names}},
        )

    def _update(
        self, update: str, condition: str, values: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """One conditional UpdateItem of the schedule; the item as it is then (as it was,
        when the condition failed) is remembered. DynamoDB's answer, and whether it applied."""
        try:
            answer: dict[str, Any] = self._db.update_item(
                TableName=self._table,
                Key=BUDGET_KEY,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise _classified(error, "book a slot") from error
            self._seen = _state(error.response.get("Item") or {})
            return dict(error.response), False
        except BotoCoreError as error:
            raise RetryableError(f"the request budget could not be read: {error}") from error
        self._seen = _state(answer.get("Attributes") or {})
        return answer, True

    def _check_clock(self, response: dict[str, Any]) -> None:
        """Refuse to book with a clock DynamoDB's answer says is wrong: DynamoDB's time
        (its Date, to the second) lies between this booking's start and its answer."""
        now, began = self._began
        elapsed = time.monotonic() - began
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            return
        try:
            aws_time = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        # (the Date is cut to its second: DynamoDB's time is within the second after it)
        if aws_time + 1.0 < now - MAX_CLOCK_SKEW_SECONDS:
            off = f"{now - aws_time - 0.5:.0f} s ahead of"
        elif aws_time > now + elapsed + MAX_CLOCK_SKEW_SECONDS:
            off = f"{aws_time + 0.5 - now - elapsed:.0f} s behind"
        else:
            self._clock_checked = True
            return
        raise RetryableError(
            f"this machine's clock is {off} AWS's (DynamoDB's Date header): the request "
            "budget is shared by the time of day, so nothing is sent to Wistia until the "
            "clock is right (synchronise it, e.g. with NTP)"
        )

    def _write(
        self,
        regime: str,
        count: int,
        spacing: float,
        start: float,
        now: float,
        latest_start: float,
    ) -> Booked | None:
        """One conditional write for the regime guessed; None when the guess was wrong (the
        item as it is then is remembered)."""
        if regime is _BUSY:
            # Every concurrent booker's increment applies in turn: no lost update.
            update = "SET next_slot_at = next_slot_at + :span"
            values = {":span": _number(count * spacing), ":now": _number(now)}
            values[":latest"] = _number(latest_start)
        else:
            update = "SET next_slot_at = :end"
            values = {":start": _number(start), ":end": _number(start + count * spacing)}
        answer, applied = self._update(update, regime, values)
        self._check_clock(answer)
        if not applied:
            return None
        return Booked(self._seen[0] - count * spacing if regime is _BUSY else start, count)


# The three regimes. Idle: the frontier and any pause lie at or before now (:start).
_IDLE = (
    "(attribute_not_exists(next_slot_at) OR next_slot_at <= :start) "
    "AND (attribute_not_exists(paused_until) OR paused_until <= :start)"
)
# Busy: the frontier is the first free slot, between now and the latest start allowed.
_BUSY = (
    "next_slot_at BETWEEN :now AND :latest "
    "AND (attribute_not_exists(paused_until) OR paused_until <= next_slot_at)"
)
# Paused: the pause's end (:start) is the first free slot.
_PAUSED = "paused_until = :start AND (attribute_not_exists(next_slot_at) OR next_slot_at <= :start)"


def _state(item: dict[str, Any]) -> tuple[float, float]:
    return (_read(item.get("next_slot_at")), _read(item.get("paused_until")))


def _read(value: dict[str, str] | None) -> float:
    return float(value["N"]) if value and "N" in value else 0.0


def _number(seconds: float) -> dict[str, str]:
    # Microseconds: far finer than any spacing, and exact in DynamoDB's decimals.
    return {"N": str(Decimal(f"{seconds:.6f}"))}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))


def _classified(error: ClientError, doing: str) -> RetryableError:
    code = _code(error)
    hint = "" if code in THROTTLED_CODES else "; check the budget table and the role's permissions"
    return RetryableError(f"the request budget could not {doing} ({code}){hint}")
