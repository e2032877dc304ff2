"""Redriving the dead-letter queue once the cause is fixed: the policy, apart from the queue,
the table and the function it works on (ports below) and from how a person sees it (the
command line renders the reports).

For each message it reads the object versions it names and their import records, then:

1. reopens every FAILED record (FAILED -> PENDING_RETRY, the one status besides "new" that
   the function's claim accepts; a FAILED record is otherwise final, so a plain resubmission
   would be ignored as a duplicate);
2. invokes the function with the original event, synchronously (Lambda's own retries and
   on-failure destination apply only to asynchronous invocations, so the redrive adds no
   messages of its own); if the invocation cannot even start, the reopened records are put
   back to FAILED, so nothing is left half done;
3. reads the records again and decides what happens to the message.

The queue holds three shapes of message, all understood here: the function's own dead
letters (contracts.DeadLetterMessage), Lambda's on-failure destination records
(`requestPayload` is the original event), and events EventBridge could not deliver (the event
itself is the body).

A message is deleted, so nothing is lost and repeated redrives never multiply messages, when
every object it names is settled: SUBMITTED, or SKIPPED with the reason in its record (an
object deleted since it failed is recorded SKIPPED by the function, then its message goes);
also when every object not settled failed again for good in this redrive: the function then
sent a fresh dead letter for it (it writes FAILED only after the queue accepted that dead
letter), so the object stays in the queue exactly once, with its latest reason. Otherwise the
message stays. Each object version is redriven at most once per run: another message for it,
such as that fresh dead letter, waits for the next run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from s3_to_wistia.contracts import DeadLetterMessage, ImportRecord
from s3_to_wistia.errors import UnsupportedEvent
from s3_to_wistia.events import parse_notification
from s3_to_wistia.model import ObjectRef, Status

REASON_WIDTH = 160
SETTLED = frozenset({Status.SUBMITTED.value, Status.SKIPPED.value, Status.DELETED.value})


# --- reading the queue's messages ------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter queue, read."""

    message_id: str
    receipt_handle: str
    sent_by: str
    reason: str
    # What to invoke the function with, and the object versions it names.
    event: dict[str, Any] | None = None
    objects: tuple[ObjectRef, ...] = ()
    # Why this message cannot be redriven, when it cannot.
    problem: str | None = None

    @property
    def names(self) -> str:
        if not self.objects:
            return "(no object)"
        return ", ".join(obj.uri for obj in self.objects)


@dataclass(frozen=True)
class _Origin:
    sent_by: str
    reason: str
    event: dict[str, Any] | None = None
    problem: str | None = None


def read_message(message: Mapping[str, Any]) -> DeadLetter:
    """A received SQS message as a DeadLetter, whichever of the queue's writers sent it."""
    origin = _read_body(str(message.get("Body", "")), _attributes(message))
    problem = origin.problem
    objects: tuple[ObjectRef, ...] = ()
    if origin.event is not None and problem is None:
        try:
            parsed = parse_notification(origin.event)
            # A deletion's dead letter (a token without delete rights) is redriven too: its
            # own record is reopened, and the function follows the deletion again.
            objects = (*parsed.objects, *(r.as_record_ref() for r in parsed.removals))
        except UnsupportedEvent as error:
            problem = f"its event is not one the function accepts: {error}"
        if not objects and problem is None:
            problem = "its event names no object to import"
    if problem is None and origin.event is None:
        problem = "no event in it"
    return DeadLetter(
        message_id=str(message.get("MessageId", "")),
        receipt_handle=str(message.get("ReceiptHandle", "")),
        sent_by=origin.sent_by,
        reason=origin.reason,
        event=origin.event if problem is None else None,
        objects=objects,
        problem=problem,
    )


