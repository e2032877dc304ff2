"""The S3 Batch Operations stand-in against moto's server: manifests read and generated from
real buckets, the handler invoked with S3's events, answers judged, redrives, the failure
threshold, the concurrency bound, and the completion report read back from S3."""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.batch_control import BatchOperations, NoSuchJob
from local_stack.batch_manifest import (
    ManifestOutput,
    ObjectFilter,
    encode_key,
    read_generated_manifest,
)
from local_stack.batch_operations import (
    CsvManifest,
    GeneratedManifest,
    InvalidJobRequest,
    JobResult,
    LambdaInvoke,
    Manifest,
    RunnerSettings,
    run_job,
)
from local_stack.batch_report import (
    CompletionReport,
    ReportContents,
    ReportScope,
    read_completion_report,
)
from local_stack.template import Stack

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:backfill"
FAST = RunnerSettings(concurrency=4, retry_delay=0.01, max_retry_delay=0.05)
AWKWARD_KEYS = [
    "with space.mp4",
    "plus+sign.mp4",
    "percent%41literal.mp4",
    "100% done.mp4",
    "ünïcødé/日本語 ファイル.mp4",
    "folder/sub folder/a+b (1).mp4",
    "emoji 🎬 & more=.mp4",
]

Decision = Callable[[str, int], tuple[str, str]]


def succeed(key: str, attempt: int) -> tuple[str, str]:
    return "Succeeded", f"imported {key}"


@dataclass
class Recorder:
    """A handler written as the backfill function will be: it reads the one task, decodes the
    key defensively and answers one result, chosen by `decide(key, attempt)`."""

    decide: Decision = succeed
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    most_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        [task] = event["tasks"]
        key = unquote_plus(task["s3Key"])
        with self._lock:
            self.events.append(event)
            self.attempts[task["taskId"]] += 1
            attempt = self.attempts[task["taskId"]]
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            code, message = self.decide(key, attempt)
        finally:
            with self._lock:
                self.in_flight -= 1
        return reply(event, code, message)

    def keys(self) -> set[str]:
        return {unquote_plus(event["tasks"][0]["s3Key"]) for event in self.events}


def reply(event: dict[str, Any], code: str = "Succeeded", message: str = "done") -> dict[str, Any]:
    return {
        "invocationSchemaVersion": event["invocationSchemaVersion"],
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [
            {"taskId": event["tasks"][0]["taskId"], "resultCode": code, "resultString": message}
        ],
    }


def plain_bucket() -> str:
    """An unversioned bucket of its own (the stack's bucket is versioned)."""
    name = f"plain-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def put_objects(bucket: str, keys: Iterable[str], body: bytes = b"video") -> dict[str, str | None]:
    """Upload every key; each key's version id (None in an unversioned bucket)."""
    s3 = boto3.client("s3")
    return {key: s3.put_object(Bucket=bucket, Key=key, Body=body).get("VersionId") for key in keys}


def put_manifest(
    bucket: str, rows: Iterable[Iterable[str]], fields: tuple[str, ...] = ("Bucket", "Key")
) -> CsvManifest:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    key = f"manifests/{uuid.uuid4().hex}.csv"
    answer = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=text.getvalue().encode())
    return CsvManifest(bucket, key, fields, etag=answer["ETag"].strip('"'))


def run(
    handler: Any,
    manifest: Manifest,
    report_bucket: str | None = None,
    schema: str = "1.0",
    settings: RunnerSettings = FAST,
    scope: ReportScope = "AllTasks",
    user_arguments: dict[str, str] | None = None,
) -> JobResult:
    report = CompletionReport(report_bucket, "reports", scope) if report_bucket else None
    operation = LambdaInvoke(FUNCTION, schema, user_arguments or {})
    return run_job(handler, operation, manifest, report, settings)


def report_of(bucket: str, result: JobResult) -> ReportContents:
    assert result.report_key is not None
    return read_completion_report(boto3.client("s3"), bucket, result.report_key)


# --- manifests and events ---


