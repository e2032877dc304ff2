"""`s3-to-wistia backfill` and `s3-to-wistia reconcile` against moto's server and the Wistia
emulator: with --local the job runs the real backfill handler on the S3 Batch Operations
stand-in in the CLI's process; on AWS it is created through s3control's CreateJob (here the
stand-in, which takes the same request and checks it as S3 would). Outputs read as an
operator or a script reads them: text, and --json parsed."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest

from local_stack.aws import LocalAws, patched_environ
from local_stack.batch_control import BatchOperations
from local_stack.batch_operations import GeneratedManifest, LambdaInvoke, RunnerSettings, run_job
from local_stack.batch_report import CompletionReport, read_completion_report
from local_stack.events import s3_notification, upload
from local_stack.functions import ExecutionEnvironments
from local_stack.harness import (
    CapturedLogger,
    LambdaContext,
    budget_times,
    forget_budget,
    make_importer,
    record_of,
)
from local_stack.template import Stack
from s3_to_wistia.adapters.budget import DynamoDBSchedule
from s3_to_wistia.cli import resources
from s3_to_wistia.cli.main import main
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from wistia_emulator import WistiaEmulator

MEDIA = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4000
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-backfill"
ROLE_ARN = "arn:aws:iam::123456789012:role/s3-to-wistia-backfill"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("s3-to-wistia: error:")]


@pytest.fixture
def local_stack_variables(
    stack: Stack, wistia_emulator: WistiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """What --local reads: the functions' own variables and the stack's bucket names."""
    variables = {
        **stack.environment_of("BackfillFunction", wistia_emulator.url),
        "S3_TO_WISTIA_BUCKET": stack.bucket,
        "S3_TO_WISTIA_REPORTS_BUCKET": stack.resources["BackfillReportsBucket"],
        "BACKFILL_REQUESTS_PER_MINUTE": "60000",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    def run(*arguments: str) -> Run:
        capsys.readouterr()
        code = main(list(arguments))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run


def event_import(importer: Importer, log: CapturedLogger, bucket: str, key: str) -> None:
    """What the import function does with the object's S3 event."""
    event = s3_notification(upload(bucket, key, MEDIA))
    handle_event(event, LambdaContext(), importer, importer.dead_letters, log.logger)


def media_names(emulator: WistiaEmulator) -> Counter[str]:
    return Counter(media["name"] for media in emulator.medias())


# --- backfill --------------------------------------------------------------------------------


def test_backfill_local_imports_what_the_events_missed_once_and_reports_it(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    local_stack_variables: dict[str, str],
    importer: Importer,
    captured_log: CapturedLogger,
    cli: Any,
) -> None:
    # Given a bucket where one object came through its event and three never did
    event_import(importer, captured_log, stack.bucket, "in/seen.mp4")
    for key in ("in/a b.mp4", "in/c+d.mov", "in/empty.mp4"):
        upload(stack.bucket, key, b"" if "empty" in key else MEDIA)

    # When the operator backfills the bucket on the local stack
    run = cli("backfill", "--local", "--prefix", "in/", "--json")

    # Then the job ran the real function over every object, importing each once
    assert run.code == 0, run.err
    document = run.json()
    assert (document["listed"], document["already_done"], document["to_import"]) == (4, 1, 3)
    job = document["job"]
    assert job["local"] is True
    assert job["result"]["status"] == "Complete"
    assert job["result"]["results"] == {"submitted": 2, "skipped": 1, "already done": 1}
    assert job["report"].startswith(f"s3://{local_stack_variables['S3_TO_WISTIA_REPORTS_BUCKET']}")
    assert media_names(wistia_emulator) == {"seen.mp4": 1, "a b.mp4": 1, "c+d.mov": 1}
    assert all(media["low_priority"] for media in wistia_emulator.medias()[1:])
    assert "Running backfill job" in run.err


def test_backfill_text_output_says_what_ran_and_where_the_report_is(
    stack: Stack, local_stack_variables: dict[str, str], cli: Any
) -> None:
    upload(stack.bucket, "clip.mp4", MEDIA)

    run = cli("backfill", "--local", "--manifest", "csv")

    assert run.code == 0, run.out + "\n---\n" + run.err
    assert "ran on the local S3 Batch Operations stand-in: Complete, 1 succeeded" in run.out
    assert "objects:  1 listed, 0 already done, 1 to import" in run.out
    assert "results:  1 submitted" in run.out
    assert "/manifests/" in run.out  # the CSV this command wrote