def _read_body(text: str, attributes: dict[str, str]) -> _Origin:
    try:
        body = json.loads(text)
    except ValueError:
        return _Origin("unknown", "its body is not JSON", problem="its body is not JSON")
    if not isinstance(body, dict):
        problem = "its body is not a JSON object"
        return _Origin("unknown", problem, problem=problem)
    if isinstance(body.get("requestContext"), dict) and "requestPayload" in body:
        return _from_lambda_destination(body)
    dead_letter = DeadLetterMessage.from_body(body)
    if dead_letter is not None:
        return _from_function(dead_letter)
    if isinstance(body.get("Records"), list) or body.get("source") == "aws.s3":
        return _from_eventbridge(body, attributes)
    return _Origin(
        "unknown", "not a message this queue's writers send", problem="unrecognised message"
    )


def _from_lambda_destination(body: dict[str, Any]) -> _Origin:
    """Lambda's on-failure destination: the event's retries ran out."""
    response = body.get("responsePayload")
    reason = ""
    if isinstance(response, dict):
        reason = str(response.get("errorMessage") or response.get("errorType") or "")
    condition = body["requestContext"].get("condition") or "failed"
    event = body["requestPayload"]
    if not isinstance(event, dict):
        return _Origin(
            f"Lambda on-failure ({condition})",
            reason or str(condition),
            problem="its requestPayload is not an event",
        )
    return _Origin(f"Lambda on-failure ({condition})", reason or str(condition), event)


def _from_function(dead_letter: DeadLetterMessage) -> _Origin:
    """The function's own dead letter for one object."""
    status = dead_letter.http_status
    sent_by = "the function" + (f" (HTTP {status})" if status else "")
    event = dead_letter.redrive_event()
    if event is None:
        return _Origin(
            sent_by,
            dead_letter.reason,
            problem="the function could not read the message it came from",
        )
    return _Origin(sent_by, dead_letter.reason, event)


def _from_eventbridge(body: dict[str, Any], attributes: dict[str, str]) -> _Origin:
    """An event as it is: EventBridge's dead-letter delivery for its rule."""
    code = attributes.get("ERROR_CODE")
    detail = attributes.get("ERROR_MESSAGE")
    reason = ": ".join(part for part in (code, detail) if part) or "undelivered event"
    sent_by = "EventBridge" if "RULE_ARN" in attributes else "an event as it is"
    return _Origin(sent_by, reason, body)


def _attributes(message: Mapping[str, Any]) -> dict[str, str]:
    found = message.get("MessageAttributes") or {}
    return {
        name: str(value.get("StringValue", ""))
        for name, value in found.items()
        if isinstance(value, dict)
    }


# --- the ports the redrive works through -----------------------------------------------------


class Queue(Protocol):
    """The dead-letter queue: each message read once per run, then deleted or released."""

    def messages(self) -> Iterator[dict[str, Any]]: ...

    def delete(self, letter: DeadLetter) -> None: ...

    def release(self) -> None: ...


class Records(Protocol):
    """The import records and the two transitions a redrive makes."""

    def get(self, obj: ObjectRef) -> ImportRecord | None: ...

    def reopen(self, obj: ObjectRef) -> bool: ...

    def undo_reopen(self, obj: ObjectRef) -> bool: ...


@dataclass(frozen=True)
class Invocation:
    ok: bool
    error: str | None = None
    # False when the function was never reached (the invoke call itself failed): nothing
    # the redrive changed before it can have been acted upon.
    started: bool = True


Invoker = Callable[[dict[str, Any]], Invocation]
# Told each message and what became of it, in words.
Reporter = Callable[[DeadLetter, str], None]


# --- the redrive -----------------------------------------------------------------------------