def test_a_csv_manifest_invokes_the_handler_once_per_object_with_the_1_0_event(
    moto_server: LocalAws,
) -> None:
    # Given an unversioned bucket and a CSV manifest naming its objects, keys URL-encoded
    bucket = plain_bucket()
    keys = ["plain.mp4", "with space.mp4", "plus+sign.mp4"]
    put_objects(bucket, keys)
    manifest = put_manifest(bucket, [(bucket, encode_key(key)) for key in keys])
    handler = Recorder()

    # When a schema 1.0 job runs it
    result = run(handler, manifest, bucket)

    # Then each object was one invocation with S3's 1.0 event, the key as the manifest has it
    assert (result.status, result.total_tasks, result.succeeded, result.failed) == (
        "Complete", 3, 3, 0,
    )  # fmt: skip
    assert sorted(handler.keys()) == sorted(keys)
    for event in handler.events:
        assert list(event) == ["invocationSchemaVersion", "invocationId", "job", "tasks"]
        assert event["invocationSchemaVersion"] == "1.0"
        assert event["job"] == {"id": result.job_id}
        [task] = event["tasks"]
        assert set(task) == {"taskId", "s3Key", "s3VersionId", "s3BucketArn"}
        assert task["s3BucketArn"] == f"arn:aws:s3:::{bucket}"
        assert task["s3VersionId"] is None
    assert {event["tasks"][0]["s3Key"] for event in handler.events} == {
        "plain.mp4", "with%20space.mp4", "plus%2Bsign.mp4",
    }  # fmt: skip
    assert len({event["invocationId"] for event in handler.events}) == 3
    assert len({event["tasks"][0]["taskId"] for event in handler.events}) == 3