def test_a_dry_run_lists_what_would_be_imported_and_what_is_done_and_starts_nothing(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    local_stack_variables: dict[str, str],
    importer: Importer,
    captured_log: CapturedLogger,
    cli: Any,
) -> None:
    event_import(importer, captured_log, stack.bucket, "done.mp4")
    upload(stack.bucket, "waiting.mp4", MEDIA)

    as_json = cli("backfill", "--local", "--dry-run", "--json")
    as_text = cli("backfill", "--local", "--dry-run")

    assert as_json.code == 0 and as_text.code == 0
    items = {item["key"]: item for item in as_json.json()["objects"]}
    assert items["done.mp4"]["state"] == "done"
    assert items["done.mp4"]["detail"].startswith("SUBMITTED: ")
    assert (items["waiting.mp4"]["state"], items["waiting.mp4"]["detail"]) == (
        "would import",
        "never seen",
    )
    assert as_json.json()["job"] is None
    assert "waiting.mp4\t" in as_text.out and "would import" in as_text.out
    assert "1 of 2 objects would be imported, 1 are done; nothing was started" in as_text.err
    assert media_names(wistia_emulator) == {"done.mp4": 1}


def test_suffixes_and_created_before_select_the_objects(
    stack: Stack, local_stack_variables: dict[str, str], cli: Any
) -> None:
    for key in ("a.mp4", "b.MOV", "c.mov", "d.txt"):
        upload(stack.bucket, key, MEDIA)

    chosen = cli(
        "backfill", "--local", "--dry-run", "--json", "--suffix", ".mp4", "--suffix", ".mov"
    )
    before = cli("backfill", "--local", "--json", "--created-before", "2001-01-01")

    assert sorted(item["key"] for item in chosen.json()["objects"]) == ["a.mp4", "c.mov"]
    assert (before.code, before.json()["listed"], before.json()["job"]) == (0, 0, None)


def test_a_job_over_the_threshold_needs_a_yes_and_nothing_starts_without_one(
    stack: Stack, wistia_emulator: WistiaEmulator, local_stack_variables: dict[str, str], cli: Any
) -> None:
    for n in range(3):
        upload(stack.bucket, f"{n}.mp4", MEDIA)

    refused = cli("backfill", "--local", "--confirm-above", "2")
    agreed = cli("backfill", "--local", "--confirm-above", "2", "--yes", "--json")

    assert refused.code == 2
    assert refused.error_lines == [
        "s3-to-wistia: error: The backfill would import 3 objects (over --confirm-above 2): "
        "pass --yes to go ahead without asking"
    ]
    assert agreed.code == 0 and agreed.json()["job"]["result"]["succeeded"] == 3
    assert len(wistia_emulator.medias()) == 3


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--created-before", "yesterday"], "--created-before takes an ISO 8601 date"),
        (["--suffix", ""], "--suffix needs a key ending"),
        (["--project", " "], "--project needs a project's hashed id"),
        (["--manifest", "inventory"], "Invalid value for '--manifest'"),
        (["--stack", "prod"], "--local and --stack name different stacks"),
    ],
)
def test_bad_usage_is_one_line_and_exit_code_2(
    local_stack_variables: dict[str, str], cli: Any, arguments: list[str], words: str
) -> None:
    run = cli("backfill", "--local", *arguments)

    assert run.code == 2
    [line] = run.error_lines
    assert words in line


def test_local_without_the_reports_bucket_says_which_variable_to_set(
    local_stack_variables: dict[str, str], monkeypatch: pytest.MonkeyPatch, cli: Any
) -> None:
    monkeypatch.delenv("S3_TO_WISTIA_REPORTS_BUCKET")
    upload(local_stack_variables["S3_TO_WISTIA_BUCKET"], "a.mp4", MEDIA)

    run = cli("backfill", "--local")

    assert run.code == 1
    assert "S3_TO_WISTIA_REPORTS_BUCKET" in run.error_lines[0]


# --- backfill on AWS (s3control's CreateJob, answered by the stand-in) ---------------------