@dataclass
class Summary:
    dry_run: bool = False
    read: int = 0
    redriven: int = 0  # messages whose event was resubmitted (or would be, in a dry run)
    submitted: int = 0  # of those, messages whose objects are all SUBMITTED now: deleted
    already_imported: int = 0  # messages whose objects were SUBMITTED before: deleted
    # Messages whose objects the function skipped (e.g. deleted since): recorded, deleted.
    settled: int = 0
    # In a dry run, why the messages that would be redriven failed.
    would_redrive: Counter[str] = field(default_factory=Counter)
    still_failing: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    # Messages for an object this run already redrove: they wait for the next run.
    deferred: int = 0
    # Messages whose invocation could not start; their records were put back to FAILED.
    not_invoked: Counter[str] = field(default_factory=Counter)

    @property
    def left_in_queue(self) -> int:
        if self.dry_run:
            return 0
        return (
            sum(self.still_failing.values())
            + sum(self.skipped.values())
            + sum(self.not_invoked.values())
            + self.deferred
        )

    @property
    def exit_code(self) -> int:
        """1 while a real run leaves messages in the queue, so scripts and alarms agree."""
        return 1 if self.still_failing or self.left_in_queue else 0


def redrive(
    queue: Queue,
    records: Records,
    invoke: Invoker | None,
    report: Reporter,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Summary:
    """Redrive the queue's messages (at most `max_messages`); see the module's docstring."""
    if invoke is None and not dry_run:
        raise ValueError("a redrive that is not a dry run needs an invoker")
    run = _Run(queue, records, invoke, Summary(dry_run=dry_run), report, clock)
    try:
        for message in queue.messages():
            run.summary.read += 1
            run.handle(read_message(message))
            if max_messages is not None and run.summary.redriven >= max_messages:
                break
    finally:
        queue.release()
    return run.summary


@dataclass
class _Run:
    queue: Queue
    records: Records
    invoke: Invoker | None
    summary: Summary
    report: Reporter
    clock: Callable[[], float]
    # The object versions redriven in this run: each at most once.
    handled: set[tuple[str, str]] = field(default_factory=set)

    def handle(self, letter: DeadLetter) -> None:
        if letter.problem is not None or letter.event is None:
            self._leave(letter, f"not redrivable: {letter.problem}")
            return
        before = {obj: self.records.get(obj) for obj in letter.objects}
        pending = [obj for obj in letter.objects if _status(before[obj]) not in SETTLED]
        if not pending:
            self._settled(letter, before)
        elif not self._waits(letter, pending, before):
            self._redrive(letter, letter.event, pending, before)

    def _redrive(
        self,
        letter: DeadLetter,
        event: dict[str, Any],
        pending: list[ObjectRef],
        before: dict[ObjectRef, ImportRecord | None],
    ) -> None:
        self.summary.redriven += 1
        if self.invoke is None or self.summary.dry_run:
            self.summary.would_redrive[shorten(letter.reason)] += 1
            self.report(letter, "would redrive")
            return
        self.handled |= {(obj.uri, obj.version) for obj in letter.objects}
        self._resubmit(letter, event, self.invoke, pending, before)

    def _waits(
        self,
        letter: DeadLetter,
        pending: list[ObjectRef],
        before: dict[ObjectRef, ImportRecord | None],
    ) -> bool:
        """True when the message waits: for the next run (an object this run redrove), or
        for the invocation importing it now."""
        if {(obj.uri, obj.version) for obj in letter.objects} & self.handled:
            self.summary.deferred += 1
            return True
        blocked = self._why_not(pending, before)
        if blocked is not None:
            self._leave(letter, blocked)
            return True
        return False

    def _leave(self, letter: DeadLetter, why: str) -> None:
        self.summary.skipped[why] += 1
        self.report(letter, f"skipped, left in the queue: {why.removeprefix('not redrivable: ')}")

    def _settled(self, letter: DeadLetter, records: dict[ObjectRef, ImportRecord | None]) -> None:
        """Every object of the message is SUBMITTED or SKIPPED: the record says what
        happened, so the message can go."""
        if all(_status(records[obj]) == Status.SUBMITTED for obj in letter.objects):
            self.summary.already_imported += 1
            what = "already imported"
        else:
            self.summary.settled += 1
            what = "settled: " + _skipped_reason(letter.objects, records)
        if self.summary.dry_run:
            self.report(letter, f"{what}: would delete the message")
        else:
            self.queue.delete(letter)
            self.report(letter, f"{what}: message deleted")

    def _resubmit(
        self,
        letter: DeadLetter,
        event: dict[str, Any],
        invoke: Invoker,
        pending: list[ObjectRef],
        before: dict[ObjectRef, ImportRecord | None],
    ) -> None:
        reopened = [obj for obj in pending if self._reopen(obj, before)]
        invocation = invoke(event)
        if not invocation.started:
            self._undo(letter, reopened, invocation)
            return
        after = {obj: self.records.get(obj) for obj in pending}
        failing = [obj for obj in pending if _status(after[obj]) not in SETTLED]
        if failing:
            self._still_failing(letter, failing, before, after, invocation)
            return
        self.queue.delete(letter)
        if all(_status(after[obj]) == Status.SUBMITTED for obj in pending):
            self.summary.submitted += 1
            self.report(letter, "SUBMITTED: message deleted")
        else:
            self.summary.settled += 1
            self.report(letter, f"settled: {_skipped_reason(pending, after)}: message deleted")

    def _undo(self, letter: DeadLetter, reopened: list[ObjectRef], invocation: Invocation) -> None:
        """The function never ran: the reopened records go back to FAILED, as they were."""
        for obj in reopened:
            self.records.undo_reopen(obj)
        reason = shorten(f"could not invoke the function: {invocation.error}")
        self.summary.not_invoked[reason] += 1
        self.report(letter, f"{reason}; records left FAILED, message left in the queue")

    def _still_failing(
        self,
        letter: DeadLetter,
        failing: list[ObjectRef],
        before: dict[ObjectRef, ImportRecord | None],
        after: dict[ObjectRef, ImportRecord | None],
        invocation: Invocation,
    ) -> None:
        reason = _failure(failing, after, invocation)
        self.summary.still_failing[reason] += 1
        # FAILED now and not before the invocation: the function sent a fresh dead letter.
        if all(
            _status(after[obj]) == Status.FAILED and _status(before[obj]) != Status.FAILED
            for obj in failing
        ):
            self.queue.delete(letter)
            self.report(letter, f"still failing ({reason}): a fresh dead letter replaces it")
        else:
            self.report(letter, f"still failing ({reason}): left in the queue")

    def _reopen(self, obj: ObjectRef, before: dict[ObjectRef, ImportRecord | None]) -> bool:
        """Reopen a FAILED record; the record as it stands goes into `before`."""
        if _status(before[obj]) != Status.FAILED:
            return False
        if self.records.reopen(obj):
            before[obj] = _with_status(before[obj], Status.PENDING_RETRY)
            return True
        before[obj] = self.records.get(obj)  # changed meanwhile; the invocation decides
        return False

    def _why_not(
        self, pending: list[ObjectRef], records: dict[ObjectRef, ImportRecord | None]
    ) -> str | None:
        """Why resubmitting cannot help now, or None when it can."""
        for obj in pending:
            record = records[obj]
            held = record is not None and record.status == Status.IN_PROGRESS
            if held and float(record.lease_expires_at or 0) > self.clock():  # type: ignore[union-attr]
                return "an invocation is importing it right now"
        return None


def _status(record: ImportRecord | None) -> str:
    return record.status if record is not None else "NO RECORD"


def _with_status(record: ImportRecord | None, status: Status) -> ImportRecord | None:
    return None if record is None else replace(record, status=status.value)


def _skipped_reason(
    objects: tuple[ObjectRef, ...] | list[ObjectRef],
    records: dict[ObjectRef, ImportRecord | None],
) -> str:
    for obj in objects:
        record = records[obj]
        if record is not None and record.status == Status.SKIPPED:
            return shorten(f"the function skipped it: {record.error or 'no reason recorded'}")
    return "imported"


def _failure(
    failing: list[ObjectRef],
    records: dict[ObjectRef, ImportRecord | None],
    invocation: Invocation,
) -> str:
    record = records[failing[0]]
    error = (record.error if record else None) or invocation.error or "no reason recorded"
    return shorten(f"{_status(record)}: {error}")


def shorten(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."