def test_a_2_0_job_names_the_bucket_and_passes_its_user_arguments(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    put_objects(bucket, ["a.mp4"])
    manifest = put_manifest(bucket, [(bucket, "a.mp4")])
    handler = Recorder()

    run(
        handler,
        manifest,
        schema="2.0",
        user_arguments={"project_id": "abc", "low_priority": "true"},
    )

    [event] = handler.events
    assert event["invocationSchemaVersion"] == "2.0"
    assert event["job"]["userArguments"] == {"project_id": "abc", "low_priority": "true"}
    [task] = event["tasks"]
    assert set(task) == {"taskId", "s3Key", "s3VersionId", "s3Bucket"}
    assert task["s3Bucket"] == bucket


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
@pytest.mark.parametrize("manifest_kind", ["csv", "generated"])
def test_awkward_keys_arrive_url_encoded_and_decode_to_the_stored_object(
    moto_server: LocalAws, schema: str, manifest_kind: str
) -> None:
    # Given objects whose keys have spaces, '+', '%', unicode and punctuation
    bucket = plain_bucket()
    put_objects(bucket, AWKWARD_KEYS)
    manifest: Manifest
    if manifest_kind == "csv":
        manifest = put_manifest(bucket, [(bucket, encode_key(key)) for key in AWKWARD_KEYS])
    else:
        manifest = GeneratedManifest(bucket, ObjectFilter(suffixes=(".mp4",)))
    s3 = boto3.client("s3")

    def fetch(key: str, attempt: int) -> tuple[str, str]:
        # The decoded key must name the stored object: S3 would answer 404 otherwise.
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return "Succeeded", f"{len(body)} bytes"

    # When a job runs over them
    result = run(Recorder(fetch), manifest, bucket, schema=schema)

    # Then every task found its object, and the report names each key as S3 encodes it
    assert (result.status, result.succeeded, result.failed) == ("Complete", len(AWKWARD_KEYS), 0)
    rows = report_of(bucket, result).rows
    assert sorted(row.key for row in rows) == sorted(encode_key(key) for key in AWKWARD_KEYS)
    assert {row.result_message for row in rows} == {"5 bytes"}


GENERATOR_CASES = {
    "prefixes": (ObjectFilter(prefixes=("videos/", "clips/")), {"videos/a.mp4", "videos/b.MP4",
                 "videos/empty.mp4", "videos/cold.mp4", "clips/c.mov"}),
    "suffixes are case-sensitive": (ObjectFilter(suffixes=(".mp4",)), {"videos/a.mp4",
                                    "videos/empty.mp4", "videos/cold.mp4", "top.mp4"}),
    "substring": (ObjectFilter(substrings=("cold", "empty")), {"videos/empty.mp4",
                  "videos/cold.mp4"}),
    "sizes": (ObjectFilter(size_greater_than=0, size_less_than=10), {"videos/a.mp4",
              "videos/b.MP4", "videos/cold.mp4", "clips/c.mov", "photos/d.jpg", "top.mp4"}),
    "storage class": (ObjectFilter(storage_classes=("STANDARD_IA",)), {"videos/cold.mp4"}),
    "all at once": (ObjectFilter(prefixes=("videos/",), suffixes=(".mp4",), size_greater_than=0,
                    storage_classes=("STANDARD",)), {"videos/a.mp4"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(GENERATOR_CASES))
def test_a_generated_manifest_holds_the_objects_its_filters_pass(
    moto_server: LocalAws, case: str
) -> None:
    # Given a bucket of videos, clips, photos, an empty object and an infrequent-access one
    bucket = plain_bucket()
    s3 = boto3.client("s3")
    for key in ("videos/a.mp4", "videos/b.MP4", "clips/c.mov", "photos/d.jpg", "top.mp4"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"12345")
    s3.put_object(Bucket=bucket, Key="videos/empty.mp4", Body=b"")
    s3.put_object(Bucket=bucket, Key="videos/cold.mp4", Body=b"123", StorageClass="STANDARD_IA")
    object_filter, expected = GENERATOR_CASES[case]
    handler = Recorder()

    # When S3 generates the manifest with the filters
    result = run(handler, GeneratedManifest(bucket, object_filter))

    # Then exactly the matching objects were invoked
    assert handler.keys() == expected
    assert result.total_tasks == len(expected)


def test_created_after_and_before_split_the_bucket_by_upload_time(moto_server: LocalAws) -> None:
    # Given objects uploaded in one second and more uploaded in a later second
    bucket = plain_bucket()
    s3 = boto3.client("s3")
    put_objects(bucket, ["early/1.mp4", "early/2.mp4"])
    early = s3.head_object(Bucket=bucket, Key="early/1.mp4")["LastModified"]
    while datetime.now(early.tzinfo).replace(microsecond=0) <= early:
        time.sleep(0.05)  # moto stamps objects to the second
    put_objects(bucket, ["late/3.mp4"])
    late = s3.head_object(Bucket=bucket, Key="late/3.mp4")["LastModified"]
    before, after = Recorder(), Recorder()

    # When one job takes what was created before the late upload, another what came after
    run(before, GeneratedManifest(bucket, ObjectFilter(created_before=late)))
    run(after, GeneratedManifest(bucket, ObjectFilter(created_after=early)))

    # Then the two jobs split the bucket
    assert before.keys() == {"early/1.mp4", "early/2.mp4"}
    assert after.keys() == {"late/3.mp4"}


def test_a_generated_manifest_is_written_to_s3_when_asked(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    put_objects(bucket, AWKWARD_KEYS)
    output = ManifestOutput(bucket, "generated")
    manifest = GeneratedManifest(bucket, ObjectFilter(), output)

    result = run(Recorder(), manifest)

    assert result.generated_manifest_key == f"generated/job-{result.job_id}/manifest.json"
    entries = read_generated_manifest(boto3.client("s3"), bucket, result.generated_manifest_key)
    assert sorted(entry.key for entry in entries) == sorted(map(encode_key, AWKWARD_KEYS))
    assert {entry.bucket for entry in entries} == {bucket}


@pytest.mark.parametrize("versioned", [False, True])
def test_a_generated_manifest_reads_every_page_of_the_listing(
    stack: Stack, versioned: bool
) -> None:
    # Given more objects than one listing page holds (pages of 10 here, S3's are 1,000)
    bucket = stack.bucket if versioned else plain_bucket()
    keys = [f"bulk/{n:03d}.mp4" for n in range(25)]
    put_objects(bucket, keys)
    handler = Recorder()
    settings = RunnerSettings(concurrency=4, listing_page_size=10)

    # When a generated manifest lists the bucket
    result = run(
        handler, GeneratedManifest(bucket, ObjectFilter(prefixes=("bulk/",))), settings=settings
    )

    # Then every page was read, each object invoked once
    assert result.total_tasks == 25
    assert sorted(handler.keys()) == keys
    assert len(handler.events) == 25


def test_a_versioned_bucket_gives_each_task_its_version(stack: Stack) -> None:
    # Given a versioned bucket: one key written twice, one deleted, one written once
    s3 = boto3.client("s3")
    bucket = stack.bucket
    first = s3.put_object(Bucket=bucket, Key="twice.mp4", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="twice.mp4", Body=b"22")["VersionId"]
    once = s3.put_object(Bucket=bucket, Key="once mp4.mp4", Body=b"1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="deleted.mp4", Body=b"1")
    s3.delete_object(Bucket=bucket, Key="deleted.mp4")
    generated = Recorder()

    # When S3 generates a manifest of the bucket
    run(generated, GeneratedManifest(bucket))

    # Then each current object is one task naming its current version; the deleted one is gone
    tasks = {unquote_plus(e["tasks"][0]["s3Key"]): e["tasks"][0] for e in generated.events}
    assert set(tasks) == {"twice.mp4", "once mp4.mp4"}
    assert tasks["twice.mp4"]["s3VersionId"] == second
    assert tasks["once mp4.mp4"]["s3VersionId"] == once

    # And a CSV manifest naming an older version passes that version on and reports it
    manifest = put_manifest(bucket, [(bucket, "twice.mp4", first)], ("Bucket", "Key", "VersionId"))
    listed = Recorder()
    result = run(listed, manifest, bucket)
    assert listed.events[0]["tasks"][0]["s3VersionId"] == first
    [row] = report_of(bucket, result).rows
    assert (row.key, row.version_id, row.task_status) == ("twice.mp4", first, "succeeded")


# --- answers, retries, failures ---


def test_a_temporary_failure_is_redriven_until_it_succeeds(moto_server: LocalAws) -> None:
    # Given a handler that answers TemporaryFailure twice for one object (Wistia said 429)
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "steady.mp4"), (bucket, "flaky.mp4")])

    def decide(key: str, attempt: int) -> tuple[str, str]:
        if key == "flaky.mp4" and attempt <= 2:
            return "TemporaryFailure", f"Wistia answered 429 (attempt {attempt})"
        return "Succeeded", f"imported on attempt {attempt}"

    handler = Recorder(decide)

    # When the job runs
    result = run(handler, manifest, bucket)

    # Then the flaky task was invoked three times, as one task with three invocations
    assert (result.status, result.succeeded, result.failed, result.invocations) == (
        "Complete", 2, 0, 4,
    )  # fmt: skip
    flaky = [e for e in handler.events if e["tasks"][0]["s3Key"] == "flaky.mp4"]
    assert len(flaky) == 3
    assert len({e["tasks"][0]["taskId"] for e in flaky}) == 1
    assert len({e["invocationId"] for e in flaky}) == 3
    rows = report_of(bucket, result).by_key()
    assert rows["flaky.mp4"].result_message == "imported on attempt 3"
    assert rows["flaky.mp4"].task_status == "succeeded"


def test_a_task_that_stays_temporarily_failed_fails_with_its_last_message(
    moto_server: LocalAws,
) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "always-429.mp4")])
    handler = Recorder(lambda key, attempt: ("TemporaryFailure", f"429, attempt {attempt}"))
    settings = RunnerSettings(temporary_failure_attempts=3, retry_delay=0.01)

    result = run(handler, manifest, bucket, settings=settings)

    assert len(handler.events) == 3
    assert (result.status, result.succeeded, result.failed) == ("Complete", 0, 1)
    [row] = report_of(bucket, result).rows
    assert (row.task_status, row.error_code, row.result_message) == (
        "failed", "TemporaryFailure", "429, attempt 3",
    )  # fmt: skip