@pytest.fixture
def s3control(
    stack: Stack, wistia_emulator: WistiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BatchOperations]:
    """S3 Batch Operations behind `target.client("s3control")`, running the real backfill
    handler: the CLI sends it exactly what it would send AWS."""
    environment = {
        **stack.environment_of("BackfillFunction", wistia_emulator.url),
        "BACKFILL_REQUESTS_PER_MINUTE": "60000",
    }
    with patched_environ(environment):
        operations = BatchOperations(
            {FUNCTION_ARN: ExecutionEnvironments("BackfillFunction", limit=2)},
            RunnerSettings(concurrency=2, retry_delay=0.05),
        )
        original = resources.Target.client

        def client(self: resources.Target, service: str, **config: Any) -> Any:
            return operations if service == "s3control" else original(self, service, **config)

        monkeypatch.setattr(resources.Target, "client", client)
        yield operations


def aws_flags(stack: Stack) -> list[str]:
    return [
        "--bucket", stack.bucket,
        "--table", stack.table_name,
        "--reports-bucket", stack.resources["BackfillReportsBucket"],
        "--backfill-function", FUNCTION_ARN,
        "--backfill-role", ROLE_ARN,
        "--backfill-rate", "600",
    ]  # fmt: skip


@pytest.mark.parametrize("manifest", ["generated", "csv"])
def test_on_aws_the_job_is_created_and_the_output_says_how_to_follow_it(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    s3control: BatchOperations,
    moto_server: LocalAws,
    cli: Any,
    manifest: str,
) -> None:
    for key in ("videos/a.mp4", "videos/b.mp4", "other/c.mp4"):
        upload(stack.bucket, key, MEDIA)

    run = cli(
        "backfill", *aws_flags(stack), "--prefix", "videos/", "--manifest", manifest, "--json"
    )

    assert run.code == 0, run.err
    document = run.json()
    job = document["job"]
    assert (document["to_import"], document["rate_per_minute"]) == (2, 600)
    assert document["estimated_seconds"] == 0  # 2 objects at 600 a minute
    assert job["follow"][0] == (
        f"aws s3control describe-job --account-id 123456789012 --job-id {job['id']} "
        "--region us-east-1"
    )
    assert job["report"] == (
        f"s3://{stack.resources['BackfillReportsBucket']}/reports/job-{job['id']}/"
    )
    # S3 (the stand-in) accepted the request as CreateJob's and ran it on the function
    descriptor = s3control.describe_job(AccountId="123456789012", JobId=job["id"])["Job"]
    assert descriptor["RoleArn"] == ROLE_ARN
    invoke = descriptor["Operation"]["LambdaInvoke"]
    assert (invoke["FunctionArn"], invoke["InvocationSchemaVersion"]) == (FUNCTION_ARN, "2.0")
    assert invoke["UserArguments"] == {"low_priority": "true"}
    result = s3control.wait(job["id"], timeout=60)
    assert (result.status, result.succeeded, result.failed) == ("Complete", 2, 0)
    assert media_names(wistia_emulator) == {"a.mp4": 1, "b.mp4": 1}
    if manifest == "csv":
        assert job["manifest"].startswith(
            f"s3://{stack.resources['BackfillReportsBucket']}/manifests/"
        )
    else:
        generator = descriptor["ManifestGenerator"]["S3JobManifestGenerator"]
        assert generator["Filter"] == {"KeyNameConstraint": {"MatchAnyPrefix": ["videos/"]}}
    rows = read_completion_report(
        boto3.client("s3"), stack.resources["BackfillReportsBucket"], result.report_key or ""
    ).rows
    assert {row.key for row in rows} == {"videos/a.mp4", "videos/b.mp4"}


def test_on_aws_the_text_output_names_the_job_time_and_how_to_follow_it(
    stack: Stack, s3control: BatchOperations, cli: Any
) -> None:
    upload(stack.bucket, "a.mp4", MEDIA)

    run = cli("backfill", *aws_flags(stack), "--project", "abc123def4")

    assert run.code == 0, run.err
    assert run.out.startswith("Backfill job ")
    assert "about 1 min at 600 Wistia requests a minute" in run.out
    assert "follow:   aws s3control describe-job --account-id 123456789012" in run.out
    assert "https://us-east-1.console.aws.amazon.com/s3/jobs/" in run.out
    assert f"s3-to-wistia reconcile --bucket {stack.bucket}" in run.out
    job_id = run.out.split()[2]
    descriptor = s3control.describe_job(AccountId="123456789012", JobId=job_id)["Job"]
    assert descriptor["Operation"]["LambdaInvoke"]["UserArguments"] == {
        "low_priority": "true",
        "project_id": "abc123def4",
    }
    s3control.wait(job_id, timeout=60)


