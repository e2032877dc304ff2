"""Redrive never leaves a half-done change or a message it can do nothing about: a dead letter
whose object was deleted since is settled (recorded, then removed), and a redrive whose
invocation cannot start puts the record back as it was. Against moto's server and the
emulator, with the redrive policy and the adapters the operators' tool uses."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from local_stack.events import s3_notification, upload
from local_stack.harness import CapturedLogger, LambdaContext, record_of
from local_stack.template import Stack
from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
from s3_to_wistia.adapters.functions import LambdaInvoker
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from s3_to_wistia.redrive import DeadLetter, Invocation, Summary, redrive
from wistia_emulator import WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20


def deliver(event: Any, importer: Importer, log: CapturedLogger) -> Any:
    return handle_event(
        event, LambdaContext(timeout_seconds=30), importer, importer.dead_letters, log.logger
    )


def run(stack: Stack, invoke: Any) -> tuple[Summary, list[str]]:
    told: list[str] = []

    def report(letter: DeadLetter, outcome: str) -> None:
        told.append(outcome)

    summary = redrive(
        DeadLetterQueue(boto3.client("sqs"), stack.queue_url, wait_seconds=0),
        Records(boto3.client("dynamodb"), stack.table_name),
        invoke,
        report,
    )
    return summary, told


def waiting(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def failed_for_the_video_limit(
    stack: Stack, importer: Importer, log: CapturedLogger, wistia: WistiaEmulator, key: str
) -> Any:
    wistia.set_video_limit(0)
    obj = upload(stack.bucket, key, VIDEO)
    assert deliver(s3_notification(obj), importer, log)["results"][0]["status"] == "FAILED"
    wistia.set_video_limit(None)
    return obj


def test_a_dead_letter_whose_object_was_deleted_since_is_settled_and_removed(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given an object dead-lettered, then deleted from the bucket
    obj = failed_for_the_video_limit(
        stack, importer, captured_log, wistia_emulator, "settle/deleted since.mp4"
    )
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key=obj.key)

    def invoke(event: dict[str, Any]) -> Invocation:
        deliver(event, importer, captured_log)
        return Invocation(ok=True)

    # When the operator redrives the queue
    summary, told = run(stack, invoke)

    # Then the function records why (SKIPPED: deleted), the message leaves the queue, and the
    # run exits 0: nothing is left to do about it
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "SKIPPED"
    assert "deleted" in record["error"]
    assert summary.settled == 1 and summary.exit_code == 0
    assert any(line.startswith("settled: the function skipped it") for line in told)
    assert waiting(stack.queue_url) == 0
    assert len(wistia_emulator.medias()) == 0

    # And a later redrive has nothing to do
    again, _ = run(stack, invoke)
    assert (again.read, again.exit_code) == (0, 0)


def test_a_redrive_whose_invocation_cannot_start_leaves_the_record_failed_and_says_so(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given a dead letter, and a function name Lambda does not know (the invoke itself fails)
    obj = failed_for_the_video_limit(
        stack, importer, captured_log, wistia_emulator, "undo/no such function.mp4"
    )
    lambda_client = boto3.client(
        "lambda", config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5)
    )
    invoke = LambdaInvoker(lambda_client, "no-such-function-anywhere")

    # When the operator redrives
    summary, told = run(stack, invoke)

    # Then the record is FAILED again (not stuck PENDING_RETRY), the message stays, and the
    # run says in one line what happened and exits 1
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "FAILED"
    assert record["redrives"] == 1
    assert summary.exit_code == 1 and sum(summary.not_invoked.values()) == 1
    [line] = [line for line in told if "could not invoke the function" in line]
    assert "records left FAILED, message left in the queue" in line
    assert "Traceback" not in line
    assert waiting(stack.queue_url) == 1
