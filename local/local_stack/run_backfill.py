"""`make run`'s second act: the objects that were in the bucket before the function was wired
up, brought in by a backfill.

They are uploaded before the bucket notifies anyone, so no event is ever sent for them. Once
the event-driven samples are done, an S3 Batch Operations job (the local stand-in,
batch_operations.py) runs the real backfill function (template.yaml's BackfillFunction, in
its own execution environments) over the whole bucket with a manifest S3 generates: the
objects from before are imported, at low priority, and the ones the events already handled
are left alone, each saying so in the job's completion report.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import boto3

from local_stack.aws import patched_environ
from local_stack.batch_operations import GeneratedManifest, LambdaInvoke, RunnerSettings, run_job
from local_stack.batch_report import CompletionReport, read_completion_report
from local_stack.functions import ExecutionEnvironments
from local_stack.report import Console, WistiaDataApi, table, wait_for_processing
from local_stack.samples import avi_bytes, wav_bytes
from local_stack.template import Stack
from wistia_emulator import WistiaEmulator

BACKFILL_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-backfill"
# S3 Batch Operations runs as many at once as the function's reserved concurrency lets it.
ENVIRONMENTS = 2
PROCESSING_TIMEOUT = 15.0
ALREADY_HANDLED = "already handled earlier"


@dataclass(frozen=True)
class Existing:
    """An object that was in the bucket before the function was wired up."""

    key: str
    body: bytes
    status: str  # the record it should end with
    reason: str = ""


def existing_objects() -> list[Existing]:
    return [
        Existing("earlier/Launch keynote 2019.avi", avi_bytes(hue=100), "SUBMITTED"),
        Existing("earlier/voice memos/Q1 stand-up.wav", wav_bytes(seconds=0.5), "SUBMITTED"),
        Existing("earlier/notes from 2019.txt", b"Before the pipeline.\n", "SKIPPED", "'txt'"),
    ]


def upload_existing(bucket: str, objects: Sequence[Existing]) -> None:
    s3 = boto3.client("s3")
    for obj in objects:
        s3.put_object(Bucket=bucket, Key=obj.key, Body=obj.body)


def describe_existing(console: Console, objects: Sequence[Existing]) -> None:
    console.line(
        f"\n{len(objects)} objects put in the bucket before the function was wired up "
        "(no event is ever sent for them):"
    )
    for obj in objects:
        console.line(f"  {obj.key}")


def backfill_existing(
    console: Console,
    stack: Stack,
    emulator: WistiaEmulator,
    wistia: WistiaDataApi,
    objects: Sequence[Existing],
    handled_by_events: Sequence[str],
    limit: int | None,
) -> list[str]:
    """Run the backfill job, show its completion report and where each object ended; the
    problems (none when each ended where it should)."""
    new_media = sum(obj.status == "SUBMITTED" for obj in objects)
    if limit is not None:
        # The event samples filled the account on purpose; make room for these.
        emulator.set_video_limit(limit + new_media)
    console.line(
        "\nBackfill: an S3 Batch Operations job (the local stand-in) runs the backfill "
        f"function over the whole bucket, {ENVIRONMENTS} at a time, with a manifest S3 "
        "generates"
        + (f"; video limit raised to {limit + new_media}:" if limit is not None else ":")
    )
    reports = stack.resources["BackfillReportsBucket"]
    with patched_environ(stack.environment_of("BackfillFunction", emulator.url)):
        result = run_job(
            ExecutionEnvironments("BackfillFunction", limit=ENVIRONMENTS),
            LambdaInvoke(BACKFILL_FUNCTION_ARN, "2.0", {"low_priority": "true"}),
            GeneratedManifest(stack.bucket),
            CompletionReport(reports, "reports"),
            RunnerSettings(concurrency=ENVIRONMENTS, retry_delay=0.2),
        )
    console.line(
        f"  job {result.status}: {result.succeeded} of {result.total_tasks} tasks succeeded, "
        f"{result.failed} failed, in {result.elapsed_seconds:.1f} s"
    )
    rows: dict[str, Any] = {}
    if result.report_key:
        report = read_completion_report(boto3.client("s3"), reports, result.report_key)
        rows = {unquote(row.key): row for row in report.rows}
        console.line(f"  completion report: s3://{reports}/{result.report_key}")
    show_results(console, objects, rows, handled_by_events)
    hashed_ids = [_hashed_id(rows[o.key].result_message) for o in objects if o.key in rows]
    medias = wait_for_processing(wistia, [h for h in hashed_ids if h], PROCESSING_TIMEOUT)
    return check_backfill(objects, rows, medias, wistia, handled_by_events)


def show_results(
    console: Console,
    objects: Sequence[Existing],
    rows: Mapping[str, Any],
    handled_by_events: Sequence[str],
) -> None:
    lines = [
        (obj.key, rows[obj.key].task_status if obj.key in rows else "-", _message(rows, obj.key))
        for obj in objects
    ]
    console.line()
    for line in table(("object from before", "task", "result (the report's words)"), lines):
        console.line("  " + line)
    said = Counter(_gist(_message(rows, key)) for key in handled_by_events)
    console.line(
        f"\n  The {len(handled_by_events)} objects the events had handled: "
        + ", ".join(f"{count} {gist}" for gist, count in said.most_common())
    )


def check_backfill(
    objects: Sequence[Existing],
    rows: Mapping[str, Any],
    medias: Mapping[str, dict[str, Any] | None],
    wistia: WistiaDataApi,
    handled_by_events: Sequence[str],
) -> list[str]:
    problems = []
    for obj in objects:
        row = rows.get(obj.key)
        if row is None:
            problems.append(f"{obj.key}: no line in the completion report")
            continue
        message = row.result_message
        if not message.startswith(f"{obj.status}:") or obj.reason not in message:
            problems.append(f"{obj.key}: {message!r}, expected {obj.status} {obj.reason}")
        if obj.status == "SUBMITTED":
            media = medias.get(_hashed_id(message) or "") or {}
            if media.get("status") != "ready":
                problems.append(f"{obj.key}: Wistia status {media.get('status')}, expected ready")
            named = len(wistia.medias_named(posixpath.basename(obj.key)))
            if named != 1:
                problems.append(f"{obj.key}: {named} Wistia media by its name, expected 1")
    # What the events handled stays as they left it: never imported a second time.
    for key in handled_by_events:
        message = _message(rows, key)
        if not message.startswith((ALREADY_HANDLED, "SKIPPED:")):
            problems.append(f"{key}: the backfill said {message!r}; the events had handled it")
    return problems


def show_backfill_verdict(
    console: Console, problems: list[str], objects: Sequence[Existing], handled: Sequence[str]
) -> None:
    if problems:
        console.line(f"\nNOT OK (backfill): {len(problems)} problem(s):")
        for problem in problems:
            console.line(f"  - {problem}")
        return
    imported = sum(obj.status == "SUBMITTED" for obj in objects)
    console.line(
        f"\nOK: the backfill imported {imported} media from before and skipped "
        f"{len(objects) - imported}, each once; the {len(handled)} objects the events had "
        "handled were not imported again."
    )


def _message(rows: Mapping[str, Any], key: str) -> str:
    return str(rows[key].result_message) if key in rows else "no line in the report"


def _hashed_id(message: str) -> str | None:
    prefix = "SUBMITTED: imported into Wistia as media "
    return message.removeprefix(prefix) if message.startswith(prefix) else None


def _gist(message: str) -> str:
    """'already handled earlier (SUBMITTED): ...' -> 'already handled (SUBMITTED)';
    'SKIPPED: zero-byte object' -> 'skipped again'."""
    if message.startswith(ALREADY_HANDLED):
        return f"already handled ({message.partition('(')[2].partition(')')[0]})"
    if message.startswith("SKIPPED:"):
        return "skipped again"
    return message
