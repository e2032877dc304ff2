"""Redrive the dead-letter queue: resubmit what could not be imported, once the cause is fixed.

    make redrive [DRY_RUN=1] [MAX=N] [STACK=name]
    PYTHONPATH=functions/importer:functions/tools python -m redrive [--dry-run] [--max N] ...

Operator tooling, not part of the Lambda package. It reads the dead-letter queue and, for
each message, finds the object versions it names and their import records, then:

1. reopens every FAILED record (a conditional UpdateItem FAILED -> PENDING_RETRY, the one
   status besides "new" that the function's claim accepts; a FAILED record is otherwise
   final, so a plain resubmission would be ignored as a duplicate);
2. invokes the function with the original event, synchronously (Lambda's own retries and
   on-failure destination apply only to asynchronous invocations, so the redrive adds no
   messages of its own);
3. reads the records again and decides what happens to the message (the rule below).

The queue holds three shapes of message, all understood here: the function's own dead
letters (`source_event` is an S3 record or an EventBridge event), Lambda's on-failure
destination records (`requestPayload` is the original event), and events EventBridge could
not deliver (the event itself is the body).

The rule for deleting a message, so nothing is lost and repeated redrives never multiply
messages:

- it is deleted when every object it names is SUBMITTED;
- it is also deleted when every object it names that is not SUBMITTED failed again for good
  in this redrive: the function then sent a fresh dead letter for it (it writes FAILED only
  after the queue has accepted that dead letter), so the object stays in the queue exactly
  once, with its latest reason;
- otherwise it stays (retryable failure, object skipped or being imported elsewhere,
  invocation error, unreadable message). Each object version is redriven at most once per
  run: another message for it, such as the fresh dead letter above, waits for the next run.

A dry run (--dry-run) reads the queue and the records and changes nothing: it lists what
would be redriven, with counts by reason. Messages read but left in the queue are made
visible again when the run ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from s3_to_wistia.adapters.records import iso_now, record_key
from s3_to_wistia.errors import UnsupportedEvent
from s3_to_wistia.events import parse_notification
from s3_to_wistia.model import ObjectRef, Status

ROOT = Path(__file__).resolve().parents[5]
DEFAULT_STACK = "s3-to-wistia"
# Long enough for one message's invocation (Lambda's longest timeout is 900 s): a message
# read in this run is not read again by it. Those left in the queue are released at the end.
VISIBILITY_SECONDS = 960
REASON_WIDTH = 160


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


def read_message(message: dict[str, Any]) -> DeadLetter:
    """A received SQS message as a DeadLetter, whichever of the queue's writers sent it."""
    sent_by, reason, event, problem = "unknown", "", None, None
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        reason = problem = "its body is not JSON"
    else:
        if isinstance(body, dict):
            sent_by, reason, event, problem = _origin(body, _attributes(message))
        else:
            reason = problem = "its body is not a JSON object"
    objects: tuple[ObjectRef, ...] = ()
    if event is not None and problem is None:
        try:
            objects = tuple(parse_notification(event).objects)
        except UnsupportedEvent as error:
            problem = f"its event is not one the function accepts: {error}"
        if not objects and problem is None:
            problem = "its event names no object to import"
    return DeadLetter(
        message_id=str(message.get("MessageId", "")),
        receipt_handle=str(message.get("ReceiptHandle", "")),
        sent_by=sent_by,
        reason=reason,
        event=event if problem is None else None,
        objects=objects,
        problem=problem if problem is not None or event is not None else "no event in it",
    )