def test_permanent_failures_are_final_and_a_failed_only_report_lists_just_them(
    moto_server: LocalAws,
) -> None:
    bucket = plain_bucket()
    keys = [f"video-{n}.mp4" for n in range(5)]
    manifest = put_manifest(bucket, [(bucket, key) for key in keys])
    refused = {"video-1.mp4", "video-3.mp4"}

    def decide(key: str, attempt: int) -> tuple[str, str]:
        if key in refused:
            return "PermanentFailure", "This account has exceeded its video limit."
        return "Succeeded", "SUBMITTED"

    handler = Recorder(decide)
    result = run(handler, manifest, bucket, scope="FailedTasksOnly")

    assert len(handler.events) == 5  # no retries
    assert (result.status, result.succeeded, result.failed) == ("Complete", 3, 2)
    report = report_of(bucket, result)
    assert [entry["TaskExecutionStatus"] for entry in report.manifest["Results"]] == ["failed"]
    assert {row.key for row in report.rows} == refused
    assert {(row.error_code, row.result_message) for row in report.rows} == {
        ("PermanentFailure", "This account has exceeded its video limit.")
    }


def test_the_job_fails_once_1000_tasks_ran_and_over_half_failed(moto_server: LocalAws) -> None:
    # Given a manifest of 3,000 objects and a handler that refuses every one
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, f"k{n}.mp4") for n in range(3000)])
    handler = Recorder(lambda key, attempt: ("PermanentFailure", "refused"))

    # When the job runs
    result = run(handler, manifest, bucket)

    # Then it stopped after the 1,000th failure (plus those already in flight) and failed
    finished = result.succeeded + result.failed
    assert result.status == "Failed"
    assert 1000 <= finished <= 1000 + FAST.concurrency - 1
    assert len(handler.events) == finished
    assert result.total_tasks == 3000
    [reason] = result.failure_reasons
    assert reason.code == "TaskFailureThresholdExceeded"
    assert len(report_of(bucket, result).rows) == finished


