"""What `backfill` and `reconcile` share: the bucket's objects as the function would name them,
their import records, and the S3 Batch Operations job that brings the missing ones in.

An object is named as an event names it: its current version's versionId, else (an
unversioned bucket, or an object stored before versioning was turned on, version "null") its
ETag. That is the record's sort key, so "already done" means exactly what the function's
claim means by it.

A job is created with the calls of boto3's `s3control` client, against AWS or, with `--local`,
against the local stack's S3 Batch Operations stand-in (local_stack.batch_control), which takes
the very same request and runs the real backfill handler in this process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from s3_to_wistia.cli.errors import CliError, UsageProblem
from s3_to_wistia.cli.output import Output
from s3_to_wistia.cli.resources import (
    API_URL,
    BACKFILL_FUNCTION,
    BACKFILL_RATE,
    BACKFILL_ROLE,
    QUEUE_URL,
    REPORTS_BUCKET,
    TABLE,
    TOKEN_SECRET,
    UPLOAD_URL,
    Target,
)
from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.model import ObjectRef

NULL_VERSION = "null"
FINAL = frozenset({"SUBMITTED", "SKIPPED", "FAILED"})
REPORT_PREFIX = "reports"
MANIFEST_PREFIX = "manifests"
REPORT_FORMAT = "Report_CSV_20180820"
CSV_MANIFEST_FORMAT = "S3BatchOperations_CSV_20180820"
# The job --local runs on the stand-in invokes this name; nothing on AWS is involved.
LOCAL_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-backfill-local"
LOCAL_ROLE_ARN = "arn:aws:iam::123456789012:role/s3-to-wistia-backfill-local"
DEFAULT_CONFIRM_ABOVE = 1000
PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class Selection:
    """Which of the bucket's objects a command looks at."""

    bucket: str
    prefix: str = ""
    suffixes: tuple[str, ...] = ()
    created_before: datetime | None = None

    def admits(self, key: str, last_modified: datetime) -> bool:
        if self.suffixes and not key.endswith(self.suffixes):
            return False
        return self.created_before is None or last_modified < self.created_before

    @property
    def where(self) -> str:
        text = f"s3://{self.bucket}/{self.prefix}"
        if self.suffixes:
            text += f" (keys ending {' or '.join(self.suffixes)})"
        if self.created_before:
            text += f" created before {self.created_before.isoformat()}"
        return text


@dataclass(frozen=True)
class Listed:
    """One object of the bucket (its current version), as a listing describes it."""

    bucket: str
    key: str
    version_id: str | None  # None in an unversioned bucket
    etag: str
    size: int
    last_modified: datetime

    @property
    def version(self) -> str:
        """The record's sort key, as the function writes it."""
        if self.version_id and self.version_id != NULL_VERSION:
            return self.version_id
        return self.etag

    @property
    def ref(self) -> ObjectRef:
        version = self.version if self.version != self.etag else None
        return ObjectRef(self.bucket, self.key, version, self.etag, self.size, {})

    @property
    def identity(self) -> tuple[str, str]:
        return (f"s3://{self.bucket}/{self.key}", self.version)