# --- reconcile -------------------------------------------------------------------------------


def test_reconcile_puts_every_object_in_one_state_and_says_what_to_do(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    local_stack_variables: dict[str, str],
    importer: Importer,
    captured_log: CapturedLogger,
    cli: Any,
) -> None:
    # Given objects in each of the states an operator meets
    event_import(importer, captured_log, stack.bucket, "ready.mp4")
    event_import(importer, captured_log, stack.bucket, "also ready.mov")
    handle_event(
        s3_notification(upload(stack.bucket, "zero.mp4", b"")), LambdaContext(), importer,
        importer.dead_letters, captured_log.logger,
    )  # fmt: skip
    handle_event(
        s3_notification(
            upload(stack.bucket, "refused.mp4", MEDIA, metadata={"wistia-project-id": "nope"})
        ),
        LambdaContext(), importer, importer.dead_letters, captured_log.logger,
    )  # fmt: skip
    upload(stack.bucket, "never seen.mp4", MEDIA)
    assert wistia_emulator.wait_until_settled()

    run = cli("reconcile", "--local", "--json")
    text = cli("reconcile", "--local")

    # Then each is where it should be, and the exit code says something needs a look
    assert run.code == 1
    document = run.json()
    states = {item["key"]: item["state"] for item in document["items"]}
    assert states == {
        "ready.mp4": "ready",
        "also ready.mov": "ready",
        "zero.mp4": "skipped",
        "refused.mp4": "dead-lettered",
        "never seen.mp4": "never seen",
    }
    assert document["wistia_requests"] == 1  # both medias in one lookup
    assert document["counts"]["ready"] == 2
    assert "never seen\t1\t--fix (or s3-to-wistia backfill) imports them" in text.out
    assert "dead-lettered\t1\tfix the cause in the dead letter" in text.out
    lookups = [r for r in wistia_emulator.requests() if r["path"] == "/v1/medias.json"]
    assert lookups[-1]["query"]["per_page"] == "100"


def test_reconcile_books_its_lookups_on_the_accounts_budget_and_yields_to_a_pause(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    local_stack_variables: dict[str, str],
    importer: Importer,
    captured_log: CapturedLogger,
    cli: Any,
) -> None:
    # Given an imported object, and the account's request budget paused for two minutes
    # (a 429 with Retry-After another caller saw)
    event_import(importer, captured_log, stack.bucket, "a.mp4")
    assert wistia_emulator.wait_until_settled()
    DynamoDBSchedule(boto3.client("dynamodb"), stack.resources["RateBudgetTable"]).pause(
        time.time() + 120
    )
    asked = len(wistia_emulator.requests())

    # When reconcile runs
    paused = cli("reconcile", "--local", "--json")

    # Then it asks Wistia nothing (no slot for a minute), and says why
    assert len(wistia_emulator.requests()) == asked
    assert paused.json()["counts"]["not checked at Wistia"] == 1
    assert "request budget had no slot for reconcile" in paused.err

    # and once the pause is over (the budget's item gone here), its lookup is booked there
    forget_budget(stack)
    started = time.time()
    run = cli("reconcile", "--local", "--json")
    assert run.json()["counts"]["ready"] == 1
    assert budget_times(stack)["next_slot_at"] > started


def test_reconcile_with_a_token_that_cannot_read_says_so_and_checks_nothing_at_wistia(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    local_stack_variables: dict[str, str],
    importer: Importer,
    captured_log: CapturedLogger,
    cli: Any,
) -> None:
    event_import(importer, captured_log, stack.bucket, "a.mp4")
    wistia_emulator.set_tokens(rights={"test-token": "upload"})

    run = cli("reconcile", "--local", "--json")

    assert run.code == 1
    assert run.json()["counts"]["not checked at Wistia"] == 1
    assert "upload-only token?" in run.err