def _origin(
    body: dict[str, Any], attributes: dict[str, str]
) -> tuple[str, str, dict[str, Any] | None, str | None]:
    """(sent by, reason, the event to invoke with, why it cannot be redriven)."""
    context = body.get("requestContext")
    if isinstance(context, dict) and "requestPayload" in body:
        # Lambda's on-failure destination: the event's retries ran out.
        response = body.get("responsePayload")
        reason = ""
        if isinstance(response, dict):
            reason = str(response.get("errorMessage") or response.get("errorType") or "")
        condition = context.get("condition") or "failed"
        event = body["requestPayload"]
        return (
            f"Lambda on-failure ({condition})",
            reason or str(condition),
            event if isinstance(event, dict) else None,
            None if isinstance(event, dict) else "its requestPayload is not an event",
        )
    if "source_event" in body:
        # The function's own dead letter for one object.
        status = body.get("http_status")
        sent_by = "the function" + (f" (HTTP {status})" if status else "")
        reason = str(body.get("reason") or "no reason given")
        source = body.get("source_event")
        if isinstance(source, dict) and source.get("eventSource") == "aws:s3":
            return sent_by, reason, {"Records": [source]}, None
        if isinstance(source, dict) and source.get("source") == "aws.s3":
            return sent_by, reason, source, None
        return sent_by, reason, None, "the function could not read the message it came from"
    if isinstance(body.get("Records"), list) or body.get("source") == "aws.s3":
        # An event as it is: EventBridge's dead-letter delivery for its rule.
        code = attributes.get("ERROR_CODE")
        detail = attributes.get("ERROR_MESSAGE")
        reason = ": ".join(part for part in (code, detail) if part) or "undelivered event"
        sent_by = "EventBridge" if "RULE_ARN" in attributes else "an event as it is"
        return sent_by, reason, body, None
    return "unknown", "not a message this queue's writers send", None, "unrecognised message"


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    found = message.get("MessageAttributes") or {}
    return {
        name: str(value.get("StringValue", ""))
        for name, value in found.items()
        if isinstance(value, dict)
    }


# --- the import records ----------------------------------------------------------------------


class RecordTable:
    """The function's import records, read and reopened the way its claim expects."""

    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._db = dynamodb_client
        self._table = table_name

    def get(self, obj: ObjectRef) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        answer = self._db.get_item(TableName=self._table, Key=record_key(obj), ConsistentRead=True)
        item = answer.get("Item")
        if not item:
            return None
        deserializer = TypeDeserializer()
        return {name: deserializer.deserialize(value) for name, value in item.items()}

    def reopen(self, obj: ObjectRef) -> bool:
        """FAILED -> PENDING_RETRY, so the function's claim accepts the object again. False
        when the record was not FAILED any more (someone else got there first)."""
        from botocore.exceptions import ClientError

        now = iso_now()
        try:
            self._db.update_item(
                TableName=self._table,
                Key=record_key(obj),
                UpdateExpression=(
                    "SET #status = :pending, updated_at = :now, redriven_at = :now "
                    "ADD redrives :one"
                ),
                ConditionExpression="#status = :failed",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":pending": {"S": Status.PENDING_RETRY.value},
                    ":failed": {"S": Status.FAILED.value},
                    ":now": {"S": now},
                    ":one": {"N": "1"},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _status(record: dict[str, Any] | None) -> str:
    return str(record.get("status")) if record else "NO RECORD"


# --- invoking the function -------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    ok: bool
    error: str | None = None


Invoker = Callable[[dict[str, Any]], Invocation]


class LambdaInvoker:
    """The deployed function, invoked synchronously with the original event."""

    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._client = lambda_client
        self._function = function_name

    def __call__(self, event: dict[str, Any]) -> Invocation:
        answer = self._client.invoke(
            FunctionName=self._function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        payload = answer["Payload"].read()
        if not answer.get("FunctionError"):
            return Invocation(ok=True)
        try:
            error = json.loads(payload)
            text = f"{error.get('errorType')}: {error.get('errorMessage')}"
        except (ValueError, AttributeError):
            text = payload.decode("utf-8", errors="replace")[:REASON_WIDTH]
        return Invocation(ok=False, error=text)


# --- the queue -------------------------------------------------------------------------------


class Queue:
    """The dead-letter queue: read each message once per run, delete, or leave it."""

    def __init__(self, sqs_client: Any, queue_url: str, wait_seconds: int = 2) -> None:
        self._sqs = sqs_client
        self.url = queue_url
        self._wait_seconds = wait_seconds
        self._seen: set[str] = set()
        self._held: dict[str, str] = {}

    def messages(self) -> Iterator[dict[str, Any]]:
        """Every message in the queue, once, until no message is left to read."""
        while True:
            answer = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=VISIBILITY_SECONDS,
                WaitTimeSeconds=self._wait_seconds,
                MessageAttributeNames=["All"],
            )
            received = answer.get("Messages", [])
            if not received:
                return
            fresh = []
            for message in received:
                if message["MessageId"] in self._seen:
                    # Visible again after a long run: not read twice, but only the latest
                    # receipt handle can release or delete it.
                    if message["MessageId"] in self._held:
                        self._held[message["MessageId"]] = message["ReceiptHandle"]
                    continue
                self._seen.add(message["MessageId"])
                # Held until deleted; released (visible again) at the end of the run, also
                # when the run stops before handling it.
                self._held[message["MessageId"]] = message["ReceiptHandle"]
                fresh.append(message)
            yield from fresh

    def delete(self, letter: DeadLetter) -> None:
        handle = self._held.pop(letter.message_id, letter.receipt_handle)
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=handle)

    def release(self) -> None:
        """Make every message read and left in the queue visible again at once."""
        handles = list(self._held.values())
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
        self._held.clear()


