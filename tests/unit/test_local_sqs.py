"""The local stack's SQS receives as moto does, without the walk of the whole queue that
moto made for each message it handed out (local_stack.aws: _within_retention): messages
past the queue's retention period are still never delivered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sqs import models as sqs_models

import local_stack.aws  # noqa: F401 - the local stack's fixes to moto

REGION = "us-east-1"


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def test_receiving_from_a_deep_queue_never_counts_the_queue(
    sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqs.create_queue(QueueName="deep")["QueueUrl"]
    for start in range(0, 200, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps({"n": start + n})} for n in range(10)
            ],
        )
    counted: list[int] = []
    moto_count = sqs_models.Queue.approximate_number_of_messages

    def counting(queue: Any) -> int:
        counted.append(1)
        return int(moto_count.fget(queue))  # type: ignore[attr-defined]

    monkeypatch.setattr(sqs_models.Queue, "approximate_number_of_messages", property(counting))

    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert len(received) == 10
    assert counted == []


def test_a_message_past_the_retention_period_is_not_delivered(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="new")
    sqs.send_message(QueueUrl=url, MessageBody="old")
    queue = sqs_models.sqs_backends["123456789012"][REGION].get_queue("short")
    old = next(m for m in queue._messages if m.body == "old")
    # Sent 61 s ago: past a 60 s retention.
    setattr(old, "sent_timestamp", int(old.sent_timestamp or 0) - 61_000)  # noqa: B010

    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])

    assert [m["Body"] for m in received] == ["new"]
