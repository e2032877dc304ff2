"""A local stand-in for S3 Batch Operations running a `LambdaInvoke` job (moto has none).

A job reads its manifest (a CSV in S3, or one generated from a bucket listing as S3's
`ManifestGenerator` does), then invokes a handler `handler(event, context)` synchronously, one
task per invocation, with the event S3 sends (schema "1.0" or "2.0"), a bounded number at once.
It validates each answer as S3 does, redrives `TemporaryFailure`, fails the job past S3's task
failure threshold, and writes the completion report to S3 in S3's layout. It talks to moto's
S3 over HTTP through boto3 and `AWS_ENDPOINT_URL`, like the rest of the local stack.

Emulated (AWS's S3 user guide: "Invoke AWS Lambda function", "Creating a job", "Tracking job
status", "Examples: S3 Batch Operations completion reports"; the Lambda guide's "Invoke a
Lambda function with Amazon S3 batch events"):
- Manifests: `S3BatchOperations_CSV_20180820` with `Fields` (Bucket, Key, VersionId, Ignore),
  URL-encoded keys passed on as written, version ids for all rows or none, the ETag checked;
  or generated: prefix/suffix/substring, created after/before, size greater/less than and
  storage class filters, a versioned bucket's current versions, and with
  `EnableManifestOutput` the list written to S3 (`<prefix>/job-<id>/manifest.json` and a
  gzipped CSV, modelled on S3 Inventory). The whole manifest is read before the first task
  runs (S3's Preparing), spooled to a local file, so memory does not grow with its length.
- Events: "1.0" (`job.id`; tasks with `taskId`, `s3Key`, `s3VersionId`, `s3BucketArn`) and
  "2.0" (`job.id`, `job.userArguments` when the job has any; tasks with `s3Bucket` instead of
  the ARN). `s3VersionId` is null without a version. `invocationId` is new for every
  invocation, `taskId` stays the same across a task's redrives.
- Answers: a JSON object with the `invocationSchemaVersion` and `invocationId` sent, and
  `results` holding one result for the task (`taskId`, `resultCode`, `resultString`); no
  result applies `treatMissingKeysAs` (default `PermanentFailure`). Anything else, a handler
  exception, an answer that is not JSON-serialisable or an invocation longer than the
  function's timeout is a function error: the task fails (`PermanentFailure`), not retried.
- `TemporaryFailure` is redriven with exponential back-off before the job ends, up to
  `RunnerSettings.temporary_failure_attempts` attempts; then it fails with its last result
  string. Redrives wait in a queue: they hold no concurrency slot.
- At most `RunnerSettings.concurrency` invocations in flight, never more.
- Once at least 1,000 tasks have finished and more than 50% of them failed, no task starts any
  more and the job ends `Failed`; otherwise `Complete`. Every task that ran, redrives pending
  when the job stopped included, is counted and reported.
- Statuses New, Preparing, Suspended (`ConfirmationRequired`), Ready, Active, Failing, Failed,
  Complete, Cancelling, Cancelled; counts as `ProgressSummary` (see batch_control.py for the
  s3control-shaped API: create_job, describe_job, update_job_status, wait).
- The completion report (AllTasks or FailedTasksOnly), written once at least one task was
  invoked, before the job reaches its final status.

Not emulated: S3 Inventory manifests, operations other than LambdaInvoke, job priorities and
queueing (every job starts at once), Lambda throttling and Invoke errors (a report row's HTTP
status is always 200), payload size limits, IAM (the role is recorded, never checked), job
tags, replication filters, result string truncation, S3's own pacing (its concurrency, retry
count and delays are settings here, not S3's undocumented figures). S3's wording of failure
messages and failure codes is not documented; the stand-in's messages say the same thing in
its own words, except `Lambda returned function error: {...}`, which follows AWS's example.
A handler that outlives the timeout is not killed: its answer is discarded when it returns.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import random
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import boto3

from local_stack.batch_manifest import (
    ManifestEntry,
    ManifestError,
    ManifestOutput,
    ObjectFilter,
    Spool,
    check_fields,
    generate_manifest,
    parse_manifest,
    publish_generated_manifest,
    read_csv_manifest,
)
from local_stack.batch_report import CompletionReport, ReportWriter
from local_stack.harness import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
ResultCode = Literal["Succeeded", "TemporaryFailure", "PermanentFailure"]
RESULT_CODES: tuple[ResultCode, ...] = ("Succeeded", "TemporaryFailure", "PermanentFailure")
SCHEMA_VERSIONS = ("1.0", "2.0")
MAX_USER_ARGUMENTS = 10
TERMINAL_STATUSES = ("Complete", "Failed", "Cancelled")
_sequence = itertools.count()


class InvalidJobRequest(ValueError):
    """S3 would refuse to create this job."""


@dataclass(frozen=True)
class LambdaInvoke:
    """The job's operation: the function to invoke and the event schema it expects."""

    function_arn: str
    invocation_schema_version: str = "1.0"
    user_arguments: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.invocation_schema_version not in SCHEMA_VERSIONS:
            raise InvalidJobRequest(
                f"InvocationSchemaVersion must be one of {SCHEMA_VERSIONS}, "
                f"not {self.invocation_schema_version!r}"
            )
        arguments = dict(self.user_arguments)
        if arguments and self.invocation_schema_version != "2.0":
            raise InvalidJobRequest("UserArguments need InvocationSchemaVersion 2.0")
        if len(arguments) > MAX_USER_ARGUMENTS:
            raise InvalidJobRequest(f"UserArguments hold at most {MAX_USER_ARGUMENTS} entries")
        for name, value in arguments.items():
            if not isinstance(name, str) or not 1 <= len(name) <= 64:
                raise InvalidJobRequest(f"UserArguments key {name!r}: a string of 1-64 chars")
            if not isinstance(value, str) or len(value) > 1024:
                raise InvalidJobRequest(f"UserArguments[{name!r}]: a string of at most 1024")
        object.__setattr__(self, "user_arguments", arguments)

    @property
    def function_name(self) -> str:
        """`my-function` from `arn:aws:lambda:<region>:<account>:function:my-function[:alias]`."""
        parts = self.function_arn.split(":")
        return parts[6] if len(parts) >= 7 and parts[5] == "function" else self.function_arn


