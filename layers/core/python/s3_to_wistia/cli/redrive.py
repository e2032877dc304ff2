"""`make redrive`: redrive the dead-letter queue once the cause is fixed, and show it.

    make redrive [DRY_RUN=1] [MAX=N] [STACK=name]
    .venv/bin/python -m s3_to_wistia.cli.redrive [--dry-run] [--max N] ...

Operator tooling, not part of the Lambda package: the policy is s3_to_wistia.redrive; this
module finds the resources, wires the adapters and renders what happened. A dry run
(--dry-run) reads the queue and the records and changes nothing: it lists what would be
redriven, with counts by reason. Messages read but left in the queue are made visible again
when the run ends. The exit status is 1 while a run leaves messages in the queue.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from s3_to_wistia.redrive import (
    DeadLetter,
    Invoker,
    Queue,
    Records,
    Reporter,
    Summary,
    redrive,
    shorten,
)

ROOT = Path(__file__).resolve().parents[5]
DEFAULT_STACK = "s3-to-wistia"


def run(
    queue: Queue,
    records: Records,
    invoke: Invoker | None,
    out: TextIO,
    *,
    dry_run: bool = False,
    max_messages: int | None = None,
) -> Summary:
    """Redrive, showing each message as it is handled, then the summary."""
    summary = redrive(
        queue, records, invoke, printer(out), dry_run=dry_run, max_messages=max_messages
    )
    for line in summary_lines(summary):
        print(line, file=out)
    return summary


# --- rendering -------------------------------------------------------------------------------


def printer(out: TextIO) -> Reporter:
    """Two lines per message: what it names, who sent it and why; what became of it."""

    def report(letter: DeadLetter, outcome: str) -> None:
        print(f"  {letter.names}  [{letter.sent_by}]  {shorten(letter.reason)}", file=out)
        print(f"      -> {outcome}", file=out)

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

    from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
    from s3_to_wistia.adapters.functions import LambdaInvoker
    from s3_to_wistia.adapters.records import Records

    session = boto3.session.Session(region_name=arguments.region, profile_name=arguments.profile)
    try:
        names = resources(session, arguments)
    except LookupError as error:
        print(f"redrive: {error}", file=sys.stderr)
        return 2
    queue = DeadLetterQueue(session.client("sqs"), names["DeadLetterQueueUrl"], arguments.wait)
    records = Records(session.client("dynamodb"), names["ImportsTableName"])
    invoker = None
    if not arguments.dry_run:
        lambda_client = session.client(
            "lambda",
            # A synchronous invocation lasts up to the function's timeout (900 s at most).
            config=Config(read_timeout=910, connect_timeout=10, retries={"max_attempts": 3}),
        )
        invoker = LambdaInvoker(lambda_client, names["ImportFunctionName"])
    mode = "dry run: nothing is changed" if arguments.dry_run else "redrive"
    print(f"Dead-letter queue {queue.url} ({mode})", file=out)
    summary = run(
        queue, records, invoker, out, dry_run=arguments.dry_run, max_messages=arguments.max
    )
    return summary.exit_code


def resources(session: Any, arguments: argparse.Namespace) -> dict[str, str]:
    """The queue, table (and function) to work on: the flags, else the stack's outputs."""
    from botocore.exceptions import ClientError

    wanted = {"DeadLetterQueueUrl": arguments.queue_url, "ImportsTableName": arguments.table}
    if not arguments.dry_run:
        wanted["ImportFunctionName"] = arguments.function
    outputs: dict[str, str] = {}
    try:
        if not all(wanted.values()):
            outputs = stack_outputs(session, arguments.stack)
    except ClientError as error:
        raise LookupError(f"cannot read stack {arguments.stack!r}: {error}") from None
    names = {name: value or outputs.get(name) for name, value in wanted.items()}
    missing = [name for name, value in names.items() if not value]
    if missing:
        raise LookupError(f"stack {arguments.stack!r} has no output {', '.join(missing)}")
    return {name: str(value) for name, value in names.items()}


def stack_outputs(session: Any, stack: str) -> dict[str, str]:
    answer = session.client("cloudformation").describe_stacks(StackName=stack)
    [found] = answer["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


if __name__ == "__main__":
    sys.exit(main())