def parse_moment(text: str | None) -> datetime | None:
    """--created-before: an ISO 8601 date or time; UTC unless it says otherwise."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageProblem(
            f"--created-before takes an ISO 8601 date or time (2026-01-31, "
            f"2026-01-31T12:00:00Z), not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_versioned(s3: Any, bucket: str) -> bool:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    return status in ("Enabled", "Suspended")


def list_objects(s3: Any, selection: Selection, versioned: bool) -> Iterator[Listed]:
    """The current version of every object the selection admits, in key order."""
    if versioned:
        pages = s3.get_paginator("list_object_versions").paginate(
            Bucket=selection.bucket, Prefix=selection.prefix
        )
        entries = (v for page in pages for v in page.get("Versions", []) if v.get("IsLatest"))
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=selection.bucket, Prefix=selection.prefix
        )
        entries = (entry for page in pages for entry in page.get("Contents", []))
    for entry in entries:
        if selection.admits(entry["Key"], entry["LastModified"]):
            yield Listed(
                bucket=selection.bucket,
                key=entry["Key"],
                version_id=entry.get("VersionId") if versioned else None,
                etag=str(entry.get("ETag", "")).strip('"'),
                size=int(entry.get("Size", 0)),
                last_modified=entry["LastModified"],
            )


def records_of(target: Target, objects: Sequence[Listed]) -> dict[tuple[str, str], ImportRecord]:
    from s3_to_wistia.adapters.records import Records  # loads boto3: not for --help

    records = Records(target.client("dynamodb"), target.value(TABLE))
    return records.get_many([o.ref for o in objects])


def is_done(record: ImportRecord | None) -> bool:
    return record is not None and record.status in FINAL


# --- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPlan:
    """What a backfill job is asked to do."""

    selection: Selection
    # None: S3 generates the manifest from the selection; else exactly these objects (CSV).
    objects: Sequence[Listed] | None
    project_id: str | None
    low_priority: bool
    description: str

    def user_arguments(self) -> dict[str, str]:
        arguments = {"low_priority": "true" if self.low_priority else "false"}
        if self.project_id:
            arguments["project_id"] = self.project_id
        return arguments


@dataclass
class CreatedJob:
    job_id: str
    account_id: str
    region: str | None
    manifest: str  # "generated by S3", or the CSV's s3:// location
    report: str  # where the completion report goes
    local: bool
    result: dict[str, Any] = field(default_factory=dict)  # --local: how the job ended


def account_of(function_arn: str) -> str:
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or not parts[4].isdigit():
        raise CliError(
            f"{function_arn!r} is not a Lambda function ARN: pass --backfill-function ARN "
            "(the stack's BackfillFunctionArn output)"
        )
    return parts[4]


def job_request(
    plan: JobPlan, function_arn: str, role_arn: str, reports_bucket: str, manifest: dict[str, Any]
) -> dict[str, Any]:
    """s3control CreateJob's arguments for a LambdaInvoke backfill job."""
    return {
        "AccountId": account_of(function_arn),
        "ConfirmationRequired": False,  # the CLI asked already, above its threshold
        "Operation": {
            "LambdaInvoke": {
                "FunctionArn": function_arn,
                "InvocationSchemaVersion": "2.0",
                "UserArguments": plan.user_arguments(),
            }
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{reports_bucket}",
            "Format": REPORT_FORMAT,
            "Enabled": True,
            "Prefix": REPORT_PREFIX,
            "ReportScope": "AllTasks",
        },
        **manifest,
        "Priority": 10,
        "RoleArn": role_arn,
        "ClientRequestToken": str(uuid.uuid4()),
        "Description": plan.description[:256],
    }


def generated_manifest(selection: Selection) -> dict[str, Any]:
    """S3 lists the bucket itself, with the selection's filters."""
    names: dict[str, list[str]] = {}
    if selection.prefix:
        names["MatchAnyPrefix"] = [selection.prefix]
    if selection.suffixes:
        names["MatchAnySuffix"] = list(selection.suffixes)
    filters: dict[str, Any] = {}
    if names:
        filters["KeyNameConstraint"] = names
    if selection.created_before:
        filters["CreatedBefore"] = selection.created_before
    spec: dict[str, Any] = {
        "SourceBucket": f"arn:aws:s3:::{selection.bucket}",
        "EnableManifestOutput": False,
    }
    if filters:
        spec["Filter"] = filters
    return {"ManifestGenerator": {"S3JobManifestGenerator": spec}}


def csv_manifest(
    s3: Any, reports_bucket: str, objects: Sequence[Listed]
) -> tuple[str, dict[str, Any]]:
    """Write the objects as a CSV manifest (keys URL-encoded, as S3 requires; version ids for
    all rows or none); its location and the job's Manifest argument."""
    with_versions = any(o.version_id for o in objects)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    for obj in objects:
        row = [obj.bucket, quote(obj.key, safe="/")]
        if with_versions:
            row.append(obj.version_id or NULL_VERSION)
        writer.writerow(row)
    key = f"{MANIFEST_PREFIX}/{datetime.now(UTC):%Y-%m-%d}/{uuid.uuid4().hex}.csv"
    answer = s3.put_object(Bucket=reports_bucket, Key=key, Body=text.getvalue().encode())
    location: dict[str, str] = {
        "ObjectArn": f"arn:aws:s3:::{reports_bucket}/{key}",
        "ETag": str(answer["ETag"]).strip('"'),
    }
    fields = ["Bucket", "Key", "VersionId"] if with_versions else ["Bucket", "Key"]
    manifest = {
        "Manifest": {
            "Spec": {"Format": CSV_MANIFEST_FORMAT, "Fields": fields},
            "Location": location,
        }
    }
    return f"s3://{reports_bucket}/{key}", manifest