@dataclass(frozen=True)
class CsvManifest:
    """A CSV manifest object in S3 (`S3BatchOperations_CSV_20180820`)."""

    bucket: str
    key: str
    fields: tuple[str, ...] = ("Bucket", "Key")
    etag: str | None = None
    version_id: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "fields", check_fields(self.fields))
        except ManifestError as error:
            raise InvalidJobRequest(str(error)) from error


@dataclass(frozen=True)
class GeneratedManifest:
    """A manifest S3 generates by listing `source_bucket` (`S3JobManifestGenerator`)."""

    source_bucket: str
    filter: ObjectFilter = field(default_factory=ObjectFilter)
    output: ManifestOutput | None = None  # EnableManifestOutput


Manifest = CsvManifest | GeneratedManifest


@dataclass(frozen=True)
class RunnerSettings:
    """What S3 decides for itself and does not document: how many invocations at once, how a
    TemporaryFailure is redriven, the function's timeout. Tests shorten the pacing."""

    concurrency: int = 10
    temporary_failure_attempts: int = 5
    retry_delay: float = 1.0  # before the first redrive; doubles for each further one
    max_retry_delay: float = 60.0
    function_timeout: float = 60.0
    failure_threshold_tasks: int = 1000
    failure_threshold_ratio: float = 0.5
    listing_page_size: int = 1000  # keys per page when generating a manifest, as S3 lists

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.temporary_failure_attempts < 1:
            raise ValueError("temporary_failure_attempts must be at least 1")

    def redrive_delay(self, attempts: int) -> float:
        """Seconds before the redrive that follows attempt number `attempts` (1, 2, ...)."""
        delay = min(self.max_retry_delay, self.retry_delay * 2 ** (attempts - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)


class TaskResult(NamedTuple):
    """How one invocation ended for its task, as S3 reads the answer."""

    code: ResultCode
    message: str


def _token(size: int) -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(size)).decode().rstrip("=")