def test_a_job_under_the_threshold_completes_however_many_tasks_fail(
    moto_server: LocalAws,
) -> None:
    bucket = plain_bucket()
    # 999 tasks all failing: too few for the threshold
    few = put_manifest(bucket, [(bucket, f"k{n}") for n in range(999)])
    all_fail = run(Recorder(lambda key, attempt: ("PermanentFailure", "no")), few)
    assert (all_fail.status, all_fail.failed) == ("Complete", 999)
    # 2,000 tasks, 40% failing: under half
    many = put_manifest(bucket, [(bucket, f"k{n}") for n in range(2000)])

    def two_in_five(key: str, attempt: int) -> tuple[str, str]:
        return ("PermanentFailure", "no") if int(key[1:]) % 5 < 2 else ("Succeeded", "ok")

    some_fail = run(Recorder(two_in_five), many)
    assert (some_fail.status, some_fail.succeeded, some_fail.failed) == ("Complete", 1200, 800)


def test_no_more_invocations_run_at_once_than_the_concurrency(moto_server: LocalAws) -> None:
    # Given a job of 60 tasks, four at a time, some of them redriven
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, f"k{n}") for n in range(60)])
    together = threading.Barrier(4, timeout=10)

    def decide(key: str, attempt: int) -> tuple[str, str]:
        if key in ("k0", "k1", "k2", "k3") and attempt == 1:
            together.wait()  # the first four are running at the same time, or this breaks
        time.sleep(0.002)
        if int(key[1:]) % 7 == 0 and attempt < 3:
            return "TemporaryFailure", "busy"
        return "Succeeded", "ok"

    handler = Recorder(decide)

    # When it runs
    result = run(handler, manifest, settings=RunnerSettings(concurrency=4, retry_delay=0.005))

    # Then four ran together, and never a fifth
    assert handler.most_in_flight == 4
    assert result.max_in_flight == 4
    assert (result.status, result.succeeded) == ("Complete", 60)


class Unserialisable:
    pass


MALFORMED: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "no answer": (lambda event: None, "expected a JSON object, got null"),
    "another invocation": (
        lambda event: {**reply(event), "invocationId": "elsewhere"}, "invocationId is"),
    "another schema": (
        lambda event: {**reply(event), "invocationSchemaVersion": "2.0"},
        "invocationSchemaVersion is"),
    "two results": (
        lambda event: {**reply(event), "results": reply(event)["results"] * 2},
        "2 results for one task"),
    "another task": (
        lambda event: {**reply(event), "results": [{**reply(event)["results"][0],
                                                     "taskId": "other"}]},
        "result for task 'other'"),
    "unknown code": (lambda event: reply(event, "Done"), "resultCode 'Done'"),
    "no results": (
        lambda event: {k: v for k, v in reply(event).items() if k != "results"},
        "results must be a list"),
    "not JSON": (
        lambda event: {**reply(event), "extra": Unserialisable()},
        '"errorType":"Runtime.MarshalError"'),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_answer_fails_the_task_and_is_not_retried(
    moto_server: LocalAws, case: str
) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "a.mp4")])
    build, complaint = MALFORMED[case]
    calls: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        calls.append(event)
        return build(event)

    result = run(handler, manifest, bucket)

    assert len(calls) == 1
    assert (result.status, result.succeeded, result.failed) == ("Complete", 0, 1)
    [row] = report_of(bucket, result).rows
    assert (row.task_status, row.error_code) == ("failed", "PermanentFailure")
    assert complaint in row.result_message


