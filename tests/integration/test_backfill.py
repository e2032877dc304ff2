"""The backfill function, loaded as Lambda loads it (template.yaml's BackfillFunction), run by
the S3 Batch Operations stand-in against moto's S3, DynamoDB and SQS and the Wistia emulator:
what was in the bucket before the function was wired ends up in Wistia once, whichever of an
event and a backfill gets to an object first, and every task's line in the completion report
says how its object ended."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
import pytest

from local_stack.aws import patched_environ
from local_stack.batch_manifest import ObjectFilter, encode_key
from local_stack.batch_operations import (
    CsvManifest,
    GeneratedManifest,
    JobResult,
    LambdaInvoke,
    Manifest,
    RunnerSettings,
    run_job,
)
from local_stack.batch_report import CompletionReport, ReportRow, read_completion_report
from local_stack.events import s3_notification, upload
from local_stack.functions import ExecutionEnvironments
from local_stack.harness import CapturedLogger, LambdaContext, drain, record_of
from local_stack.template import Stack
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.errors import UnsupportedEvent
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import Status
from wistia_emulator import Fault, WistiaEmulator

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-backfill"
FAST = RunnerSettings(concurrency=3, retry_delay=0.05, max_retry_delay=0.2, function_timeout=20)
MEDIA = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000
AWKWARD = ["with space.mp4", "plus+sign.mov", "100% done.mp4", "ünïcødé/日本語 ファイル.mp4"]


@pytest.fixture
def environments(stack: Stack, wistia_emulator: WistiaEmulator) -> Iterator[ExecutionEnvironments]:
    """The backfill function's execution environments, configured as the template configures
    them (its pace opened up: the emulator has no rate limit here)."""
    environment = {
        **stack.environment_of("BackfillFunction", wistia_emulator.url),
        "BACKFILL_REQUESTS_PER_MINUTE": "60000",
    }
    with patched_environ(environment):
        yield ExecutionEnvironments("BackfillFunction", limit=FAST.concurrency)


def reports_bucket(stack: Stack) -> str:
    return stack.resources["BackfillReportsBucket"]


def run(
    handler: Any,
    stack: Stack,
    manifest: Manifest,
    schema: str = "2.0",
    arguments: dict[str, str] | None = None,
    settings: RunnerSettings = FAST,
) -> tuple[JobResult, dict[str, ReportRow]]:
    """One job to its end; its result and its completion report's rows by decoded key."""
    operation = LambdaInvoke(FUNCTION, schema, arguments or {})
    report = CompletionReport(reports_bucket(stack), "reports")
    result = run_job(handler, operation, manifest, report, settings)
    assert result.report_key is not None
    rows = read_completion_report(boto3.client("s3"), reports_bucket(stack), result.report_key)
    return result, {unquote(row.key): row for row in rows.rows}