def new_invocation_id() -> str:
    return _token(38)


def new_task_id() -> str:
    return _token(15)


def task_event(
    operation: LambdaInvoke, job_id: str, task_id: str, entry: ManifestEntry, invocation_id: str
) -> dict[str, Any]:
    """The event S3 Batch Operations sends for one task."""
    task: dict[str, Any] = {
        "taskId": task_id,
        "s3Key": entry.key,
        "s3VersionId": entry.version_id,
    }
    job: dict[str, Any] = {"id": job_id}
    if operation.invocation_schema_version == "1.0":
        task["s3BucketArn"] = f"arn:aws:s3:::{entry.bucket}"
    else:
        task["s3Bucket"] = entry.bucket
        if operation.user_arguments:
            job["userArguments"] = dict(operation.user_arguments)
    return {
        "invocationSchemaVersion": operation.invocation_schema_version,
        "invocationId": invocation_id,
        "job": job,
        "tasks": [task],
    }


def _invalid(reason: str) -> TaskResult:
    return TaskResult("PermanentFailure", f"Lambda returned an invalid response: {reason}")


def interpret_answer(answer: Any, event: Mapping[str, Any]) -> TaskResult:
    """What S3 makes of the function's (JSON-decoded) answer to `event`."""
    if not isinstance(answer, dict):
        return _invalid(f"expected a JSON object, got {json.dumps(answer)[:100]}")
    for name in ("invocationSchemaVersion", "invocationId"):
        if answer.get(name) != event[name]:
            return _invalid(f"{name} is {answer.get(name)!r}, the event's is {event[name]!r}")
    missing = answer.get("treatMissingKeysAs") or "PermanentFailure"
    if missing not in RESULT_CODES:
        return _invalid(f"treatMissingKeysAs {missing!r} is not one of {RESULT_CODES}")
    results = answer.get("results")
    if not isinstance(results, list):
        return _invalid("results must be a list")
    task_id = event["tasks"][0]["taskId"]
    if not results:
        return TaskResult(missing, f"no result for task {task_id}: treatMissingKeysAs {missing}")
    if len(results) > 1:
        return _invalid(f"{len(results)} results for one task")
    [result] = results
    if not isinstance(result, dict):
        return _invalid("a result must be a JSON object")
    if result.get("taskId") != task_id:
        return _invalid(f"result for task {result.get('taskId')!r}, the task is {task_id!r}")
    code = result.get("resultCode")
    if code not in RESULT_CODES:
        return _invalid(f"resultCode {code!r} is not one of {RESULT_CODES}")
    message = result.get("resultString")
    if message is not None and not isinstance(message, str):
        return _invalid("resultString must be a string")
    return TaskResult(code, message or "")