@pytest.mark.parametrize(
    ("treat_missing_keys_as", "status"),
    [("Succeeded", "succeeded"), ("PermanentFailure", "failed"), (None, "failed")],
)
def test_an_answer_without_a_result_takes_treat_missing_keys_as(
    moto_server: LocalAws, treat_missing_keys_as: str | None, status: str
) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "a.mp4")])

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        answer = {**reply(event), "results": []}
        answer["treatMissingKeysAs"] = treat_missing_keys_as
        return answer

    result = run(handler, manifest, bucket)

    [row] = report_of(bucket, result).rows
    assert row.task_status == status


def test_a_handler_exception_is_a_function_error_and_not_retried(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "a.mp4"), (bucket, "b.mp4")])
    calls = Counter[str]()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        key = event["tasks"][0]["s3Key"]
        calls[key] += 1
        if key == "a.mp4":
            raise RuntimeError("Wistia is unreachable")
        return reply(event)

    result = run(handler, manifest, bucket)

    assert calls == {"a.mp4": 1, "b.mp4": 1}
    assert (result.status, result.succeeded, result.failed) == ("Complete", 1, 1)
    row = report_of(bucket, result).by_key()["a.mp4"]
    assert (row.task_status, row.error_code) == ("failed", "PermanentFailure")
    assert row.result_message == (
        'Lambda returned function error: {"errorMessage":"Wistia is unreachable",'
        '"errorType":"RuntimeError"}'
    )


def test_an_invocation_longer_than_the_function_timeout_fails_its_task(
    moto_server: LocalAws,
) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "slow.mp4")])
    seen: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(context.get_remaining_time_in_millis())
        time.sleep(0.3)
        return reply(event)

    result = run(handler, manifest, bucket, settings=RunnerSettings(function_timeout=0.1))

    [row] = report_of(bucket, result).rows
    assert row.task_status == "failed"
    assert "Task timed out after 0.10 seconds" in row.result_message
    assert 0 < seen[0] <= 100  # the context told the handler how long it had


# --- the report and the job's own failures ---


def test_the_completion_report_is_laid_out_as_s3_lays_it_out(moto_server: LocalAws) -> None:
    # Given a job with successes and failures and a report under a prefix
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "ok.mp4"), (bucket, "bad%20one.mp4")])

    def decide(key: str, attempt: int) -> tuple[str, str]:
        return ("Succeeded", "SUBMITTED") if key == "ok.mp4" else ("PermanentFailure", 'a "quote"')

    # When it runs
    result = run(Recorder(decide), manifest, bucket)

    # Then manifest.json lists one file per outcome, with their checksums, under job-<id>/
    s3 = boto3.client("s3")
    assert result.report_key == f"reports/job-{result.job_id}/manifest.json"
    manifest_json = json.loads(s3.get_object(Bucket=bucket, Key=result.report_key)["Body"].read())
    assert manifest_json["Format"] == "Report_CSV_20180820"
    assert manifest_json["ReportSchema"] == (
        "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
    )
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", manifest_json["ReportCreationDate"]
    )
    files = {entry["TaskExecutionStatus"]: entry for entry in manifest_json["Results"]}
    assert set(files) == {"succeeded", "failed"}
    texts = {}
    for status, entry in files.items():
        assert entry["Bucket"] == bucket
        assert re.fullmatch(
            rf"reports/job-{result.job_id}/results/[0-9a-f]{{40}}\.csv", entry["Key"]
        )
        body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        assert entry["MD5Checksum"] == hashlib.md5(body, usedforsecurity=False).hexdigest()
        texts[status] = body.decode()
    # And the rows read as S3's example rows do: no header, HTTP status then error code
    assert texts["succeeded"] == f"{bucket},ok.mp4,,succeeded,200,,SUBMITTED\n"
    assert texts["failed"] == (
        f'{bucket},bad%20one.mp4,,failed,200,PermanentFailure,"a ""quote"""\n'
    )


