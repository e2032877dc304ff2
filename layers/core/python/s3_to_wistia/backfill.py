"""One S3 Batch Operations task in, one import out, and S3's answer back.

S3 Batch Operations (`LambdaInvoke`) calls the backfill function synchronously with one task
per invocation (schema "1.0" or "2.0"). The task goes through the very Importer the event
path uses, so the claim on the import record keeps every object version to one Wistia import
whether an event or a backfill gets there first, and a refused import ends as it does there:
a dead letter, then a FAILED record.

The task names its object less precisely than an event does: its key comes URL-encoded (or,
from a hand-written manifest, perhaps not), and a manifest of an unversioned bucket carries no
version at all. So before anything else one HEAD finds the object (the decoded key first,
then the key as written) and its identity as the event path records it: the versionId, else
the ETag. The answer maps how the import ended to S3's result codes (CONTRACT.md):

| import ended                                     | resultCode         |
|--------------------------------------------------|--------------------|
| SUBMITTED, SKIPPED, or already handled earlier   | `Succeeded`        |
| FAILED (its dead letter sent first)              | `PermanentFailure` |
| must be retried (429, 5xx, claimed elsewhere...) | `TemporaryFailure` |

A retry never waits inside the invocation: the Importer makes one attempt (max_attempts 1)
and hands the object back, and S3 redrives the task later. `resultString` says why in words.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus, unquote, unquote_plus

from aws_lambda_powertools.utilities.data_classes import (
    S3BatchOperationEvent,
    S3BatchOperationResponse,
)
from aws_lambda_powertools.utilities.data_classes.s3_batch_operation_event import (
    S3BatchOperationResponseRecord,
)

from s3_to_wistia.config import ConfigError
from s3_to_wistia.errors import ObjectGone, PermanentError, RetryableError, UnsupportedEvent
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import ImportOptions, ObjectInfo, ObjectRef, Outcome, Status
from s3_to_wistia.ports import Log, ObjectStore
from s3_to_wistia.redact import redact
from s3_to_wistia.rules import bounded
from s3_to_wistia.times import iso_now

ResultCode = Literal["Succeeded", "TemporaryFailure", "PermanentFailure"]
SUCCEEDED: ResultCode = "Succeeded"
TEMPORARY_FAILURE: ResultCode = "TemporaryFailure"
PERMANENT_FAILURE: ResultCode = "PermanentFailure"
# One attempt per invocation: S3 redrives a TemporaryFailure itself, so a Lambda never sits
# out a Retry-After (nor holds one of the function's few concurrent slots while it does).
BACKFILL_MAX_ATTEMPTS = 1
USER_ARGUMENTS = ("project_id", "low_priority")
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
# S3 keeps a task's result string in the completion report; a person reads it there.
MAX_RESULT_CHARS = 1000
# What S3 Batch Operations writes for an unversioned object, or "null" for one stored
# before versioning was turned on: either way the record is keyed by the ETag.
NULL_VERSION = "null"


class InvalidJob(ValueError):
    """The job's userArguments cannot be used: every task of the job fails for good."""


@dataclass(frozen=True)
class BackfillSettings:
    """How the backfill function shares the account's Wistia budget, read once at cold start.

    Its instances together send at most `requests_per_minute` (BACKFILL_REQUESTS_PER_MINUTE,
    the backfill's share of WISTIA_REQUESTS_PER_MINUTE); `concurrency` (BACKFILL_CONCURRENCY)
    must be the function's reserved concurrency, the number of instances that share it."""

    requests_per_minute: int = 240
    concurrency: int = 3

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BackfillSettings:
        env = os.environ if env is None else env
        return cls(
            requests_per_minute=_positive(
                env, "BACKFILL_REQUESTS_PER_MINUTE", cls.requests_per_minute
            ),
            concurrency=_positive(env, "BACKFILL_CONCURRENCY", cls.concurrency),
        )

    @property
    def pace_interval(self) -> float:
        """Seconds between two Wistia calls of one instance."""
        return self.concurrency * 60.0 / self.requests_per_minute


