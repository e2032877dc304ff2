"""`s3-to-wistia import` against a deployment in moto's server and the Wistia emulator: one
object through the function's own code path, exactly once unless --again, every failure
ending as the function's do (a FAILED record and a dead letter that redrive accepts)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal

import boto3
import pytest

from integration.clitools import VIDEO, VIDEO_LIMIT, Deployment, Run, deploy, posts
from local_stack.events import upload
from local_stack.harness import drain, record_of
from local_stack.template import Stack
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.cli.local import LocalStack
from s3_to_wistia.contracts import DeadLetterMessage
from s3_to_wistia.redrive import read_message
from wistia_emulator import WistiaEmulator

CliRun = Callable[..., Run]


def test_an_object_is_imported_as_the_function_would_import_it(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    stack = deployment.stack
    obj = upload(stack.bucket, "launch/Product Demo (2026).mp4", VIDEO)

    run = run_cli("import", f"s3://{stack.bucket}/{obj.key}", *deployment.target, "--json")

    assert run.code == 0, run.err
    [media] = wistia_emulator.medias()
    assert media["name"] == "Product Demo (2026).mp4"  # named by the function's rule
    document = run.json()
    assert (document["outcome"], document["imported"]) == ("SUBMITTED", True)
    assert document["version"] == obj.version_id
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert (record["status"], record["wistia_hashed_id"]) == ("SUBMITTED", media["hashed_id"])
    assert document["record"]["wistia_hashed_id"] == media["hashed_id"]
    # The URL Wistia fetched was presigned and checked by the local S3; no signature shown
    assert "X-Amz-Signature" not in record["source_url"]
    assert "X-Amz-Signature=" not in run.out + run.err
    assert wistia_emulator.wait_until_settled()
    assert wistia_emulator.medias()[0]["status"] == "ready"


def test_a_second_import_is_refused_politely_and_calls_nobody(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    stack = deployment.stack
    obj = upload(stack.bucket, "twice.mp4", VIDEO)
    uri = f"s3://{stack.bucket}/{obj.key}"
    assert run_cli("import", uri, *deployment.target).code == 0
    [media] = wistia_emulator.medias()
    sent = len(posts(wistia_emulator.requests()))

    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None

    run = run_cli("import", uri, *deployment.target)

    assert run.code == 1
    assert run.error_lines == [
        f"s3-to-wistia: error: {uri} was already imported (SUBMITTED {record['submitted_at']}, "
        f"Wistia media {media['hashed_id']}): nothing done; --again imports it once more, "
        "and Wistia then holds it twice"
    ]
    assert len(posts(wistia_emulator.requests())) == sent
    assert len(wistia_emulator.medias()) == 1


def test_again_imports_once_more_and_keeps_the_earlier_media(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    stack = deployment.stack
    obj = upload(stack.bucket, "again.mp4", VIDEO)
    uri = f"s3://{stack.bucket}/{obj.key}"
    run_cli("import", uri, *deployment.target)
    [first] = wistia_emulator.medias()

    run = run_cli("import", uri, "--again", *deployment.target, "--json")

    assert run.code == 0, run.err
    medias = wistia_emulator.medias()
    assert len(medias) == 2
    second = medias[1]
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert record["wistia_hashed_id"] == second["hashed_id"]
    assert record["replaced_wistia_hashed_ids"] == [first["hashed_id"]]
    assert record["redrives"] == 1
    assert f"its earlier media {first['hashed_id']} stays in Wistia" in run.err
    assert run.json()["again"] is True


def test_again_reopens_only_the_record_as_it_was_read(deployment: Deployment) -> None:
    # Given two operators who read the same SUBMITTED record
    stack = deployment.stack
    obj = upload(stack.bucket, "race.mp4", VIDEO)
    records = Records(boto3.client("dynamodb"), stack.table_name)
    from local_stack.events import s3_notification
    from s3_to_wistia.events import parse_notification

    [ref] = parse_notification(s3_notification(obj)).objects
    item = {
        "object_uri": {"S": ref.uri},
        "object_version": {"S": ref.version},
        "bucket": {"S": ref.bucket},
        "object_key": {"S": ref.key},
        "status": {"S": "SUBMITTED"},
        "wistia_hashed_id": {"S": "abcdefghij"},
        "updated_at": {"S": "2026-01-01T00:00:00.000Z"},
    }
    boto3.client("dynamodb").put_item(TableName=stack.table_name, Item=item)
    seen = records.get(ref)
    assert seen is not None

    # When the first reopens it, the second's reopen (of the record it saw) is refused
    assert records.reopen_settled(ref, seen) is True
    assert records.reopen_settled(ref, seen) is False
    after = records.get(ref)
    assert after is not None
    assert (after.status, after.wistia_hashed_id) == ("PENDING_RETRY", None)
    assert after.replaced_wistia_hashed_ids == ["abcdefghij"]


def test_a_failure_ends_as_the_functions_do_and_again_imports_it_once_fixed(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    # Given an account at its video limit
    stack = deployment.stack
    wistia_emulator.set_video_limit(0)
    obj = upload(stack.bucket, "over/limit.mp4", VIDEO)
    uri = f"s3://{stack.bucket}/{obj.key}"

    failed = run_cli("import", uri, *deployment.target)

    # Then the record is FAILED and its dead letter redrives the object
    assert failed.code == 1
    assert failed.out.strip() == f"{uri}: FAILED: {VIDEO_LIMIT}"
    assert "fix the cause, then `s3-to-wistia redrive`" in failed.err
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "FAILED"
    [body] = drain(stack.queue_url)
    letter = DeadLetterMessage.from_body(body)
    assert letter is not None
    assert (letter.object_key, letter.reason, letter.http_status) == (obj.key, VIDEO_LIMIT, 400)
    redrivable = read_message({"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps(body)})
    assert redrivable.problem is None
    assert [o.version for o in redrivable.objects] == [obj.version_id]

    # And it is not tried again by accident
    refused = run_cli("import", uri, *deployment.target)
    assert refused.code == 1
    assert refused.error_lines == [
        f"s3-to-wistia: error: {uri} is FAILED ({VIDEO_LIMIT}): nothing done; fix the "
        "cause, then --again (or `s3-to-wistia redrive` its dead letter)"
    ]

    # But once the plan is upgraded, --again imports it
    wistia_emulator.set_video_limit(None)
    again = run_cli("import", uri, "--again", *deployment.target)
    assert again.code == 0, again.err
    assert [m["name"] for m in wistia_emulator.medias()] == ["limit.mp4"]
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert (record["status"], record.get("error")) == ("SUBMITTED", None)


def test_a_skipped_object_is_refused_until_again(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    stack = deployment.stack
    obj = upload(stack.bucket, "notes.txt", b"not media")
    uri = f"s3://{stack.bucket}/{obj.key}"

    first = run_cli("import", uri, *deployment.target)
    second = run_cli("import", uri, *deployment.target)
    again = run_cli("import", uri, "--again", *deployment.target)

    assert first.code == 1
    assert first.out.strip() == f"{uri}: SKIPPED: extension 'txt' is not in the import filter"
    assert second.error_lines == [
        f"s3-to-wistia: error: {uri} was SKIPPED (extension 'txt' is not in the import "
        "filter): nothing done; --again tries it once more (once what skipped it has changed)"
    ]
    # The same rule skips it again: the function's settings decide, not the command
    assert again.out.strip() == first.out.strip()
    assert wistia_emulator.requests() == []


def test_project_sends_the_import_to_that_project(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    project = wistia_emulator.create_project("Launch")
    obj = upload(deployment.stack.bucket, "p.mp4", VIDEO)

    run = run_cli(
        "import",
        f"s3://{deployment.stack.bucket}/{obj.key}",
        "--project",
        project["hashed_id"],
        *deployment.target,
    )

    assert run.code == 0, run.err
    assert [m["project_id"] for m in wistia_emulator.medias()] == [project["hashed_id"]]


def test_an_object_an_invocation_is_importing_is_left_to_it(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    stack = deployment.stack
    obj = upload(stack.bucket, "busy.mp4", VIDEO)
    boto3.client("dynamodb").put_item(
        TableName=stack.table_name,
        Item={
            "object_uri": {"S": f"s3://{stack.bucket}/{obj.key}"},
            "object_version": {"S": obj.version_id or ""},
            "status": {"S": "IN_PROGRESS"},
            "claim_id": {"S": "someone-else"},
            "lease_expires_at": {"N": str(Decimal(int(time.time()) + 300))},
        },
    )

    run = run_cli("import", f"s3://{stack.bucket}/{obj.key}", *deployment.target, "--json")

    assert run.code == 1
    assert run.json()["outcome"] == "settled meanwhile"
    assert "another invocation is importing it" in run.out
    assert posts(wistia_emulator.requests()) == []


@pytest.mark.parametrize("where", ["missing key", "missing bucket"])
def test_no_such_object_is_one_line_and_touches_nothing(
    run_cli: CliRun, deployment: Deployment, wistia_emulator: WistiaEmulator, where: str
) -> None:
    bucket = deployment.stack.bucket if where == "missing key" else "no-such-bucket-here"
    uri = f"s3://{bucket}/nowhere/clip.mp4"

    run = run_cli("import", uri, *deployment.target)

    assert run.code == 1
    assert run.error_lines == [
        f"s3-to-wistia: error: no object {uri} (or no bucket {bucket!r}): check the key; "
        "keys are case-sensitive"
    ]
    assert wistia_emulator.requests() == []
    scan = boto3.client("dynamodb").scan(TableName=deployment.stack.table_name)
    assert scan["Items"] == []


def test_an_unreadable_token_secret_stops_before_the_object_is_touched(
    run_cli: CliRun, stack: Stack, wistia_emulator: WistiaEmulator
) -> None:
    broken = deploy(stack, wistia_emulator.url, environment={"WISTIA_TOKEN_SECRET": "no-such"})
    obj = upload(stack.bucket, "secret.mp4", VIDEO)

    run = run_cli("import", f"s3://{stack.bucket}/{obj.key}", *broken.target)

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no Wistia token secret 'no-such' in us-east-1 (or it has no value "
        "yet): check --token-secret / --stack / --region"
    ]
    assert record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "") is None
    assert drain(stack.queue_url) == []


def test_no_such_function_is_one_line(run_cli: CliRun, deployment: Deployment) -> None:
    run = run_cli("import", f"s3://{deployment.stack.bucket}/x.mp4", "--function", "nope")

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no function 'nope' in us-east-1: check --function / --stack / "
        "--region"
    ]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("clip.mp4", "is not an s3://bucket/key URI"),
        ("s3://bucket-only", "names no object"),
        ("s3://bucket/folder/", "names no object"),
    ],
)
def test_a_uri_that_names_no_object_is_bad_usage(run_cli: CliRun, uri: str, message: str) -> None:
    run = run_cli("import", uri)

    assert run.code == 2
    [line] = run.err.splitlines()
    assert line.startswith("s3-to-wistia: error: ") and message in line


def test_local_imports_on_the_local_stack(
    run_cli: CliRun, stack: Stack, local_up: LocalStack, wistia_emulator: WistiaEmulator
) -> None:
    obj = upload(stack.bucket, "local/clip.mp4", VIDEO)

    run = run_cli("import", "--local", f"s3://{stack.bucket}/{obj.key}")

    assert run.code == 0, run.err
    assert [m["name"] for m in wistia_emulator.medias()] == ["clip.mp4"]
    assert "as ImportFunction (make local) would" in run.err
