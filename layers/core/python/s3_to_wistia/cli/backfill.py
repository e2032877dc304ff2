"""`s3-to-wistia backfill --bucket B [--prefix P] [--suffix S ...] [--created-before T]
[--dry-run]`: import what was in the bucket before the function was wired up, through an
S3 Batch Operations job that invokes the stack's backfill function."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click

from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.errors import FAILED, OK, CliError, UsageProblem
from s3_to_wistia.cli.inventory import (
    DEFAULT_CONFIRM_ABOVE,
    CreatedJob,
    JobPlan,
    Listed,
    Selection,
    confirm_size,
    duration,
    failed_tasks,
    follow_instructions,
    is_done,
    is_versioned,
    list_objects,
    parse_moment,
    records_of,
    report_counts,
    start_job,
)
from s3_to_wistia.cli.output import Output
from s3_to_wistia.cli.resources import (
    API_URL,
    BACKFILL_FUNCTION,
    BACKFILL_RATE,
    BACKFILL_ROLE,
    BUCKET,
    QUEUE_URL,
    REPORTS_BUCKET,
    TABLE,
    TOKEN_SECRET,
    UPLOAD_URL,
    Target,
)
from s3_to_wistia.contracts import ImportRecord

DEFAULT_RATE = 240
# What a backfill job needs, on AWS (the job's function, role and report bucket) and with
# --local (the function's own resources, for the backfill handler run in this process).
NEEDS = [
    BUCKET,
    TABLE,
    REPORTS_BUCKET,
    BACKFILL_FUNCTION,
    BACKFILL_ROLE,
    BACKFILL_RATE,
    QUEUE_URL,
    TOKEN_SECRET,
    UPLOAD_URL,
    API_URL,
]


def job_options(function: Any) -> Any:
    """The options a command that starts a backfill job shares."""
    for option in reversed(
        [
            click.option(
                "--confirm-above",
                type=click.IntRange(0),
                default=DEFAULT_CONFIRM_ABOVE,
                show_default=True,
                metavar="N",
                help="ask before starting a job that imports more objects than this",
            ),
            click.option("--yes", "-y", is_flag=True, help="start the job without asking"),
        ]
    ):
        function = option(function)
    return function


@command(
    "backfill",
    needs=NEEDS,
    json_output=True,
    short_help="Import what was in the bucket already, with S3 Batch Operations.",
)
@click.option("--prefix", default="", metavar="PREFIX", help="only keys that start with this")
@click.option(
    "--suffix",
    "suffixes",
    multiple=True,
    metavar="SUFFIX",
    help="only keys that end with this (case-sensitive; repeat for any of several)",
)
@click.option(
    "--created-before",
    metavar="TIME",
    help="only objects created before this ISO 8601 date or time (UTC unless it says)",
)
@click.option(
    "--dry-run", is_flag=True, help="list what would be imported and what is done; start nothing"
)
@click.option(
    "--manifest",
    type=click.Choice(["generated", "csv"]),
    default="generated",
    show_default=True,
    help="generated: S3 lists the bucket itself with these filters; csv: this command "
    "writes a manifest of only the objects not done yet",
)
@click.option(
    "--project",
    metavar="ID",
    help="the Wistia project (hashed id) for objects that name none in their metadata",
)
@click.option(
    "--normal-priority",
    is_flag=True,
    help="leave out Wistia's low_priority hint (sent by default: Wistia asks it of bulk imports)",
)
@click.option(
    "--retry-failed",
    metavar="JOB_ID",
    help="instead of listing the bucket, run again the failed tasks of an earlier backfill "
    "job (from its completion report): after a crash, an outage or a fixed cause",
)
@job_options
def backfill(
    target: Target,
    out: Output,
    prefix: str,
    suffixes: tuple[str, ...],
    created_before: str | None,
    dry_run: bool,
    manifest: str,
    project: str | None,
    normal_priority: bool,
    retry_failed: str | None,
    confirm_above: int,
    yes: bool,
) -> int:
    """Import the objects that are in the bucket already (put there before the function was
    wired up, or while it was not working) through an S3 Batch Operations job that invokes
    the stack's backfill function: the same import path as new objects, so an object
    imported once (by its event or an earlier backfill) is never imported again, and a
    refused one ends in the dead-letter queue with its reason.

    Lists the bucket first (so it knows what is already done), asks before a job over
    --confirm-above objects, then creates the job and prints its id, the estimated time at
    the backfill's share of the account's Wistia rate, and how to follow it. --dry-run only
    lists. With --local the job runs on the local stack's S3 Batch Operations stand-in, in
    this process, to its end.

    Exit code 0 when the job was created (--local: ran with no failed task), 1 otherwise.
    """
    selection = checked_selection(target, prefix, suffixes, created_before)
    project = checked_project(project)
    if retry_failed is not None:
        manifest = "csv"  # exactly those objects
    listed, records = objects_to_consider(target, out, selection, retry_failed, dry_run)
    todo = [o for o in listed if not is_done(records.get(o.identity))]
    document = plan_document(selection, dry_run, len(listed), len(todo), backfill_rate(target))
    if dry_run:
        show_dry_run(out, listed, records)
        document["objects"] = [dry_run_item(o, records.get(o.identity)) for o in listed]
    elif not todo:
        done = f"all {len(listed):,} are done" if listed else "it holds no such object"
        out.say(f"Nothing to backfill in {selection.where}: {done}.")
    else:
        confirm_size(out, len(todo), confirm_above, yes, "The backfill")
        plan = JobPlan(
            selection=selection,
            objects=todo if manifest == "csv" else None,
            project_id=project,
            low_priority=not normal_priority,
            description=f"s3-to-wistia backfill of {selection.where}",
        )
        return run_job(target, out, plan, document)
    out.result(document)
    return OK


def run_job(target: Target, out: Output, plan: JobPlan, document: dict[str, Any]) -> int:
    job = start_job(target, out, plan)
    document["job"] = job_document(target, job)
    show_job(out, job, document)
    out.result(document)
    return job_exit_code(job)


def objects_to_consider(
    target: Target, out: Output, selection: Selection, retry_failed: str | None, dry_run: bool
) -> tuple[list[Listed], dict[tuple[str, str], ImportRecord]]:
    """The selected objects and their records, or an earlier job's failed tasks."""
    if retry_failed is None:
        return survey(target, out, selection)
    if selection.prefix or selection.suffixes or selection.created_before or dry_run:
        raise UsageProblem(
            "--retry-failed runs an earlier job's failed tasks again: it takes no "
            "--prefix, --suffix, --created-before or --dry-run"
        )
    # Every failed task runs again: one that was done meanwhile says so at once.
    return failed_tasks(target, retry_failed.strip()), {}