def start_job(target: Target, out: Output, plan: JobPlan) -> CreatedJob:
    """Create the job: on AWS (s3control), or with --local on the stand-in, run to its end."""
    reports = target.value(REPORTS_BUCKET)
    if plan.objects is None:
        where, manifest = (
            "generated by S3 from the bucket listing",
            generated_manifest(plan.selection),
        )
    else:
        where, manifest = csv_manifest(target.client("s3"), reports, plan.objects)
    if target.options.local:
        return _run_locally(target, out, plan, reports, where, manifest)
    function_arn = target.value(BACKFILL_FUNCTION)
    request = job_request(plan, function_arn, target.value(BACKFILL_ROLE), reports, manifest)
    answer = target.client("s3control").create_job(**request)
    job_id = str(answer["JobId"])
    return CreatedJob(
        job_id=job_id,
        account_id=request["AccountId"],
        region=function_arn.split(":")[3],
        manifest=where,
        report=f"s3://{reports}/{REPORT_PREFIX}/job-{job_id}/",
        local=False,
    )


def _run_locally(
    target: Target,
    out: Output,
    plan: JobPlan,
    reports: str,
    where: str,
    manifest: dict[str, Any],
) -> CreatedJob:
    """The job on the local stack's S3 Batch Operations stand-in, invoking the real backfill
    handler (loaded from template.yaml's BackfillFunction as Lambda loads it) in this process,
    with the resources this command resolved as its environment."""
    # Imported here: only --local needs the local stack, never a deployment's operator.
    from local_stack.aws import patched_environ
    from local_stack.batch_control import BatchOperations
    from local_stack.batch_operations import RunnerSettings
    from local_stack.functions import ExecutionEnvironments
    from local_stack.run import function_output_to
    from local_stack.template import ROOT

    environment = {
        "IMPORTS_TABLE_NAME": target.value(TABLE),
        "DEAD_LETTER_QUEUE_URL": target.value(QUEUE_URL),
        "WISTIA_TOKEN_SECRET": target.value(TOKEN_SECRET),
        "WISTIA_UPLOAD_URL": target.value(UPLOAD_URL),
        "WISTIA_API_URL": target.value(API_URL),
        "BACKFILL_REQUESTS_PER_MINUTE": target.value(BACKFILL_RATE),
    }
    concurrency = int(os.environ.get("BACKFILL_CONCURRENCY", "3") or 3)
    environment["BACKFILL_CONCURRENCY"] = str(concurrency)
    request = job_request(plan, LOCAL_FUNCTION_ARN, LOCAL_ROLE_ARN, reports, manifest)
    log = ROOT / ".local" / "cli" / "backfill-function.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    # The function's stdout (its JSON log, its metrics) is CloudWatch's on AWS: a file here,
    # so that this command's own output (--json above all) stays its own.
    with patched_environ(environment), function_output_to(log):
        environments = ExecutionEnvironments(
            "BackfillFunction", limit=concurrency, on_cold_start=_log_to_stdout
        )
        operations = BatchOperations(
            environments, RunnerSettings(concurrency=concurrency), s3=target.client("s3")
        )
        job_id = operations.create_job(**request)["JobId"]
        out.note(f"Running backfill job {job_id} on the local S3 Batch Operations stand-in...")
        result = wait_locally(operations, request["AccountId"], job_id, out.note)
    out.note(f"The backfill function's log: {log}")
    return CreatedJob(
        job_id=job_id,
        account_id=request["AccountId"],
        region=None,
        manifest=where,
        report=f"s3://{reports}/{REPORT_PREFIX}/job-{job_id}/",
        local=True,
        result=result,
    )


def _log_to_stdout(module: Any) -> None:
    """Powertools keeps one log handler per service for the process, bound to the stdout of
    the first cold start: point it at this run's."""
    import logging
    import sys

    handler = getattr(getattr(module, "logger", None), "registered_handler", None)
    if isinstance(handler, logging.StreamHandler):
        # Not setStream: it flushes the old stream, which an earlier run may have closed.
        with handler.lock or threading.Lock():
            handler.stream = sys.stdout


