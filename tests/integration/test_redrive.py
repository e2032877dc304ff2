"""Redrive (`s3-to-wistia redrive`, `make redrive`) against moto's server and the Wistia
emulator: dead letters of every shape the queue holds are resubmitted once their cause is
fixed, and a message leaves the queue only when its object is imported (or a fresh dead
letter replaces it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from local_stack.delivery import AsyncInvoker
from local_stack.delivery import Invocation as LambdaInvocation
from local_stack.events import eventbridge_event, s3_notification, sqs_batch, upload
from local_stack.harness import CapturedLogger, LambdaContext, drain, record_of
from local_stack.template import Stack
from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.cli.main import main
from s3_to_wistia.cli.redrive import run
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from s3_to_wistia.redrive import Invocation, Invoker, Summary
from wistia_emulator import Fault, WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20
VIDEO_LIMIT = "This account has exceeded its video limit. Please upgrade to upload more videos."


def in_process(importer: Importer, log: CapturedLogger) -> Invoker:
    """The function invoked synchronously, as redrive's LambdaInvoker does in AWS."""

    def invoke(event: dict[str, Any]) -> Invocation:
        try:
            handle_event(
                event,
                LambdaContext(timeout_seconds=30),
                importer,
                importer.dead_letters,
                log.logger,
            )
        except Exception as error:
            return Invocation(ok=False, error=f"{type(error).__name__}: {error}")
        return Invocation(ok=True)

    return invoke


def never_invoked(event: dict[str, Any]) -> Invocation:
    raise AssertionError(f"the function should not have been invoked with {event}")


def run_redrive(stack: Stack, invoke: Invoker | None = None, **options: Any) -> tuple[Summary, str]:
    lines: list[str] = []
    queue = DeadLetterQueue(boto3.client("sqs"), stack.queue_url, wait_seconds=0)
    records = Records(boto3.client("dynamodb"), stack.table_name)
    summary = run(queue, records, invoke, lines.append, **options)
    return summary, "\n".join(lines)


