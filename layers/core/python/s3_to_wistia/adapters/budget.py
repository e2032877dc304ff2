"""DynamoDB: the request budget's schedule, one item for the whole account.

The item holds the schedule's frontier (`next_slot_at`, the next free slot) and the end of
any pause (`paused_until`), epoch seconds. A booking is one conditional UpdateItem. The
first free slot is the latest of the frontier, the pause's end and now; DynamoDB's
expressions have no max(), so the update guesses which of the three it is (from the item
as last seen) and its condition checks the guess. A wrong guess fails the condition,
returns the item as it is, and the next try knows: one write in the steady state, two
after a change of regime (idle to busy, a pause).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3_to_wistia.budget import Booked, Later
from s3_to_wistia.errors import RetryableError

# The item's key: one schedule for every caller of the account.
BUDGET_KEY = {"budget": {"S": "wistia-account"}}
# Tries of one booking: each failed one learns the item's state (a change of regime costs
# one); more only if the regime keeps changing under it.
BOOKING_TRIES = 6
THROTTLED_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)


class DynamoDBSchedule:
    """The ScheduleStore in a DynamoDB table keyed by `budget` (string)."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._db = dynamodb_client
        self._table = table_name
        # The item as last seen: frontier and pause end (0.0 when absent).
        self._seen = (0.0, 0.0)

    def book(
        self, slots: int, idle_slots: int, spacing: float, now: float, latest_start: float
    ) -> Booked | Later:
        for _ in range(BOOKING_TRIES):
            frontier, paused_until = self._seen
            # The item only ever moves forward: what was seen is a lower bound.
            start = max(frontier, paused_until, now)
            if start > latest_start:
                return Later(start)
            if start == now:
                booked = self._write(_IDLE, idle_slots, spacing, now, now, latest_start)
            elif start == paused_until and paused_until > frontier:
                booked = self._write(_PAUSED, slots, spacing, start, now, latest_start)
            else:
                booked = self._write(_BUSY, slots, spacing, start, now, latest_start)
            if booked is not None:
                return booked
        raise RetryableError("the request budget stayed contended; try again")

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
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=BUDGET_KEY,
                UpdateExpression=update,
                ConditionExpression=regime,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise _classified(error, "book a slot") from error
            self._seen = _state(error.response.get("Item") or {})
            return None
        except BotoCoreError as error:
            raise RetryableError(f"the request budget could not be read: {error}") from error
        self._seen = _state(answer.get("Attributes") or {})
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