def wait_locally(
    operations: Any, account_id: str, job_id: str, note: Callable[[str], None]
) -> dict[str, Any]:
    """Wait for the stand-in's job to end, noting its progress now and then; how it ended."""
    shown = ""
    while True:
        try:
            operations.wait(job_id, timeout=PROGRESS_SECONDS)
            ended = True
        except TimeoutError:
            ended = False
        job = operations.describe_job(AccountId=account_id, JobId=job_id)["Job"]
        progress = job.get("ProgressSummary", {})
        line = (
            f"  {job['Status']}: {progress.get('NumberOfTasksSucceeded', 0):,} succeeded, "
            f"{progress.get('NumberOfTasksFailed', 0):,} failed of "
            f"{progress.get('TotalNumberOfTasks', 0):,}"
        )
        if line != shown and not ended:
            note(line)
            shown = line
        if ended:
            return {
                "status": job["Status"],
                "total": progress.get("TotalNumberOfTasks", 0),
                "succeeded": progress.get("NumberOfTasksSucceeded", 0),
                "failed": progress.get("NumberOfTasksFailed", 0),
                "failure_reasons": [r.get("FailureReason") for r in job.get("FailureReasons", [])],
            }


def confirm_size(out: Output, count: int, threshold: int, yes: bool, what: str) -> None:
    """Ask before a job above the threshold; --yes answers for scripts."""
    if yes or count <= threshold:
        return
    import click

    if not _stdin_is_terminal():
        raise UsageProblem(
            f"{what} would import {count:,} objects (over --confirm-above {threshold:,}): "
            "pass --yes to go ahead without asking"
        )
    if not click.confirm(f"{what} would import {count:,} objects. Go ahead?", err=True):
        raise CliError("nothing was started: you said no")


def _stdin_is_terminal() -> bool:
    import sys

    return sys.stdin.isatty()


def duration(seconds: float) -> str:
    """3725 -> 'about 1 h 2 min'."""
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"


def follow_instructions(job: CreatedJob) -> list[str]:
    region = job.region or "REGION"
    return [
        f"aws s3control describe-job --account-id {job.account_id} --job-id {job.job_id} "
        f"--region {region}",
        f"https://{region}.console.aws.amazon.com/s3/jobs/{job.job_id}?region={region}",
        f"completion report: {job.report} (when the job ends)",
    ]


# What the backfill function's result strings begin with, and what they mean.
RESULT_KINDS = (
    ("SUBMITTED:", "submitted"),
    ("SKIPPED:", "skipped"),
    ("already handled", "already done"),
    ("FAILED:", "failed (dead-lettered)"),
    ("Lambda returned", "function errors"),
    ("will be retried", "retries used up"),
    ("not finished", "retries used up"),
)


def result_kind(message: str) -> str:
    for start, kind in RESULT_KINDS:
        if message.startswith(start):
            return kind
    return "other"


def report_counts(target: Target, job: CreatedJob) -> dict[str, int]:
    """How the tasks of a finished job ended, from its completion report (none when no task
    ran: S3 writes a report only once one was invoked)."""
    from botocore.exceptions import ClientError

    s3 = target.client("s3")
    bucket = job.report.removeprefix("s3://").split("/", 1)[0]
    try:
        body = s3.get_object(Bucket=bucket, Key=f"{REPORT_PREFIX}/job-{job.job_id}/manifest.json")
    except ClientError:
        return {}
    counts: Counter[str] = Counter()
    for result in json.loads(body["Body"].read())["Results"]:
        text = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
        for row in csv.reader(io.StringIO(text.decode("utf-8"), newline="")):
            counts[result_kind(row[6])] += 1
    return dict(counts.most_common())


def failed_tasks(target: Target, job_id: str) -> list[Listed]:
    """The objects of an earlier job's failed tasks, from its completion report (in the
    reports bucket, reports/job-<id>/): what to run again once the cause is gone."""
    from botocore.exceptions import ClientError

    s3 = target.client("s3")
    bucket = target.value(REPORTS_BUCKET)
    key = f"{REPORT_PREFIX}/job-{job_id}/manifest.json"
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as error:
        raise CliError(
            f"no completion report s3://{bucket}/{key}: is job {job_id} finished, and was it "
            "a backfill of this stack? (S3 writes the report when the job ends)"
        ) from error
    objects: list[Listed] = []
    now = datetime.now(UTC)
    for result in manifest.get("Results", []):
        if result.get("TaskExecutionStatus") != "failed":
            continue
        text = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
        for row in csv.reader(io.StringIO(text.decode("utf-8"), newline="")):
            # Bucket, Key (URL-encoded, as in the manifest), VersionId, ...
            objects.append(Listed(row[0], unquote(row[1]), row[2] or None, "", 0, now))
    return objects
