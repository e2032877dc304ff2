"""What tests and `make run` share to drive the function: a Lambda context, log capture,
and readers for the record table and the dead-letter queue."""

from __future__ import annotations

import io
import itertools
import json
import logging
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from boto3.dynamodb.types import TypeDeserializer

from s3_to_wistia.adapters.budget import BUDGET_KEY
from s3_to_wistia.config import Settings
from s3_to_wistia.importing import Importer
from s3_to_wistia.redact import scrubbed_json
from s3_to_wistia.wiring import build_importer

if TYPE_CHECKING:
    from local_stack.template import Stack

_services = itertools.count(1)


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the function and Powertools read."""

    timeout_seconds: float = 60.0
    function_name: str = "s3-to-wistia-local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@dataclass
class CapturedLogger:
    """A Powertools Logger whose JSON lines land in a buffer tests can read."""

    logger: Logger
    buffer: io.StringIO

    @classmethod
    def create(cls) -> CapturedLogger:
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        logger = Logger(
            service=f"s3-to-wistia-test-{next(_services)}",
            logger_handler=handler,
            json_serializer=scrubbed_json,  # as the handler's own logger
        )
        return cls(logger, buffer)

    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]


class CountingMetrics:
    """Counts metrics in memory. Powertools Metrics keeps one metric set per process, so
    test importers must not add to it: the handler under test would flush their counts."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        with self._lock:
            self.counts[name] += int(value)


def make_importer(settings: Settings, log: Logger, metrics: Any = None) -> Importer:
    return build_importer(settings, log, metrics or CountingMetrics())


_deserializer = TypeDeserializer()


def record_of(table: str, bucket: str, key: str, version: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb").get_item(
        TableName=table,
        Key={"object_uri": {"S": f"s3://{bucket}/{key}"}, "object_version": {"S": version}},
        ConsistentRead=True,
    )
    found = item.get("Item")
    return {k: _deserializer.deserialize(v) for k, v in found.items()} if found else None


def budget_times(stack: Stack) -> dict[str, float]:
    """The stack's request budget as its table holds it (`next_slot_at`, `paused_until`,
    epoch seconds); empty when nobody has booked yet."""
    found = boto3.client("dynamodb").get_item(
        TableName=stack.resources["RateBudgetTable"], Key=BUDGET_KEY, ConsistentRead=True
    )
    return {k: float(v["N"]) for k, v in found.get("Item", {}).items() if "N" in v}


def forget_budget(stack: Stack) -> None:
    """Delete the stack's budget item: the schedule idle, any pause over."""
    boto3.client("dynamodb").delete_item(
        TableName=stack.resources["RateBudgetTable"], Key=BUDGET_KEY
    )


def submitted_imports(table: str, bucket: str, key: str) -> list[dict[str, Any]]:
    """The key's SUBMITTED records (one per version imported), oldest submission first."""
    answer = boto3.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="object_uri = :uri",
        ExpressionAttributeValues={":uri": {"S": f"s3://{bucket}/{key}"}},
        ConsistentRead=True,
    )
    records = [
        {k: _deserializer.deserialize(v) for k, v in item.items()} for item in answer["Items"]
    ]
    imported = [r for r in records if r.get("status") == "SUBMITTED"]
    return sorted(imported, key=lambda r: str(r.get("submitted_at", "")))


def all_records(table: str) -> list[dict[str, Any]]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return [
        {k: _deserializer.deserialize(v) for k, v in item.items()}
        for page in pages
        for item in page["Items"]
    ]


def drain(queue_url: str) -> list[dict[str, Any]]:
    """Every message in the queue, parsed, deleted as read."""
    sqs = boto3.client("sqs")
    messages: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        batch = answer.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