def checked_project(project: str | None) -> str | None:
    if project is not None and not project.strip():
        raise UsageProblem("--project needs a project's hashed id (or leave it out)")
    return project.strip() if project else None


def checked_selection(
    target: Target, prefix: str, suffixes: tuple[str, ...], created_before: str | None
) -> Selection:
    if any(not suffix for suffix in suffixes):
        raise UsageProblem("--suffix needs a key ending such as .mp4")
    return Selection(
        bucket=target.value(BUCKET),
        prefix=prefix,
        suffixes=tuple(suffixes),
        created_before=parse_moment(created_before),
    )


def plan_document(
    selection: Selection, dry_run: bool, listed: int, todo: int, rate: int
) -> dict[str, Any]:
    """The --json answer before any job: what was listed, what is left, how long it takes."""
    return {
        "bucket": selection.bucket,
        "prefix": selection.prefix,
        "suffixes": list(selection.suffixes),
        "created_before": selection.created_before,
        "dry_run": dry_run,
        "listed": listed,
        "already_done": listed - todo,
        "to_import": todo,
        "rate_per_minute": rate,
        "estimated_seconds": round(todo * 60 / rate),
        "job": None,
    }


def list_selected(target: Target, out: Output, selection: Selection) -> list[Listed]:
    out.note(f"Listing {selection.where}...")
    s3 = target.client("s3")
    return list(list_objects(s3, selection, is_versioned(s3, selection.bucket)))


