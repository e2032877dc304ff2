"""`s3-to-wistia redrive [--dry-run] [--limit N]`: resubmit the dead-letter queue once the
cause is fixed, and show what became of each message.

    s3-to-wistia redrive --dry-run            # what would be redriven, by reason; changes nothing
    s3-to-wistia redrive --limit 10
    make redrive [DRY_RUN=1] [MAX=N] [STACK=name] [CONFIG_ENV=env]    # the same command

The policy is s3_to_wistia.redrive; this module finds the queue, table and function
(resources.py), wires the adapters and renders what happened. The function is the deployed
one, invoked synchronously through Lambda; with --local, the local stack's, run in this
process as Lambda would run it. Messages read but left in the queue are made visible again
when the run ends. The exit status is 1 while a run leaves messages in the queue.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.function import InProcessFunction, build_function, function_settings
from s3_to_wistia.cli.output import Output, ProgressTask
from s3_to_wistia.cli.resources import FUNCTION, QUEUE_URL, TABLE, Target
from s3_to_wistia.redrive import (
    DeadLetter,
    Invoker,
    Queue,
    Reporter,
    Summary,
    redrive,
    shorten,
)
from s3_to_wistia.redrive import (
    Records as RecordsPort,
)

Say = Callable[[str], None]


@command(
    "redrive",
    needs=[QUEUE_URL, TABLE, FUNCTION],
    json_output=True,
    short_help="Resubmit the dead-letter queue once the cause is fixed (--dry-run first).",
)
@click.option(
    "--dry-run", is_flag=True, help="list what would be redriven, by reason; change nothing"
)
@click.option(
    "--limit",
    "--max",
    "limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="redrive at most N messages in this run",
)
@click.option(
    "--wait",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    metavar="SECONDS",
    help="long-poll wait per read, so an almost empty queue is read whole",
)
def redrive_command(
    target: Target, out: Output, dry_run: bool, limit: int | None, wait: int
) -> int:
    """Resubmit the dead-letter queue's messages to the import function once their cause is
    fixed (the plan upgraded, the token replaced, the object restored...).

    Every shape the queue holds is understood: the function's own dead letters, Lambda's
    on-failure records and events EventBridge could not deliver. A FAILED record is
    reopened, the function invoked with the original event, and the message deleted only
    when its object ends SUBMITTED or SKIPPED (or a fresh dead letter from this run
    replaces it); the others stay. --dry-run reads the queue and the records and changes
    nothing.

    Exit code 0 when the run leaves no message in the queue (a dry run: 0), 1 otherwise.
    """
    from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
    from s3_to_wistia.adapters.records import Records

    queue = DeadLetterQueue(target.client("sqs"), target.value(QUEUE_URL), wait)
    records = Records(target.client("dynamodb"), target.value(TABLE))
    invoker = None if dry_run else function_invoker(target, out)
    mode = "dry run: nothing is changed" if dry_run else "redrive"
    out.say(f"Dead-letter queue {queue.url} ({mode})")
    messages: list[dict[str, Any]] = []
    with out.progress(unit="items") as bars:
        bar = bars.task("Dead letters", _waiting(target, queue.url, limit))
        summary = run(
            queue,
            records,
            invoker,
            out.say,
            dry_run=dry_run,
            max_messages=limit,
            on_message=_follow(bar, messages),
        )
    out.result({**_summary_document(summary), "messages": messages})
    return summary.exit_code


def function_invoker(target: Target, out: Output) -> Invoker:
    """The import function, invoked synchronously: the deployed one through Lambda, the
    local stack's in this process."""
    if target.options.local:
        settings = function_settings(target)
        timeout = target.function_configuration().timeout
        return InProcessFunction(build_function(target, out, settings), out, timeout)
    from s3_to_wistia.adapters.functions import LambdaInvoker

    # A synchronous invocation lasts up to the function's timeout (900 s at most).
    lambda_client = target.client(
        "lambda", read_timeout=910, connect_timeout=10, retries={"max_attempts": 3}
    )
    return LambdaInvoker(lambda_client, target.value(FUNCTION))