def test_reconcile_fix_imports_the_never_seen_and_again_what_wistia_failed_with_fresh_urls(
    stack: Stack,
    moto_server: LocalAws,
    local_stack_variables: dict[str, str],
    settings: Settings,
    captured_log: CapturedLogger,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> None:
    # Given an emulator slow to fetch, an import whose URL was dead by the time Wistia
    # fetched it (S3's clock jumped past its expiry), and an object never seen
    with WistiaEmulator(tokens=("test-token",), processing_delay=0.5) as slow:
        for name in ("WISTIA_UPLOAD_URL", "WISTIA_API_URL"):
            monkeypatch.setenv(name, slow.url)
        importer = make_importer(
            replace(settings, upload_url=slow.url, api_url=slow.url), captured_log.logger
        )
        event_import(importer, captured_log, stack.bucket, "expired url.mp4")
        moto_server.clock_skew = 8 * 3600
        try:
            assert slow.wait_until_settled()
        finally:
            moto_server.clock_skew = 0.0
        upload(stack.bucket, "never seen.mp4", MEDIA)
        [failed] = slow.medias()
        assert failed["status"] == "failed"

        before = cli("reconcile", "--local", "--json")
        fixed = cli("reconcile", "--local", "--fix", "--yes", "--json")
        assert slow.wait_until_settled()
        after = cli("reconcile", "--local", "--json")

    states = {item["key"]: item["state"] for item in before.json()["items"]}
    assert states == {"expired url.mp4": "failed at Wistia", "never seen.mp4": "never seen"}
    fix = fixed.json()["fix"]
    assert (fix["reimported"], fix["backfilled"]) == (1, 1)
    assert fix["job"]["result"]["results"] == {"submitted": 2}
    assert after.code == 0, after.out
    assert set(after.json()["counts"].items()) >= {("ready", 2)}
    # The object has a new media, imported from a fresh URL; the failed one is left as it was
    [item] = [i for i in after.json()["items"] if i["key"] == "expired url.mp4"]
    assert item["wistia_hashed_id"] != failed["hashed_id"]


def test_reconcile_fix_with_nothing_to_do_starts_nothing(
    stack: Stack,
    local_stack_variables: dict[str, str],
    importer: Importer,
    captured_log: CapturedLogger,
    cli: Any,
) -> None:
    event_import(importer, captured_log, stack.bucket, "a.mp4")
    time.sleep(0.2)

    run = cli("reconcile", "--local", "--fix", "--json")

    assert run.json()["fix"] == {"reimported": 0, "backfilled": 0, "job": None}
    record = record_of(stack.table_name, stack.bucket, "a.mp4", run.json()["items"][0]["version"])
    assert record is not None and record["status"] == "SUBMITTED"


def test_retry_failed_runs_an_earlier_jobs_failed_tasks_again_and_only_those(
    stack: Stack, wistia_emulator: WistiaEmulator, local_stack_variables: dict[str, str], cli: Any
) -> None:
    # Given a finished job whose report says one task failed (its invocation crashed)
    for key in ("ok.mp4", "crashed here.mp4"):
        upload(stack.bucket, key, MEDIA)

    def crashes_on_one(event: dict[str, Any], context: Any) -> dict[str, Any]:
        [task] = event["tasks"]
        if task["s3Key"] == "crashed%20here.mp4":
            raise SystemExit("the execution environment died")
        return {
            "invocationSchemaVersion": event["invocationSchemaVersion"],
            "treatMissingKeysAs": "PermanentFailure",
            "invocationId": event["invocationId"],
            "results": [{"taskId": task["taskId"], "resultCode": "Succeeded", "resultString": ""}],
        }

    reports = stack.resources["BackfillReportsBucket"]
    first = run_job(
        crashes_on_one,
        LambdaInvoke(FUNCTION_ARN, "2.0"),
        GeneratedManifest(stack.bucket),
        CompletionReport(reports, "reports"),
        RunnerSettings(concurrency=1),
    )
    assert (first.succeeded, first.failed) == (1, 1)

    # When the operator runs its failed tasks again
    run = cli("backfill", "--local", "--retry-failed", first.job_id, "--json")

    # Then only the crashed one ran, and it is imported
    assert run.code == 0, run.err
    document = run.json()
    assert (document["listed"], document["to_import"]) == (1, 1)
    assert document["job"]["result"]["results"] == {"submitted": 1}
    assert media_names(wistia_emulator) == {"crashed here.mp4": 1}


def test_retry_failed_of_a_job_without_a_report_says_so(
    local_stack_variables: dict[str, str], cli: Any
) -> None:
    run = cli("backfill", "--local", "--retry-failed", "no-such-job")

    assert run.code == 1
    assert "no completion report" in run.error_lines[0]
    assert cli("backfill", "--local", "--retry-failed", "j", "--prefix", "a/").code == 2