def test_a_manifest_s3_cannot_use_fails_the_job_before_any_task(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    good = put_manifest(bucket, [(bucket, "a.mp4")])
    mixed = put_manifest(
        bucket, [(bucket, "a", "v1"), (bucket, "b", "")], ("Bucket", "Key", "VersionId")
    )
    cases: dict[str, tuple[Manifest, str]] = {
        "another ETag": (CsvManifest(bucket, good.key, etag="0" * 32), "ETag is"),
        "no such object": (CsvManifest(bucket, "manifests/missing.csv"), "NoSuchKey"),
        "a version missing": (mixed, "row 2 has no VersionId"),
        "no such bucket": (GeneratedManifest("no-such-bucket-here"), "NoSuchBucket"),
    }
    for name, (manifest, complaint) in cases.items():
        handler = Recorder()
        result = run(handler, manifest, bucket)
        assert result.status == "Failed", name
        assert handler.events == [], name
        [reason] = result.failure_reasons
        assert reason.code == "ManifestError"
        assert complaint in reason.reason, name
        assert result.report_key is None, name


def test_an_empty_manifest_completes_without_a_report(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    result = run(Recorder(), put_manifest(bucket, []), bucket)
    assert (result.status, result.total_tasks, result.report_key) == ("Complete", 0, None)


# --- the s3control-shaped API ---


def test_create_describe_and_wait_as_with_boto3s_s3control(moto_server: LocalAws) -> None:
    # Given the stand-in with the backfill function registered under its ARN
    bucket = plain_bucket()
    put_objects(bucket, ["videos/a.mp4", "videos/b c.mp4", "other.txt"])
    handler = Recorder()
    operations = BatchOperations({FUNCTION: handler}, FAST)

    # When a job is created as s3control creates one, with a generated manifest kept in S3
    job_id = operations.create_job(
        AccountId="123456789012",
        ConfirmationRequired=False,
        Operation={"LambdaInvoke": {"FunctionArn": FUNCTION, "InvocationSchemaVersion": "2.0",
                                    "UserArguments": {"low_priority": "true"}}},
        Report={"Bucket": f"arn:aws:s3:::{bucket}", "Format": "Report_CSV_20180820",
                "Enabled": True, "Prefix": "reports", "ReportScope": "AllTasks"},
        ManifestGenerator={"S3JobManifestGenerator": {
            "SourceBucket": f"arn:aws:s3:::{bucket}",
            "EnableManifestOutput": True,
            "ManifestOutputLocation": {"Bucket": f"arn:aws:s3:::{bucket}",
                                       "ManifestPrefix": "manifests",
                                       "ManifestFormat": "S3InventoryReport_CSV_20211130"},
            "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["videos/"]}},
        }},
        Priority=10,
        RoleArn="arn:aws:iam::123456789012:role/backfill-batch",
        ClientRequestToken=str(uuid.uuid4()),
    )["JobId"]  # fmt: skip
    result = operations.wait(job_id, timeout=30)

    # Then describe_job tells what s3control's would
    job = operations.describe_job(AccountId="123456789012", JobId=job_id)["Job"]
    assert job["JobId"] == job_id
    assert job["Status"] == "Complete" == result.status
    assert job["ProgressSummary"]["TotalNumberOfTasks"] == 2
    assert job["ProgressSummary"]["NumberOfTasksSucceeded"] == 2
    assert job["ProgressSummary"]["NumberOfTasksFailed"] == 0
    assert job["Operation"]["LambdaInvoke"]["FunctionArn"] == FUNCTION
    assert job["RoleArn"] == "arn:aws:iam::123456789012:role/backfill-batch"
    assert job["TerminationDate"] >= job["CreationTime"]
    location = job["GeneratedManifestDescriptor"]["Location"]
    assert location["ObjectArn"] == f"arn:aws:s3:::{bucket}/manifests/job-{job_id}/manifest.json"
    assert handler.keys() == {"videos/a.mp4", "videos/b c.mp4"}
    assert {e["job"]["userArguments"]["low_priority"] for e in handler.events} == {"true"}
    with pytest.raises(NoSuchJob):
        operations.describe_job(JobId="no-such-job")


def test_a_job_that_needs_confirmation_waits_suspended_until_ready(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, "a.mp4")])
    handler = Recorder()
    operations = BatchOperations(handler, FAST)

    job_id = operations.create_job(
        Operation={"LambdaInvoke": {"FunctionArn": FUNCTION}},
        Manifest={"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                  "Location": {"ObjectArn": f"arn:aws:s3:::{bucket}/{manifest.key}",
                               "ETag": manifest.etag}},
        Report={"Enabled": False},
        Priority=1,
        RoleArn="arn:aws:iam::123456789012:role/r",
        ConfirmationRequired=True,
    )["JobId"]  # fmt: skip
    deadline = time.monotonic() + 10
    while operations.describe_job(JobId=job_id)["Job"]["Status"] != "Suspended":
        assert time.monotonic() < deadline, "the job never reached Suspended"
        time.sleep(0.01)
    assert handler.events == []

    operations.update_job_status(JobId=job_id, RequestedJobStatus="Ready")
    result = operations.wait(job_id, timeout=30)

    assert (result.status, result.succeeded, len(handler.events)) == ("Complete", 1, 1)
    assert result.report_key is None