def visible(queue_url: str) -> int:
    """Messages in the queue that the next reader would get."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", "a message is held"
    return int(attributes["ApproximateNumberOfMessages"])


def deliver(event: Any, importer: Importer, log: CapturedLogger) -> Any:
    return handle_event(
        event, LambdaContext(timeout_seconds=30), importer, importer.dead_letters, log.logger
    )


def status_of(stack: Stack, key: str, version: str | None) -> dict[str, Any]:
    record = record_of(stack.table_name, stack.bucket, key, version or "")
    assert record is not None
    return record


def test_a_video_limit_failure_is_redriven_once_the_limit_is_raised(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given an upload dead-lettered because the account was at its video limit
    wistia_emulator.set_video_limit(0)
    obj = upload(stack.bucket, "launch/Over the limit.mp4", VIDEO)
    assert deliver(s3_notification(obj), importer, captured_log)["results"][0]["status"] == (
        "FAILED"
    )
    assert visible(stack.queue_url) == 1

    # When the account is upgraded, and a dry run looks at the queue
    wistia_emulator.set_video_limit(None)
    summary, output = run_redrive(stack, dry_run=True)

    # Then it says what it would redrive and why, and changes nothing
    assert (summary.redriven, summary.read, summary.exit_code) == (1, 1, 0)
    assert summary.would_redrive == {VIDEO_LIMIT: 1}
    assert f"s3://{stack.bucket}/launch/Over the limit.mp4" in output
    assert "would redrive" in output
    assert "Dry run, nothing changed" in output
    assert visible(stack.queue_url) == 1
    assert status_of(stack, obj.key, obj.version_id)["status"] == "FAILED"
    assert len(wistia_emulator.requests()) == 1

    # And the redrive itself submits it and empties the queue
    summary, output = run_redrive(stack, in_process(importer, captured_log))

    assert (summary.redriven, summary.submitted, summary.exit_code) == (1, 1, 0)
    assert not summary.still_failing
    assert "SUBMITTED: message deleted" in output
    assert visible(stack.queue_url) == 0
    record = status_of(stack, obj.key, obj.version_id)
    assert record["status"] == "SUBMITTED"
    assert record["redrives"] == 1
    [media] = wistia_emulator.medias()
    assert media["name"] == "Over the limit.mp4"
    assert record["wistia_hashed_id"] == media["hashed_id"]


def test_an_event_whose_lambda_retries_ran_out_is_redriven_from_the_on_failure_record(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia is down for longer than Lambda's three attempts at an S3 event
    importer = importer_for(settings, max_attempts=1)
    wistia_emulator.add_fault(Fault(kind="status", status=503))
    obj = upload(stack.bucket, "outage/Keynote.mov", VIDEO)
    results: list[LambdaInvocation] = []
    finished = threading.Event()

    def landed(invocation: LambdaInvocation) -> None:
        results.append(invocation)
        finished.set()

    lambda_ = AsyncInvoker(
        lambda event, context: handle_event(
            event, context, importer, importer.dead_letters, captured_log.logger
        ),
        failure_queue_url=stack.queue_url,
        timeout_seconds=10,
        on_result=landed,
        retry_delays=(0.01, 0.01),
        instances=1,
    ).start()
    try:
        lambda_.invoke(s3_notification(obj))
        assert finished.wait(20)
    finally:
        lambda_.stop()
    [failed] = results
    assert (failed.succeeded, failed.attempts) == (False, 3)
    assert status_of(stack, obj.key, obj.version_id)["status"] == "PENDING_RETRY"

    # When Wistia is back and the queue is redriven
    wistia_emulator.clear_faults()
    summary, output = run_redrive(stack, in_process(importer, captured_log))

    # Then Lambda's on-failure record was understood, resubmitted, and deleted
    assert "Lambda on-failure (RetriesExhausted)" in output
    assert (summary.redriven, summary.submitted) == (1, 1)
    assert visible(stack.queue_url) == 0
    assert status_of(stack, obj.key, obj.version_id)["status"] == "SUBMITTED"
    assert [m["name"] for m in wistia_emulator.medias()] == ["Keynote.mov"]


def test_an_object_that_still_fails_stays_in_the_queue_and_redrives_do_not_multiply_it(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given a dead-lettered upload whose cause is not fixed
    wistia_emulator.set_video_limit(0)
    obj = upload(stack.bucket, "still/over.mp4", VIDEO)
    event = s3_notification(obj)
    deliver(event, importer, captured_log)
    invoke = in_process(importer, captured_log)

    # When it is redriven, twice
    first, output = run_redrive(stack, invoke)
    assert visible(stack.queue_url) == 1
    second, _ = run_redrive(stack, invoke)

    # Then each run reports it still failing, with Wistia's reason, and exits non-zero
    for summary in (first, second):
        assert (summary.redriven, summary.submitted, summary.exit_code) == (1, 0, 1)
        assert summary.still_failing == {f"FAILED: {VIDEO_LIMIT}": 1}
    assert "a fresh dead letter replaces it" in output
    assert "1 more message(s) name objects redriven in this run" in output
    # And the queue still holds the object exactly once, with its latest failure
    record = status_of(stack, obj.key, obj.version_id)
    assert (record["status"], record["redrives"]) == ("FAILED", 2)
    [dead] = drain(stack.queue_url)
    assert (dead["object_key"], dead["reason"]) == (obj.key, VIDEO_LIMIT)
    assert dead["source_event"] == event["Records"][0]
    assert len(wistia_emulator.requests()) == 3


def test_a_retryable_failure_during_the_redrive_leaves_the_message(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given a dead letter, and Wistia failing (retryably) again when it is redriven
    importer = importer_for(settings, max_attempts=1)
    wistia_emulator.set_video_limit(0)
    obj = upload(stack.bucket, "flaky/again.mp4", VIDEO)
    deliver(s3_notification(obj), importer, captured_log)
    wistia_emulator.set_video_limit(None)
    wistia_emulator.add_fault(Fault(kind="status", status=500))
    invoke = in_process(importer, captured_log)

    summary, output = run_redrive(stack, invoke)

    # Then the message stays (the record waits for a retry), and nothing was added
    [reason] = summary.still_failing
    assert reason.startswith("PENDING_RETRY: Wistia is unavailable (500)")
    assert summary.exit_code == 1
    assert "left in the queue" in output
    assert status_of(stack, obj.key, obj.version_id)["status"] == "PENDING_RETRY"
    assert visible(stack.queue_url) == 1
    # And once Wistia is back, the next redrive imports it
    wistia_emulator.clear_faults()
    summary, _ = run_redrive(stack, invoke)
    assert summary.submitted == 1
    assert visible(stack.queue_url) == 0


def test_dry_run_counts_by_reason_and_max_limits_a_run(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given three dead-lettered uploads and a message the function could not read
    wistia_emulator.set_video_limit(0)
    objects = [upload(stack.bucket, f"batch/clip {n}.mp4", VIDEO) for n in range(3)]
    deliver(s3_notification(*objects), importer, captured_log)
    deliver(sqs_batch("this is not an event"), importer, captured_log)
    wistia_emulator.set_video_limit(None)

    # When a dry run looks at the queue
    dry, output = run_redrive(stack, dry_run=True)

    # Then it counts them by reason, and keeps the unreadable one out
    assert (dry.read, dry.redriven) == (4, 3)
    assert dry.would_redrive == {VIDEO_LIMIT: 3}
    [(skipped, count)] = dry.skipped.items()
    assert count == 1 and "not redrivable" in skipped
    assert "would redrive, by reason" in output
    assert visible(stack.queue_url) == 4

    # And a redrive limited to two messages submits exactly two
    limited, _ = run_redrive(stack, in_process(importer, captured_log), max_messages=2)
    assert (limited.redriven, limited.submitted) == (2, 2)
    assert len(wistia_emulator.medias()) == 2
    assert visible(stack.queue_url) == 2
    # And the next run finishes the job, leaving only the unreadable message
    rest, _ = run_redrive(stack, in_process(importer, captured_log))
    assert (rest.redriven, rest.submitted, sum(rest.skipped.values())) == (1, 1, 1)
    [unreadable] = drain(stack.queue_url)
    assert unreadable["bucket"] is None


def test_eventbridge_dead_letters_of_both_kinds_are_redriven(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given an existing-bucket deployment's EventBridge event the function dead-lettered,
    wistia_emulator.set_video_limit(0)
    refused = upload(stack.bucket, "eb/refused.mp4", VIDEO)
    deliver(eventbridge_event(refused), importer, captured_log)
    # and an event EventBridge itself could not deliver (its rule's dead-letter queue)
    undelivered = upload(stack.bucket, "eb/undelivered.mp4", VIDEO)
    boto3.client("sqs").send_message(
        QueueUrl=stack.queue_url,
        MessageBody=json.dumps(eventbridge_event(undelivered)),
        MessageAttributes={
            "RULE_ARN": {"DataType": "String", "StringValue": "arn:aws:events:::rule/x"},
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDKClientException"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Unable to invoke Lambda"},
        },
    )
    wistia_emulator.set_video_limit(None)

    summary, output = run_redrive(stack, in_process(importer, captured_log))

    assert (summary.redriven, summary.submitted) == (2, 2)
    assert "[EventBridge]  SDKClientException: Unable to invoke Lambda" in output
    assert sorted(m["name"] for m in wistia_emulator.medias()) == ["refused.mp4", "undelivered.mp4"]
    assert visible(stack.queue_url) == 0


def test_a_message_for_an_object_imported_since_is_deleted_without_invoking(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given an on-failure record for an object a later delivery imported after all
    obj = upload(stack.bucket, "late/fine.mp4", VIDEO)
    event = s3_notification(obj)
    deliver(event, importer, captured_log)
    boto3.client("sqs").send_message(
        QueueUrl=stack.queue_url,
        MessageBody=json.dumps(
            {
                "requestContext": {"condition": "RetriesExhausted"},
                "requestPayload": event,
                "responsePayload": {"errorMessage": "Wistia is unavailable (503)"},
            }
        ),
    )

    summary, output = run_redrive(stack, never_invoked)

    assert (summary.already_imported, summary.redriven) == (1, 0)
    assert "already imported: message deleted" in output
    assert visible(stack.queue_url) == 0


def test_the_command_line_dry_run_reads_the_queue_and_table_it_is_given(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wistia_emulator.set_video_limit(0)
    deliver(s3_notification(upload(stack.bucket, "cli/x.mp4", VIDEO)), importer, captured_log)
    capsys.readouterr()

    code = main(
        [
            "redrive",
            "--queue-url",
            stack.queue_url,
            "--table",
            stack.table_name,
            "--dry-run",
            "--wait",
            "0",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert f"Dead-letter queue {stack.queue_url} (dry run: nothing is changed)" in out
    assert "would redrive 1" in out
    assert visible(stack.queue_url) == 1


def test_the_command_line_names_a_stack_it_cannot_find(
    moto_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # A missing stack is a failure (1), not bad usage (2), as for every command.
    assert main(["redrive", "--stack", "no-such-stack", "--wait", "0"]) == 1
    assert "no stack 'no-such-stack'" in capsys.readouterr().err