@dataclass(frozen=True)
class Task:
    """The one task of an invocation, as S3 sent it."""

    task_id: str
    bucket: str
    raw_key: str  # as in the manifest: URL-encoded, or not
    version_id: str | None
    job_id: str
    schema: str
    user_arguments: Mapping[str, str]


def read_task(event: S3BatchOperationEvent) -> Task:
    """The invocation's task; UnsupportedEvent when the event is not one S3 sends."""
    try:
        schema = event.invocation_schema_version
        tasks = list(event.tasks)
        job = event.job
        if schema not in ("1.0", "2.0"):
            raise UnsupportedEvent(f"invocationSchemaVersion {schema!r} is not 1.0 or 2.0")
        if len(tasks) != 1:
            raise UnsupportedEvent(
                f"S3 Batch Operations sends one task, this event has {len(tasks)}"
            )
        [task] = tasks
        raw_key = task["s3Key"]
        bucket = task.s3_bucket
        if not isinstance(raw_key, str) or not raw_key or not bucket:
            raise UnsupportedEvent("the task names no bucket or no key")
        version = task.s3_version_id
        return Task(
            task_id=str(task.task_id),
            bucket=str(bucket),
            raw_key=raw_key,
            version_id=None if version in (None, "", NULL_VERSION) else str(version),
            job_id=str(job.get_id),
            schema=schema,
            user_arguments=dict(job.user_arguments) if schema == "2.0" else {},
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise UnsupportedEvent(
            f"not an S3 Batch Operations event (missing {error}): nothing imported"
        ) from None


def job_options(arguments: Mapping[str, str]) -> ImportOptions:
    """The job's userArguments: `project_id` (a Wistia project's hashed id) and
    `low_priority` (true unless the job says false: Wistia asks bulk imports to send it).
    An unknown name is refused rather than ignored: a typo must not import a whole bucket
    into the wrong project."""
    unknown = sorted(set(arguments) - set(USER_ARGUMENTS))
    if unknown:
        raise InvalidJob(
            f"unknown userArguments {', '.join(unknown)}: this function takes "
            f"{' and '.join(USER_ARGUMENTS)}"
        )
    project = str(arguments.get("project_id", "")).strip() or None
    word = str(arguments.get("low_priority", "true")).strip().lower()
    if word not in TRUE_WORDS | FALSE_WORDS:
        raise InvalidJob(f"userArguments low_priority must be true or false, not {word!r}")
    return ImportOptions(project_id=project, low_priority=word in TRUE_WORDS)


def key_candidates(raw_key: str) -> list[str]:
    """The keys a manifest's key may stand for, most likely first. S3 requires URL-encoded
    keys in a CSV manifest and encodes those it lists itself, so the decoded key comes
    first (a '+' there is a space, as S3 writes it); a manifest written by hand may hold
    keys as they are, so the key as written is tried last."""
    return list(dict.fromkeys([unquote_plus(raw_key), unquote(raw_key), raw_key]))


@dataclass(frozen=True)
class Identified:
    obj: ObjectRef
    # What the HEAD said, when it described this very version (the Importer need not ask).
    described: ObjectInfo | None = None


def identify(task: Task, storage: ObjectStore) -> Identified | None:
    """The object the task names, identified as an event identifies it (its versionId, else
    its ETag), or None when no such object is in the bucket any more. An object S3 will not
    even describe (an SSE-C object, a forbidden one) goes on to the Importer as named, which
    records why it cannot be imported."""
    candidates = key_candidates(task.raw_key)
    for key in candidates:
        named = ObjectRef(task.bucket, key, task.version_id, None, None, {})
        try:
            info = storage.head(named)
        except ObjectGone:
            continue
        except PermanentError:
            return Identified(_with_source(task, named))
        version = task.version_id or _real_version(info.version_id)
        etag = None if version else (info.etag or "").strip().strip('"') or None
        obj = ObjectRef(task.bucket, key, version, etag, info.size, {})
        # A HEAD by version asks what the Importer would ask; by key alone it does not pin
        # the bytes, so the Importer asks again, by ETag.
        return Identified(_with_source(task, obj), info if task.version_id else None)
    if task.version_id:
        # Its identity is known: the Importer records it SKIPPED, as for a late event.
        named = ObjectRef(task.bucket, candidates[0], task.version_id, None, None, {})
        return Identified(_with_source(task, named))
    return None


def _real_version(version_id: str | None) -> str | None:
    return None if version_id in (None, "", NULL_VERSION) else version_id


def _with_source(task: Task, obj: ObjectRef) -> ObjectRef:
    """The object with the S3 record a dead letter keeps to redrive it: shaped as S3's
    notifications are, so `make redrive` hands it to the import function like any event."""
    described: dict[str, Any] = {"key": quote_plus(obj.key, safe="/")}
    if obj.size is not None:
        described["size"] = obj.size
    if obj.version_id:
        described["versionId"] = obj.version_id
    if obj.etag:
        described["eTag"] = obj.etag
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Backfill",
        "eventTime": iso_now(),
        "s3": {
            "bucket": {"name": obj.bucket, "arn": f"arn:aws:s3:::{obj.bucket}"},
            "object": described,
        },
        "backfill": {"jobId": task.job_id, "taskId": task.task_id, "schema": task.schema},
    }
    return ObjectRef(obj.bucket, obj.key, obj.version_id, obj.etag, obj.size, record)