# --- the redrive -----------------------------------------------------------------------------


@dataclass
class Summary:
    dry_run: bool = False
    read: int = 0
    redriven: int = 0  # messages whose event was resubmitted (or would be, in a dry run)
    submitted: int = 0  # of those, messages whose objects are all SUBMITTED now: deleted
    already_imported: int = 0  # messages whose objects were SUBMITTED before: deleted
    # In a dry run, why the messages that would be redriven failed.
    would_redrive: Counter[str] = field(default_factory=Counter)
    still_failing: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    # Messages for an object this run already redrove: they wait for the next run.
    deferred: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.still_failing else 0

    def lines(self) -> list[str]:
        if self.dry_run:
            head = (
                f"Dry run, nothing changed: {self.read} message(s) read; "
                f"would redrive {self.redriven}; already imported {self.already_imported}; "
                f"skipped {sum(self.skipped.values())}"
            )
            sections = [("would redrive, by reason", self.would_redrive)]
        else:
            failing = sum(self.still_failing.values())
            head = (
                f"{self.read} message(s) read; redriven {self.redriven}: "
                f"submitted {self.submitted}, still failing {failing}; "
                f"already imported {self.already_imported}; "
                f"skipped {sum(self.skipped.values())}"
            )
            sections = [("still failing, by reason", self.still_failing)]
        sections.append(("skipped, by reason", self.skipped))
        lines = [head]
        for title, counts in sections:
            if counts:
                lines.append(f"  {title}:")
                lines.extend(f"    {n:>5}  {reason}" for reason, n in counts.most_common())
        if self.deferred:
            lines.append(
                f"  {self.deferred} more message(s) name objects redriven in this run; "
                "they wait for the next run"
            )
        return lines


def redrive(
    queue: Queue,
    records: RecordTable,
    invoke: Invoker | None,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
    out: TextIO = sys.stdout,
) -> Summary:
    """Redrive the queue's messages (at most `max_messages`); see the module's docstring."""
    if invoke is None and not dry_run:
        raise ValueError("a redrive that is not a dry run needs an invoker")
    run = _Run(queue, records, invoke, Summary(dry_run=dry_run), out)
    try:
        for message in queue.messages():
            run.summary.read += 1
            run.handle(read_message(message))
            if max_messages is not None and run.summary.redriven >= max_messages:
                break
    finally:
        queue.release()
    for line in run.summary.lines():
        print(line, file=out)
    return run.summary