def survey(
    target: Target, out: Output, selection: Selection
) -> tuple[list[Listed], dict[tuple[str, str], ImportRecord]]:
    """The selected objects and the records they have."""
    listed = list_selected(target, out, selection)
    return listed, records_of(target, listed)


def backfill_rate(target: Target) -> int:
    """The backfill's requests a minute: the stack's BackfillRequestsPerMinute output."""
    try:
        raw = target.value(BACKFILL_RATE)
    except CliError:
        if not target.options.local:
            raise
        return DEFAULT_RATE  # --local: the function's own default
    try:
        rate = int(raw)
    except ValueError:
        raise UsageProblem(f"--backfill-rate must be a whole number, not {raw!r}") from None
    if rate < 1:
        raise UsageProblem("--backfill-rate must be at least 1")
    return rate


def dry_run_item(obj: Listed, record: ImportRecord | None) -> dict[str, Any]:
    if record is not None and is_done(record):
        state, detail = "done", f"{record.status}: {record.wistia_hashed_id or record.error or ''}"
    elif record is not None:
        state, detail = "would import", f"unfinished ({record.status})"
    else:
        state, detail = "would import", "never seen"
    return {"key": obj.key, "version": obj.version, "state": state, "detail": detail.strip()}


def show_dry_run(
    out: Output, listed: list[Listed], records: dict[tuple[str, str], ImportRecord]
) -> None:
    items = [dry_run_item(o, records.get(o.identity)) for o in listed]
    out.table(
        ("object key", "version", "state", "detail"),
        [(i["key"], i["version"], i["state"], i["detail"]) for i in items],
    )
    counts = Counter(item["state"] for item in items)
    out.note(
        f"Dry run: {counts['would import']:,} of {len(items):,} objects would be imported, "
        f"{counts['done']:,} are done; nothing was started."
    )


def job_document(target: Target, job: CreatedJob) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": job.job_id,
        "local": job.local,
        "manifest": job.manifest,
        "report": job.report,
    }
    if job.local:
        document["result"] = {**job.result, "results": report_counts(target, job)}
    else:
        document["follow"] = follow_instructions(job)
    return document


def show_job(out: Output, job: CreatedJob, document: dict[str, Any]) -> None:
    todo, listed, done = document["to_import"], document["listed"], document["already_done"]
    tasks = todo if job.manifest.startswith("s3://") else listed
    if job.local:
        result = job.result
        out.say(
            f"Backfill job {job.job_id} ran on the local S3 Batch Operations stand-in: "
            f"{result['status']}, {result['succeeded']:,} succeeded and {result['failed']:,} "
            f"failed of {result['total']:,} tasks"
        )
    else:
        out.say(f"Backfill job {job.job_id} created for {document['bucket']}")
    out.say(f"  objects:  {listed:,} listed, {done:,} already done, {todo:,} to import")
    out.say(f"  manifest: {job.manifest} ({tasks:,} tasks; done ones end at once, no Wistia call)")
    rate = document["rate_per_minute"]
    out.say(
        f"  time:     {duration(document['estimated_seconds'])} at {rate:,} Wistia requests a "
        "minute (the backfill's share of the account's rate)"
    )
    if job.local:
        results = document["job"]["result"]["results"]
        out.say("  results:  " + ", ".join(f"{n:,} {what}" for what, n in results.items()))
        out.say(f"  report:   {job.report}")
        for reason in job.result.get("failure_reasons", []):
            out.warn(f"the job failed: {reason}")
        return
    [describe, console, report] = follow_instructions(job)
    out.say(f"  follow:   {describe}")
    out.say(f"            {console}")
    out.say(f"  then:     {report}; s3-to-wistia reconcile --bucket {document['bucket']}")


def job_exit_code(job: CreatedJob) -> int:
    if not job.local:
        return OK
    return OK if job.result["status"] == "Complete" and not job.result["failed"] else FAILED