def task_result(outcome: Outcome) -> tuple[ResultCode, str]:
    """S3's result code for how the import ended, and why in words."""
    status = outcome.status
    if outcome.earlier:
        why = "; its dead letter says why" if status is Status.FAILED else ""
        return SUCCEEDED, f"already handled earlier ({status.value}): not imported again{why}"
    if status is Status.SUBMITTED:
        return SUCCEEDED, f"SUBMITTED: imported into Wistia as media {outcome.detail}"
    if status is Status.SKIPPED:
        return SUCCEEDED, f"SKIPPED: {outcome.detail}"
    if status is Status.FAILED:
        return PERMANENT_FAILURE, f"FAILED: {outcome.detail}; sent to the dead-letter queue"
    return TEMPORARY_FAILURE, f"not finished ({outcome.detail}); S3 retries the task"


def run_task(task: Task, importer: Importer, log: Log, deadline: float) -> tuple[ResultCode, str]:
    """Import the task's object; the result code and string to answer S3 with."""
    try:
        options = job_options(task.user_arguments)
        found = identify(task, importer.storage)
        if found is None:
            log.info("object no longer in the bucket: nothing to import")
            return SUCCEEDED, (
                "SKIPPED: no such object in the bucket (deleted since the manifest was made?)"
            )
        obj = found.obj
        log.thread_safe_append_keys(object_key=obj.key, object_version=obj.version)
        return task_result(importer.import_object(obj, deadline, options, found.described))
    except InvalidJob as error:
        log.error("the job's userArguments are unusable", reason=str(error))
        return PERMANENT_FAILURE, str(error)
    except RetryableError as error:
        log.warning("backfill task will be retried", reason=str(error))
        return TEMPORARY_FAILURE, f"will be retried: {error}"


def handle_batch_event(
    event: S3BatchOperationEvent, context: Any, importer: Importer, log: Log
) -> dict[str, Any]:
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    try:
        task = read_task(event)
    except UnsupportedEvent as error:
        log.error("unsupported event: nothing imported", reason=str(error))
        raise
    log.thread_safe_append_keys(
        bucket=task.bucket, s3_key=task.raw_key, job_id=task.job_id, task_id=task.task_id
    )
    try:
        code, message = run_task(task, importer, log, deadline)
    finally:
        log.thread_safe_clear_keys()
    response = S3BatchOperationResponse(
        event.invocation_schema_version, event.invocation_id, PERMANENT_FAILURE
    )
    response.add_result(
        S3BatchOperationResponseRecord(
            task.task_id, code, bounded(redact(message), MAX_RESULT_CHARS)
        )
    )
    answer: dict[str, Any] = response.asdict()
    return answer


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value