@dataclass
class _Run:
    queue: Queue
    records: RecordTable
    invoke: Invoker | None
    summary: Summary
    out: TextIO
    # The object versions redriven in this run: each at most once.
    handled: set[tuple[str, str]] = field(default_factory=set)

    def handle(self, letter: DeadLetter) -> None:
        if letter.problem is not None or letter.event is None:
            self.summary.skipped[f"not redrivable: {letter.problem}"] += 1
            self._show(letter, f"skipped, left in the queue: {letter.problem}")
            return
        before = {obj: self.records.get(obj) for obj in letter.objects}
        pending = [obj for obj in letter.objects if _status(before[obj]) != Status.SUBMITTED]
        if not pending:
            self.summary.already_imported += 1
            if self.summary.dry_run:
                self._show(letter, "already imported: would delete the message")
            else:
                self.queue.delete(letter)
                self._show(letter, "already imported: message deleted")
            return
        keys = {(obj.uri, obj.version) for obj in letter.objects}
        if keys & self.handled:
            self.summary.deferred += 1
            return
        blocked = _why_not(pending, before)
        if blocked is not None:
            self.summary.skipped[blocked] += 1
            self._show(letter, f"skipped, left in the queue: {blocked}")
            return
        self.summary.redriven += 1
        if self.invoke is None or self.summary.dry_run:
            self.summary.would_redrive[_short(letter.reason)] += 1
            self._show(letter, "would redrive")
            return
        self.handled |= keys
        self._resubmit(letter, letter.event, self.invoke, pending, before)

    def _resubmit(
        self,
        letter: DeadLetter,
        event: dict[str, Any],
        invoke: Invoker,
        pending: list[ObjectRef],
        before: dict[ObjectRef, dict[str, Any] | None],
    ) -> None:
        for obj in pending:
            if _status(before[obj]) == Status.FAILED:
                if self.records.reopen(obj):
                    before[obj] = {**(before[obj] or {}), "status": Status.PENDING_RETRY.value}
                else:
                    before[obj] = self.records.get(obj)  # changed meanwhile; invoke decides
        invocation = invoke(event)
        after = {obj: self.records.get(obj) for obj in pending}
        failing = [obj for obj in pending if _status(after[obj]) != Status.SUBMITTED]
        if not failing:
            self.queue.delete(letter)
            self.summary.submitted += 1
            self._show(letter, "SUBMITTED: message deleted")
            return
        reason = _failure(failing, after, invocation)
        self.summary.still_failing[reason] += 1
        # FAILED now and not before the invocation: the function sent a fresh dead letter.
        if all(
            _status(after[obj]) == Status.FAILED and _status(before[obj]) != Status.FAILED
            for obj in failing
        ):
            self.queue.delete(letter)
            self._show(letter, f"still failing ({reason}): a fresh dead letter replaces it")
        else:
            self._show(letter, f"still failing ({reason}): left in the queue")

    def _show(self, letter: DeadLetter, outcome: str) -> None:
        print(f"  {letter.names}  [{letter.sent_by}]  {_short(letter.reason)}", file=self.out)
        print(f"      -> {outcome}", file=self.out)


def _why_not(
    pending: list[ObjectRef], records: dict[ObjectRef, dict[str, Any] | None]
) -> str | None:
    """Why resubmitting cannot help now, or None when it can."""
    for obj in pending:
        record = records[obj]
        status = _status(record)
        if status == Status.SKIPPED:
            return f"the function skipped it: {(record or {}).get('error', 'no reason recorded')}"
        if status == Status.IN_PROGRESS:
            lease = float((record or {}).get("lease_expires_at", 0))
            if lease > time.time():
                return "an invocation is importing it right now"
    return None