def function_error(error_type: str, error_message: str) -> TaskResult:
    """A task whose invocation ended in a function error, worded as S3's reports word it."""
    payload = json.dumps(
        {"errorMessage": error_message, "errorType": error_type},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return TaskResult("PermanentFailure", f"Lambda returned function error: {payload}")


def timed_out(request_id: str, timeout: float) -> TaskResult:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return function_error(
        "Sandbox.Timedout", f"{stamp} {request_id} Task timed out after {timeout:.2f} seconds"
    )


def threshold_reached(finished: int, failed: int, settings: RunnerSettings) -> bool:
    """S3's task failure threshold: at least 1,000 tasks finished and over 50% failed."""
    return (
        finished >= settings.failure_threshold_tasks
        and failed > finished * settings.failure_threshold_ratio
    )


@dataclass(frozen=True)
class JobFailure:
    code: str
    reason: str


@dataclass(frozen=True)
class JobResult:
    """How a job ended."""

    job_id: str
    status: str  # Complete, Failed or Cancelled
    total_tasks: int
    succeeded: int
    failed: int
    invocations: int  # redrives included
    max_in_flight: int
    failure_reasons: tuple[JobFailure, ...]
    report_key: str | None  # the completion report's manifest.json, in the report's bucket
    generated_manifest_key: str | None  # the generated manifest's manifest.json, when written
    elapsed_seconds: float


class _Task(NamedTuple):
    task_id: str
    entry: ManifestEntry
    attempts: int  # invocations made so far
    last: TaskResult | None


class Job:
    """One job from manifest to completion report. `run` does the work on the calling thread;
    `result`, `active_seconds`, `confirm` and `cancel` may be called from any other."""

    def __init__(
        self,
        handler: Handler,
        operation: LambdaInvoke,
        manifest: Manifest,
        report: CompletionReport | None = None,
        settings: RunnerSettings | None = None,
        s3: Any = None,
        confirmation_required: bool = False,
        job_id: str | None = None,
    ) -> None:
        self.job_id = job_id or str(uuid.uuid4())
        self.operation = operation
        self.manifest = manifest
        self.report = report
        self.settings = settings or RunnerSettings()
        self.confirmation_required = confirmation_required
        self.created_at = datetime.now(UTC)
        self.terminated_at: datetime | None = None
        self.status = "New"
        self.failure_reasons: list[JobFailure] = []
        self.total_tasks = 0
        self.succeeded = 0
        self.failed = 0
        self.invocations = 0
        self.max_in_flight = 0
        self.report_key: str | None = None
        self.generated_manifest_key: str | None = None
        self.generated_manifest_etag: str | None = None
        self._handler = handler
        self._s3 = s3 if s3 is not None else boto3.client("s3")
        self._changed = threading.Condition()
        self._in_flight = 0
        self._redrives: list[tuple[float, int, _Task]] = []
        self._stopping = False
        self._threshold_exceeded = False
        self._confirmed = not confirmation_required
        self._cancel_requested = False
        self._active_since: float | None = None
        self._active_seconds = 0.0
        self._started = time.monotonic()
        self._ended: float | None = None
        self.done = threading.Event()

    # --- the job's life ---

    def run(self) -> JobResult:
        try:
            with tempfile.TemporaryDirectory(prefix=f"batch-job-{self.job_id[:8]}-") as folder:
                self._run(Path(folder))
        except Exception as error:  # the stand-in itself broke: say so, never hang a waiter
            with self._changed:
                self.failure_reasons.append(JobFailure("InternalError", repr(error)[:256]))
                self._end("Failed")
            raise
        finally:
            self.done.set()
        return self.result()

    def _run(self, folder: Path) -> None:
        self._set_status("Preparing")
        spool = Spool(folder / "manifest.csv")
        try:
            self.total_tasks = spool.fill(self._entries())
            if isinstance(self.manifest, GeneratedManifest) and self.manifest.output:
                self.generated_manifest_key, self.generated_manifest_etag = (
                    publish_generated_manifest(
                        self._s3,
                        spool,
                        self.manifest.source_bucket,
                        self.manifest.output,
                        self.job_id,
                    )
                )
        except ManifestError as error:
            with self._changed:
                self.failure_reasons.append(JobFailure("ManifestError", str(error)[:256]))
                self._end("Failed")
            return
        if not self._wait_for_confirmation():
            return
        self._set_status("Ready")
        with self._changed:
            self.status = "Active"
            self._active_since = time.monotonic()
        writer = ReportWriter(self.report, folder) if self.report else None
        try:
            self._dispatch(spool, writer)
        finally:
            if writer:
                writer.close()
        if writer and self.invocations:
            self.report_key = writer.publish(self._s3, self.job_id)
        with self._changed:
            if self._threshold_exceeded:
                self._end("Failed")
            else:
                self._end("Cancelled" if self._cancel_requested else "Complete")

    def _entries(self) -> Iterator[ManifestEntry]:
        manifest = self.manifest
        try:
            if isinstance(manifest, CsvManifest):
                lines = read_csv_manifest(
                    self._s3, manifest.bucket, manifest.key, manifest.etag, manifest.version_id
                )
                yield from parse_manifest(lines, manifest.fields)
            else:
                yield from generate_manifest(
                    self._s3,
                    manifest.source_bucket,
                    manifest.filter,
                    self.settings.listing_page_size,
                )
        except ManifestError:
            raise
        except Exception as error:  # S3 fails the job when it cannot read or list
            raise ManifestError(f"reading the manifest failed: {error}") from error

    def _wait_for_confirmation(self) -> bool:
        with self._changed:
            if not self._confirmed and not self._cancel_requested:
                self.status = "Suspended"
            while not self._confirmed and not self._cancel_requested:
                self._changed.wait()
            if self._cancel_requested:
                self._end("Cancelled")
                return False
        return True

    def _set_status(self, status: str) -> None:
        with self._changed:
            self.status = status

    def _end(self, status: str) -> None:
        """Called with the lock held."""
        if self._active_since is not None:
            self._active_seconds += time.monotonic() - self._active_since
            self._active_since = None
        self.status = status
        self.terminated_at = datetime.now(UTC)
        self._ended = time.monotonic()
        self._changed.notify_all()

    # --- running the tasks ---

    def _dispatch(self, spool: Iterable[ManifestEntry], writer: ReportWriter | None) -> None:
        """Start tasks, redrives first once due, while a slot is free; then drain. No more than
        `concurrency` tasks are ever handed to the pool, so none waits in its queue."""
        entries = iter(spool)
        exhausted = False
        limit = self.settings.concurrency
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="batch-task") as pool:
            while True:
                with self._changed:
                    task: _Task | None = None
                    while task is None and not self._stopping:
                        if self._in_flight >= limit:
                            self._changed.wait()
                            continue
                        now = time.monotonic()
                        if self._redrives and self._redrives[0][0] <= now:
                            task = heapq.heappop(self._redrives)[2]
                        elif not exhausted:
                            entry = next(entries, None)
                            if entry is None:
                                exhausted = True
                            else:
                                task = _Task(new_task_id(), entry, 0, None)
                        elif not self._redrives and self._in_flight == 0:
                            break
                        else:
                            wait = self._redrives[0][0] - now if self._redrives else None
                            self._changed.wait(wait)
                    if task is None:
                        break
                    self._in_flight += 1
                    self.invocations += 1
                    self.max_in_flight = max(self.max_in_flight, self._in_flight)
                pool.submit(self._work, task, writer)
            with self._changed:
                while self._in_flight:
                    self._changed.wait()
                # The job stopped early: redrives still waiting ran and failed; they count.
                while self._redrives:
                    waiting = heapq.heappop(self._redrives)[2]
                    assert waiting.last is not None
                    self._finish(waiting, waiting.last, writer)

    def _work(self, task: _Task, writer: ReportWriter | None) -> None:
        try:
            result = self._invoke(task)
        except BaseException as error:  # never lose a slot, whatever happens
            result = function_error(type(error).__name__, str(error))
        task = task._replace(attempts=task.attempts + 1, last=result)
        with self._changed:
            self._in_flight -= 1
            retry = (
                result.code == "TemporaryFailure"
                and task.attempts < self.settings.temporary_failure_attempts
                and not self._stopping
            )
            if retry:
                due = time.monotonic() + self.settings.redrive_delay(task.attempts)
                heapq.heappush(self._redrives, (due, next(_sequence), task))
            else:
                self._finish(task, result, writer)
            self._changed.notify_all()

    def _finish(self, task: _Task, result: TaskResult, writer: ReportWriter | None) -> None:
        """Count a task's final result and report it. Called with the lock held."""
        if result.code == "Succeeded":
            self.succeeded += 1
        else:
            self.failed += 1
        if writer:
            writer.add(task.entry, result.code, result.message)
        finished = self.succeeded + self.failed
        if not self._stopping and threshold_reached(finished, self.failed, self.settings):
            self._stopping = True
            self._threshold_exceeded = True
            self.status = "Failing"
            self.failure_reasons.append(
                JobFailure(
                    "TaskFailureThresholdExceeded",
                    f"{self.failed} of {finished} tasks failed: over "
                    f"{self.settings.failure_threshold_ratio:.0%} after at least "
                    f"{self.settings.failure_threshold_tasks} tasks",
                )
            )

    def _invoke(self, task: _Task) -> TaskResult:
        event = task_event(
            self.operation, self.job_id, task.task_id, task.entry, new_invocation_id()
        )
        timeout = self.settings.function_timeout
        context = LambdaContext(
            timeout_seconds=timeout,
            function_name=self.operation.function_name,
            invoked_function_arn=self.operation.function_arn,
        )
        started = time.monotonic()
        try:
            answer = self._handler(event, context)
        except BaseException as error:  # the runtime reports SystemExit too, as a function error
            return function_error(type(error).__name__, str(error))
        if time.monotonic() - started > timeout:
            return timed_out(context.aws_request_id, timeout)
        try:
            payload = json.loads(json.dumps(answer))
        except (TypeError, ValueError) as error:
            return function_error("Runtime.MarshalError", f"Unable to marshal response: {error}")
        return interpret_answer(payload, event)

    # --- control from other threads ---

    def confirm(self) -> None:
        """`UpdateJobStatus` to Ready: a Suspended job starts."""
        with self._changed:
            self._confirmed = True
            self._changed.notify_all()

    def cancel(self) -> None:
        """`UpdateJobStatus` to Cancelled: no task starts any more; running ones finish."""
        with self._changed:
            if self.status in TERMINAL_STATUSES:
                return
            self._cancel_requested = True
            if not self._stopping:
                self._stopping = True
                if self.status == "Active":
                    self.status = "Cancelling"
            self._changed.notify_all()

    def result(self) -> JobResult:
        with self._changed:
            return JobResult(
                job_id=self.job_id,
                status=self.status,
                total_tasks=self.total_tasks,
                succeeded=self.succeeded,
                failed=self.failed,
                invocations=self.invocations,
                max_in_flight=self.max_in_flight,
                failure_reasons=tuple(self.failure_reasons),
                report_key=self.report_key,
                generated_manifest_key=self.generated_manifest_key,
                elapsed_seconds=(self._ended or time.monotonic()) - self._started,
            )

    def active_seconds(self) -> float:
        with self._changed:
            running = time.monotonic() - self._active_since if self._active_since else 0.0
            return self._active_seconds + running


def run_job(
    handler: Handler,
    operation: LambdaInvoke,
    manifest: Manifest,
    report: CompletionReport | None = None,
    settings: RunnerSettings | None = None,
    s3: Any = None,
) -> JobResult:
    """Run one job to its end on this thread: the pure-Python entry for tests and scripts."""
    return Job(handler, operation, manifest, report, settings, s3).run()


def handler_for(functions: Mapping[str, Handler] | Handler, function_arn: str) -> Handler:
    """The handler a job's FunctionArn names: one callable for every function, or a mapping
    by ARN or by function name."""
    if callable(functions):
        return functions
    name = LambdaInvoke(function_arn).function_name
    for candidate in (function_arn, name):
        if candidate in functions:
            return functions[candidate]
    raise InvalidJobRequest(f"no local handler for function {function_arn}")