def test_a_cancelled_job_starts_no_more_tasks(moto_server: LocalAws) -> None:
    bucket = plain_bucket()
    manifest = put_manifest(bucket, [(bucket, f"k{n}") for n in range(100)])
    started = threading.Semaphore(0)
    release = threading.Event()

    def decide(key: str, attempt: int) -> tuple[str, str]:
        started.release()
        release.wait(10)
        return "Succeeded", "ok"

    handler = Recorder(decide)
    operations = BatchOperations(handler, FAST)
    job_id = operations.submit(LambdaInvoke(FUNCTION), manifest, CompletionReport(bucket))
    for _ in range(FAST.concurrency):
        assert started.acquire(timeout=10)

    operations.update_job_status(JobId=job_id, RequestedJobStatus="Cancelled")
    release.set()
    result = operations.wait(job_id, timeout=30)

    assert result.status == "Cancelled"
    assert result.succeeded == len(handler.events) == FAST.concurrency
    assert len(report_of(bucket, result).rows) == FAST.concurrency


def test_create_job_refuses_a_function_it_has_no_handler_for(moto_server: LocalAws) -> None:
    operations = BatchOperations({"another-function": Recorder()}, FAST)
    with pytest.raises(InvalidJobRequest, match="no local handler"):
        operations.submit(LambdaInvoke(FUNCTION), GeneratedManifest("any-bucket"))


def test_listing_a_versioned_bucket_leaves_every_object_readable(moto_server: LocalAws) -> None:
    # Given a versioned bucket with a key overwritten, one deleted and one body over moto's
    # in-memory size (kept in a file)
    s3 = boto3.client("s3")
    bucket = f"versions-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    large = b"\x01" * (6 * 1024 * 1024)
    for n in range(12):
        s3.put_object(Bucket=bucket, Key=f"k{n:02d}", Body=large if n == 0 else b"old")
    s3.put_object(Bucket=bucket, Key="k01", Body=b"new")
    s3.delete_object(Bucket=bucket, Key="k02")

    # When the bucket is listed by version, page after page, again and again
    for _ in range(3):
        pages = list(
            s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, PaginationConfig={"PageSize": 5}
            )
        )
        gc.collect()

    # Then the listing marks one latest version per key, and every body is still there
    versions = [v for page in pages for v in page.get("Versions", [])]
    latest = {v["Key"] for v in versions if v["IsLatest"]}
    assert latest == {f"k{n:02d}" for n in range(12)} - {"k02"}
    assert len(versions) == 13
    assert s3.get_object(Bucket=bucket, Key="k00")["Body"].read() == large
    assert s3.get_object(Bucket=bucket, Key="k01")["Body"].read() == b"new"
    assert s3.get_object(Bucket=bucket, Key="k05")["Body"].read() == b"old"
