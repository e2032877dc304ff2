"""redrive's reading of the dead-letter queue's three message shapes, and its summary."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from local_stack.events import fixture
from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
from s3_to_wistia.cli.redrive import summary_lines
from s3_to_wistia.cli.resources import default_stack_name
from s3_to_wistia.redrive import DeadLetter, Summary, read_message

S3_RECORD = fixture("s3-object-created.json")["Records"][0]
EVENTBRIDGE = fixture("eventbridge-object-created.json")


def message(body: Any, **attributes: str) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    found: dict[str, Any] = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": text}
    if attributes:
        found["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        }
    return found


def dead_letter(source_event: Any, **fields: Any) -> dict[str, Any]:
    return {
        "bucket": "my-media-bucket",
        "object_key": "launch/Product Demo (2026).mp4",
        "object_version": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        "reason": "This account has exceeded its video limit.",
        "http_status": 400,
        "retryable": False,
        "source_event": source_event,
        **fields,
    }


def test_the_functions_dead_letter_for_an_s3_record_is_redriven_as_a_notification() -> None:
    letter = read_message(message(dead_letter(S3_RECORD)))

    assert letter.problem is None
    assert letter.event == {"Records": [S3_RECORD]}
    assert letter.sent_by == "the function (HTTP 400)"
    assert letter.reason == "This account has exceeded its video limit."
    [obj] = letter.objects
    assert obj.key == "launch/Product Demo (2026).mp4"  # decoded, once
    assert (letter.message_id, letter.receipt_handle) == ("m-1", "r-1")


def test_the_functions_dead_letter_for_an_eventbridge_event_is_redriven_as_that_event() -> None:
    letter = read_message(message(dead_letter(EVENTBRIDGE)))

    assert letter.event == EVENTBRIDGE
    [obj] = letter.objects
    assert (obj.bucket, obj.version_id) == ("my-media-bucket", "096fKKXTRTtl3on89fVO.nfljtsv6qko")


def test_lambdas_on_failure_record_is_redriven_with_its_request_payload() -> None:
    notification = {"Records": [S3_RECORD, copy.deepcopy(S3_RECORD)]}
    notification["Records"][1]["s3"]["object"]["key"] = "second.mp4"
    record = {
        "version": "1.0",
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": notification,
        "responsePayload": {"errorType": "RetryableError", "errorMessage": "Wistia is down"},
    }

    letter = read_message(message(record))

    assert letter.event == notification
    assert letter.sent_by == "Lambda on-failure (RetriesExhausted)"
    assert letter.reason == "Wistia is down"
    assert [obj.key for obj in letter.objects] == ["launch/Product Demo (2026).mp4", "second.mp4"]


def test_an_event_eventbridge_could_not_deliver_is_redriven_as_it_is() -> None:
    letter = read_message(
        message(
            EVENTBRIDGE,
            RULE_ARN="arn:aws:events:us-east-1:123456789012:rule/x",
            ERROR_CODE="SDKClientException",
            ERROR_MESSAGE="Unable to invoke Lambda",
        )
    )

    assert letter.event == EVENTBRIDGE
    assert letter.sent_by == "EventBridge"
    assert letter.reason == "SDKClientException: Unable to invoke Lambda"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "its body is not JSON"),
        ("[1, 2]", "its body is not a JSON object"),
        ({"hello": "world"}, "unrecognised message"),
        (
            dead_letter({"sqs_message_id": "x", "body": "garbage"}, bucket=None),
            "the function could not read the message it came from",
        ),
        (
            {"Records": [{**S3_RECORD, "eventName": "ObjectRestore:Completed"}]},
            "its event names no object to import",
        ),
        ({"Records": [{"eventSource": "aws:s3"}]}, "its event is not one the function accepts"),
        ({"requestContext": {}, "requestPayload": "x"}, "its requestPayload is not an event"),
    ],
)
def test_messages_that_cannot_be_redriven_say_why(body: Any, problem: str) -> None:
    letter = read_message(message(body))

    assert letter.problem is not None and letter.problem.startswith(problem)
    assert letter.event is None
    assert letter.objects == ()


def test_the_summary_counts_by_reason_and_fails_while_objects_still_fail() -> None:
    summary = Summary(read=3, redriven=2, submitted=1)
    summary.still_failing["FAILED: video limit"] += 1
    summary.skipped["not redrivable: not JSON"] += 1

    assert summary.exit_code == 1
    assert summary_lines(summary) == [
        "3 message(s) read; redriven 2: submitted 1, still failing 1; already imported 0; "
        "skipped 1",
        "  still failing, by reason:",
        "        1  FAILED: video limit",
        "  skipped, by reason:",
        "        1  not redrivable: not JSON",
        "2 message(s) left in the queue",
    ]
    assert Summary(dry_run=True, read=1, redriven=1).exit_code == 0


def test_the_default_stack_is_the_one_samconfig_deploys(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "media-imports"\n'
        '[staging.global.parameters]\nstack_name = "media-imports-staging"\n'
    )

    assert default_stack_name([tmp_path]) == "media-imports"
    assert default_stack_name([tmp_path], "staging") == "media-imports-staging"
    assert default_stack_name([tmp_path / "nowhere"]) == "s3-to-wistia"
    assert default_stack_name() == "s3-to-wistia"


def test_a_dead_letter_names_its_objects() -> None:
    assert DeadLetter("m", "r", "x", "y").names == "(no object)"
    letter = read_message(message(dead_letter(S3_RECORD)))
    assert letter.names == "s3://my-media-bucket/launch/Product Demo (2026).mp4"


class FakeSqs:
    """Answers receive_message from a script of batches; records what is changed."""

    def __init__(self, *batches: list[dict[str, Any]]) -> None:
        self._batches = list(batches)
        self.deleted: list[str] = []
        self.released: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": self._batches.pop(0)} if self._batches else {}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        self.deleted.append(ReceiptHandle)

    def change_message_visibility_batch(
        self,
        QueueUrl: str,
        Entries: list[dict[str, Any]],
    ) -> None:
        assert all(entry["VisibilityTimeout"] == 0 for entry in Entries)
        self.released.extend(entry["ReceiptHandle"] for entry in Entries)


def test_a_message_seen_again_is_read_once_and_released_by_its_newest_handle() -> None:
    # A run longer than the visibility timeout receives its held messages again.
    first = {"MessageId": "a", "ReceiptHandle": "a-1", "Body": "{}"}
    second = {"MessageId": "b", "ReceiptHandle": "b-1", "Body": "{}"}
    sqs = FakeSqs(
        [first, second], [{**first, "ReceiptHandle": "a-2"}, {**second, "ReceiptHandle": "b-2"}]
    )
    queue = DeadLetterQueue(sqs, "https://queue", wait_seconds=0)

    read = [m["MessageId"] for m in queue.messages()]
    queue.delete(read_message(second))
    queue.release()

    assert read == ["a", "b"]
    assert sqs.deleted == ["b-2"]
    assert sqs.released == ["a-2"]


@pytest.mark.parametrize("odd_text", ["plain", "lone \udc80 surrogate", "ünïcödé"])
def test_the_record_keeps_the_source_event_as_json_text_and_reads_back_what_came(
    odd_text: str,
) -> None:
    from s3_to_wistia.contracts import ImportRecord, RecordFields

    event = copy.deepcopy(S3_RECORD)
    event["userIdentity"] = {"principalId": odd_text}
    written = RecordFields(source_event=event).attributes()

    # One JSON text (valid Unicode, so DynamoDB takes it), not a nested map
    assert isinstance(written["source_event"], str)
    written["source_event"].encode("utf-8")
    record = ImportRecord.from_attributes(
        {"bucket": "b", "object_key": "k", "object_version": "v", **written}
    )
    assert record.redrive_source_event() == event
    # and records written before, holding a map, read the same
    older = ImportRecord.from_attributes(
        {"bucket": "b", "object_key": "k", "object_version": "v", "source_event": event}
    )
    assert older.source_event == event