def csv_manifest(stack: Stack, bucket: str, keys: list[str]) -> CsvManifest:
    """A CSV manifest in the reports bucket, keys URL-encoded as S3 asks."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows((bucket, encode_key(key)) for key in keys)
    key = f"manifests/{uuid.uuid4().hex}.csv"
    answer = boto3.client("s3").put_object(
        Bucket=reports_bucket(stack), Key=key, Body=text.getvalue().encode()
    )
    return CsvManifest(reports_bucket(stack), key, etag=answer["ETag"].strip('"'))


def plain_bucket() -> str:
    name = f"unversioned-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def medias_by_name(emulator: WistiaEmulator) -> Counter[str]:
    return Counter(media["name"] for media in emulator.medias() if not media["deleted"])


def test_a_backfill_imports_what_was_in_the_bucket_once_each_at_low_priority(
    stack: Stack, wistia_emulator: WistiaEmulator, environments: ExecutionEnvironments
) -> None:
    # Given objects that were in the bucket before any function was wired to it
    for key in AWKWARD:
        upload(stack.bucket, key, MEDIA)
    upload(stack.bucket, "empty.mp4", b"")
    upload(stack.bucket, "notes.txt", b"not media")

    # When S3 Batch Operations runs a job over the whole bucket (a manifest it generates)
    result, rows = run(environments, stack, GeneratedManifest(stack.bucket))

    # Then every task succeeded, the media are in Wistia once each, as low-priority imports
    failed = {key: row.result_message for key, row in rows.items() if row.error_code}
    assert (result.status, result.succeeded, result.failed) == ("Complete", 6, 0), failed
    assert wistia_emulator.wait_until_settled()
    medias = {m["name"]: m for m in wistia_emulator.medias()}
    assert set(medias) == {
        "with space.mp4",
        "plus+sign.mov",
        "100% done.mp4",
        "日本語 ファイル.mp4",
    }
    assert all(m["status"] == "ready" and m["low_priority"] for m in medias.values())
    # and each line of the report says how its object ended, the record agreeing
    for key in AWKWARD:
        record = record_of(stack.table_name, stack.bucket, key, rows[key].version_id)
        assert record is not None and record["status"] == "SUBMITTED"
        assert rows[key].result_message == (
            f"SUBMITTED: imported into Wistia as media {record['wistia_hashed_id']}"
        )
    assert rows["empty.mp4"].result_message == "SKIPPED: zero-byte object"
    assert rows["notes.txt"].result_message == (
        "SKIPPED: extension 'txt' is not in the import filter"
    )
    # The environments were reused between tasks, as Lambda reuses warm ones
    assert environments.cold_starts <= FAST.concurrency


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_an_object_an_event_imported_is_not_imported_again_by_a_backfill(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    environments: ExecutionEnvironments,
    importer: Importer,
    captured_log: CapturedLogger,
    schema: str,
) -> None:
    # Given an unversioned bucket (records keyed by ETag) and one object its event imported
    bucket = plain_bucket()
    first = upload(bucket, "both ways/event first.mp4", MEDIA)
    upload(bucket, "both ways/only in the bucket.mp4", MEDIA)
    event = s3_notification(first)
    handle_event(event, LambdaContext(), importer, importer.dead_letters, captured_log.logger)

    # When a backfill job names both
    keys = ["both ways/event first.mp4", "both ways/only in the bucket.mp4"]
    result, rows = run(environments, stack, csv_manifest(stack, bucket, keys), schema=schema)

    # Then the one the event imported is already handled; only the other reaches Wistia
    assert (result.succeeded, result.failed) == (2, 0)
    assert rows["both ways/event first.mp4"].result_message == (
        "already handled earlier (SUBMITTED): not imported again"
    )
    assert rows["both ways/only in the bucket.mp4"].result_message.startswith("SUBMITTED: ")
    assert medias_by_name(wistia_emulator) == {"event first.mp4": 1, "only in the bucket.mp4": 1}


def test_an_object_a_backfill_imported_is_not_imported_again_by_its_late_event(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    environments: ExecutionEnvironments,
    importer: Importer,
    captured_log: CapturedLogger,
) -> None:
    # Given an object a backfill imported (versioned bucket: records keyed by versionId)
    uploaded = upload(stack.bucket, "late event.mp4", MEDIA)
    result, _ = run(environments, stack, GeneratedManifest(stack.bucket))
    assert result.succeeded == 1

    # When its S3 event arrives after all (the bucket was wired meanwhile, or S3 was late)
    answer = handle_event(
        s3_notification(uploaded), LambdaContext(), importer, importer.dead_letters,
        captured_log.logger,
    )  # fmt: skip

    # Then the event finds it done: still one media
    assert answer["results"][0]["status"] == "SUBMITTED"
    assert "duplicate delivery ignored" in captured_log.text()
    assert medias_by_name(wistia_emulator) == {"late event.mp4": 1}


def test_a_refused_object_is_a_permanent_failure_with_its_dead_letter_and_failed_record(
    stack: Stack, wistia_emulator: WistiaEmulator, environments: ExecutionEnvironments
) -> None:
    # Given an object that names a Wistia project that does not exist (Wistia answers 400)
    upload(stack.bucket, "refused.mp4", MEDIA, metadata={"wistia-project-id": "nosuchproj"})
    upload(stack.bucket, "fine.mp4", MEDIA)

    result, rows = run(environments, stack, GeneratedManifest(stack.bucket))

    assert (result.status, result.succeeded, result.failed) == ("Complete", 1, 1)
    row = rows["refused.mp4"]
    assert (row.task_status, row.error_code) == ("failed", "PermanentFailure")
    assert row.result_message.startswith("FAILED: ")
    assert row.result_message.endswith("; sent to the dead-letter queue")
    [letter] = drain(stack.queue_url)
    assert (letter["object_key"], letter["http_status"]) == ("refused.mp4", 400)
    # The dead letter holds an S3 record: `make redrive` replays it through the import function
    assert letter["source_event"]["eventSource"] == "aws:s3"
    assert letter["source_event"]["s3"]["object"]["versionId"] == row.version_id
    record = record_of(stack.table_name, stack.bucket, "refused.mp4", row.version_id)
    assert record is not None and record["status"] == "FAILED"


def test_429s_are_temporary_failures_that_s3_redrives_until_imported_once(
    stack: Stack, wistia_emulator: WistiaEmulator, environments: ExecutionEnvironments
) -> None:
    # Given Wistia's rate limit answering the first imports 429 with a Retry-After (which
    # pauses the stack's request budget for every caller: 2 s here, inside the backfill's
    # share of the booking horizon, so the redriven tasks wait for its end)
    keys = [f"throttled/{n}.mp4" for n in range(4)]
    for key in keys:
        upload(stack.bucket, key, MEDIA)
    wistia_emulator.add_fault(Fault(kind="rate_limit", count=3, retry_after=2))

    result, rows = run(environments, stack, GeneratedManifest(stack.bucket))

    # Then no invocation waited the 429 out with a retry of its own: S3 redrove the three
    # TemporaryFailures, and each was imported once
    assert (result.status, result.succeeded, result.failed) == ("Complete", 4, 0)
    assert result.invocations == 4 + 3
    assert all(row.result_message.startswith("SUBMITTED: ") for row in rows.values())
    statuses = Counter(r["status"] for r in wistia_emulator.requests() if r["method"] == "POST")
    assert statuses == {200: 4, 429: 3}
    assert medias_by_name(wistia_emulator) == {f"{n}.mp4": 1 for n in range(4)}


def test_an_environment_killed_after_wistia_answered_loses_nothing_and_duplicates_nothing(
    stack: Stack, wistia_emulator: WistiaEmulator
) -> None:
    # Given an execution environment that dies after Wistia accepted the import, before the
    # record says so (the worst moment: Wistia has the media, the record does not)
    killed: list[str] = []

    def dies_once_after_wistia_answered(module: ModuleType) -> None:
        records = module.function.importer.records
        finish = records.finish

        def finish_or_die(obj: Any, claim: Any, status: Status, fields: Any) -> None:
            if status is Status.SUBMITTED and not killed:
                killed.append(obj.key)
                raise SystemExit("the execution environment died")
            finish(obj, claim, status, fields)

        records.finish = finish_or_die

    upload(stack.bucket, "killed mid-flight.mp4", MEDIA)
    settings = RunnerSettings(concurrency=1, retry_delay=0.05, function_timeout=1.0)
    environment = stack.environment_of("BackfillFunction", wistia_emulator.url)
    with patched_environ(environment):
        environments = ExecutionEnvironments(
            "BackfillFunction", limit=1, on_cold_start=dies_once_after_wistia_answered
        )
        # When the job runs, the task fails with the crash (S3 does not retry function errors)
        first, rows = run(environments, stack, GeneratedManifest(stack.bucket), settings=settings)
        assert (first.failed, killed) == (1, ["killed mid-flight.mp4"])
        assert "Lambda returned function error" in rows["killed mid-flight.mp4"].result_message
        assert environments.crashes == 1
        # and, once the dead invocation's claim has lapsed, the operator runs it again
        time.sleep(settings.function_timeout + 2.5)
        again, rows = run(environments, stack, GeneratedManifest(stack.bucket), settings=settings)

    # Then the retry finds the media the dead invocation created instead of importing twice
    assert (again.succeeded, again.failed) == (1, 0)
    [media] = wistia_emulator.medias()
    assert rows["killed mid-flight.mp4"].result_message == (
        f"SUBMITTED: imported into Wistia as media {media['hashed_id']}"
    )
    version = rows["killed mid-flight.mp4"].version_id
    record = record_of(stack.table_name, stack.bucket, "killed mid-flight.mp4", version)
    assert record is not None
    assert (record["wistia_hashed_id"], record["recovered_lost_answer"]) == (
        media["hashed_id"],
        True,
    )


def test_the_jobs_project_reaches_wistia_and_bad_user_arguments_import_nothing(
    stack: Stack, wistia_emulator: WistiaEmulator, environments: ExecutionEnvironments
) -> None:
    project = wistia_emulator.create_project("Archive")["hashed_id"]
    upload(stack.bucket, "archive/a.mp4", MEDIA)
    upload(stack.bucket, "other/b.mp4", MEDIA)

    _, bad = run(
        environments,
        stack,
        GeneratedManifest(stack.bucket, ObjectFilter(prefixes=("archive/",))),
        arguments={"project": project},
    )
    good, _ = run(
        environments,
        stack,
        GeneratedManifest(stack.bucket, ObjectFilter(prefixes=("archive/",))),
        arguments={"project_id": project, "low_priority": "false"},
    )

    assert bad["archive/a.mp4"].error_code == "PermanentFailure"
    assert "unknown userArguments project" in bad["archive/a.mp4"].result_message
    assert good.succeeded == 1
    [media] = wistia_emulator.medias()
    assert (media["name"], media["project_id"], media["low_priority"]) == ("a.mp4", project, False)


def test_an_event_that_is_not_from_s3_batch_operations_fails_and_imports_nothing(
    stack: Stack, wistia_emulator: WistiaEmulator, environments: ExecutionEnvironments
) -> None:
    upload(stack.bucket, "a.mp4", MEDIA)

    with pytest.raises(UnsupportedEvent, match="not an S3 Batch Operations event"):
        environments(s3_notification(upload(stack.bucket, "b.mp4", MEDIA)), LambdaContext())

    assert wistia_emulator.medias() == []