def _failure(
    failing: list[ObjectRef],
    records: dict[ObjectRef, dict[str, Any] | None],
    invocation: Invocation,
) -> str:
    record = records[failing[0]]
    status = _status(record)
    error = (record or {}).get("error") or invocation.error or "no reason recorded"
    return _short(f"{status}: {error}")


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 3] + "..."


# --- the command -----------------------------------------------------------------------------


def default_stack_name(root: Path = ROOT, config_env: str = "default") -> str:
    """The stack samconfig.toml deploys (in this environment), else the project's default."""
    try:
        config = tomllib.loads((root / "samconfig.toml").read_text(encoding="utf-8"))
        return str(config[config_env]["global"]["parameters"]["stack_name"])
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        return DEFAULT_STACK


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make redrive",
        description=(
            "Resubmit the dead-letter queue's messages to the import function once their "
            "cause is fixed. A message is deleted only when its object is SUBMITTED (or a "
            "fresh dead letter from this redrive replaces it)."
        ),
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be redriven; change nothing"
    )
    parser.add_argument(
        "--max", type=_positive, metavar="N", help="redrive at most N messages in this run"
    )
    parser.add_argument(
        "--stack",
        help="the deployed stack whose outputs name the queue, table and function "
        "(default: samconfig.toml's stack_name)",
    )
    parser.add_argument(
        "--config-env",
        default="default",
        help="the samconfig.toml environment whose stack_name to use (default: default)",
    )
    parser.add_argument("--queue-url", help="the dead-letter queue (default: from the stack)")
    parser.add_argument("--table", help="the import records table (default: from the stack)")
    parser.add_argument("--function", help="the import function (default: from the stack)")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    parser.add_argument("--profile", help="AWS profile (default: your AWS configuration)")
    parser.add_argument(
        "--wait",
        type=int,
        default=2,
        metavar="SECONDS",
        help="long-poll wait per read, so an almost empty queue is read whole (default 2)",
    )
    arguments = parser.parse_args(argv)
    arguments.stack = arguments.stack or default_stack_name(config_env=arguments.config_env)
    return arguments


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    arguments = parse_arguments(argv)
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    session = boto3.session.Session(region_name=arguments.region, profile_name=arguments.profile)
    wanted = {"DeadLetterQueueUrl": arguments.queue_url, "ImportsTableName": arguments.table}
    if not arguments.dry_run:
        wanted["ImportFunctionName"] = arguments.function
    outputs: dict[str, str] = {}
    if any(value is None for value in wanted.values()):
        try:
            outputs = stack_outputs(session, arguments.stack)
        except ClientError as error:
            print(f"redrive: cannot read stack {arguments.stack!r}: {error}", file=sys.stderr)
            return 2
    names = {name: value or outputs.get(name) for name, value in wanted.items()}
    missing = [name for name, value in names.items() if not value]
    if missing:
        print(
            f"redrive: stack {arguments.stack!r} has no output {', '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    queue = Queue(session.client("sqs"), str(names["DeadLetterQueueUrl"]), arguments.wait)
    records = RecordTable(session.client("dynamodb"), str(names["ImportsTableName"]))
    invoker = None
    if not arguments.dry_run:
        lambda_client = session.client(
            "lambda",
            # A synchronous invocation lasts up to the function's timeout (900 s at most).
            config=Config(read_timeout=910, connect_timeout=10, retries={"max_attempts": 3}),
        )
        invoker = LambdaInvoker(lambda_client, str(names["ImportFunctionName"]))
    mode = "dry run: nothing is changed" if arguments.dry_run else "redrive"
    print(f"Dead-letter queue {queue.url} ({mode})", file=out)
    summary = redrive(
        queue, records, invoker, dry_run=arguments.dry_run, max_messages=arguments.max, out=out
    )
    return summary.exit_code


def stack_outputs(session: Any, stack: str) -> dict[str, str]:
    answer = session.client("cloudformation").describe_stacks(StackName=stack)
    [found] = answer["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


if __name__ == "__main__":
    sys.exit(main())