def run(
    queue: Queue,
    records: RecordsPort,
    invoke: Invoker | None,
    say: Say,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
    on_message: Reporter | None = None,
) -> Summary:
    """Redrive, showing each message as it is handled, then the summary."""
    show = printer(say)

    def report(letter: DeadLetter, outcome: str) -> None:
        show(letter, outcome)
        if on_message is not None:
            on_message(letter, outcome)

    summary = redrive(queue, records, invoke, report, dry_run=dry_run, max_messages=max_messages)
    for line in summary_lines(summary):
        say(line)
    return summary


def _waiting(target: Target, queue_url: str, limit: int | None) -> int | None:
    """About how many messages wait: the progress bar's total."""
    answer = target.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    waiting = int(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))
    return min(waiting, limit) if limit else waiting


def _follow(bar: ProgressTask, messages: list[dict[str, Any]]) -> Reporter:
    def follow(letter: DeadLetter, outcome: str) -> None:
        bar.advance(1)
        messages.append(
            {
                "objects": [obj.uri for obj in letter.objects],
                "sent_by": letter.sent_by,
                "reason": letter.reason,
                "outcome": outcome,
            }
        )

    return follow


def _summary_document(summary: Summary) -> dict[str, Any]:
    return {
        "dry_run": summary.dry_run,
        "read": summary.read,
        "redriven": summary.redriven,
        "submitted": summary.submitted,
        "already_imported": summary.already_imported,
        "settled": summary.settled,
        "would_redrive": dict(summary.would_redrive),
        "still_failing": dict(summary.still_failing),
        "skipped": dict(summary.skipped),
        "not_invoked": dict(summary.not_invoked),
        "deferred": summary.deferred,
        "left_in_queue": summary.left_in_queue,
    }


# --- rendering -------------------------------------------------------------------------------


def printer(say: Say) -> Reporter:
    """Two lines per message: what it names, who sent it and why; what became of it."""

    def report(letter: DeadLetter, outcome: str) -> None:
        say(f"  {letter.names}  [{letter.sent_by}]  {shorten(letter.reason)}")
        say(f"      -> {outcome}")

    return report


def summary_lines(summary: Summary) -> list[str]:
    if summary.dry_run:
        head = (
            f"Dry run, nothing changed: {summary.read} message(s) read; "
            f"would redrive {summary.redriven}; already imported {summary.already_imported}; "
            f"skipped {sum(summary.skipped.values())}"
        )
        sections = [("would redrive, by reason", summary.would_redrive)]
    else:
        failing = sum(summary.still_failing.values())
        head = (
            f"{summary.read} message(s) read; redriven {summary.redriven}: "
            f"submitted {summary.submitted}, still failing {failing}; "
            f"already imported {summary.already_imported}; "
            f"skipped {sum(summary.skipped.values())}"
        )
        sections = [("still failing, by reason", summary.still_failing)]
    sections.append(("skipped, by reason", summary.skipped))
    sections.append(("could not invoke the function", summary.not_invoked))
    lines = [head]
    if summary.settled:
        lines.append(
            f"  {summary.settled} message(s) settled: their objects are recorded SKIPPED "
            "(e.g. deleted since they failed)"
        )
    for title, counts in sections:
        if counts:
            lines.append(f"  {title}:")
            lines.extend(f"    {n:>5}  {reason}" for reason, n in counts.most_common())
    if summary.deferred:
        lines.append(
            f"  {summary.deferred} more message(s) name objects redriven in this run; "
            "they wait for the next run"
        )
    if summary.left_in_queue:
        lines.append(f"{summary.left_in_queue} message(s) left in the queue")
    return lines


if __name__ == "__main__":
    # `python -m s3_to_wistia.cli.redrive ...`, as `make redrive` used to run it.
    from s3_to_wistia.cli.main import main

    sys.exit(main(["redrive", *sys.argv[1:]]))
