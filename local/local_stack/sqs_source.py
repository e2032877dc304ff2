"""Lambda's SQS event source mapping, stood in for on the local stack (Intake=Queue).

On AWS, Lambda polls the intake queue, hands the function up to BatchSize messages in one
event, and at most MaximumConcurrency such invocations run at once. With
ReportBatchItemFailures the function answers `batchItemFailures`: Lambda deletes every
other message of the batch, and the failed ones become visible again once their visibility
timeout ends. A batch whose invocation fails comes back whole. The queue's RedrivePolicy
moves a message received maxReceiveCount times to the dead-letter queue (moto does that).

Here each of `max_concurrency` threads polls and invokes in turn, so no more batches run at
once than the mapping allows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from local_stack.harness import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
WAIT_SECONDS = 1  # long polling: the mapping's receive waits for messages


@dataclass
class SourceStats:
    batches: int = 0
    messages: int = 0
    failed_batches: int = 0  # the invocation raised: the whole batch comes back
    item_failures: int = 0  # records the function reported in batchItemFailures
    largest_batch: int = 0
    errors: list[str] = field(default_factory=list)


class SqsEventSource:
    def __init__(
        self,
        handlers: Sequence[Handler],
        queue_url: str,
        timeout_seconds: float,
        batch_size: int = 10,
    ) -> None:
        """One poller per handler: `handlers` are the function's concurrent instances, as
        many as the mapping's maximum concurrency."""
        self._handlers = list(handlers)
        self._queue_url = queue_url
        self._timeout_seconds = timeout_seconds
        self._batch_size = batch_size
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._arn = ""
        self.stats = SourceStats()

    def start(self) -> SqsEventSource:
        sqs = boto3.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])
        self._arn = attributes["Attributes"]["QueueArn"]
        for number, handler in enumerate(self._handlers):
            # Clients are made here, on the caller's thread: creating them is not thread-safe.
            client = boto3.session.Session().client(
                "sqs", config=Config(retries={"mode": "standard", "max_attempts": 3})
            )
            thread = threading.Thread(
                target=self._poll, args=(handler, client), name=f"sqs-source-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def idle(self) -> bool:
        """No batch in hand and nothing visible or in flight in the queue."""
        with self._lock:
            if self._busy:
                return False
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return not any(int(value) for value in attributes.values())

    def _poll(self, handler: Handler, sqs: Any) -> None:
        while not self._stopping.is_set():
            answer = sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=self._batch_size,
                WaitTimeSeconds=WAIT_SECONDS,
                AttributeNames=["All"],
            )
            messages = answer.get("Messages", [])
            if not messages:
                continue
            with self._lock:
                self._busy += 1
            try:
                self._invoke(handler, sqs, messages)
            finally:
                with self._lock:
                    self._busy -= 1

    def _invoke(self, handler: Handler, sqs: Any, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(message) for message in messages]}
        try:
            answer = handler(event, LambdaContext(timeout_seconds=self._timeout_seconds))
        except Exception as error:  # Lambda treats any unhandled error alike
            with self._lock:
                self.stats.batches += 1
                self.stats.messages += len(messages)
                self.stats.failed_batches += 1
                self.stats.errors.append(f"{type(error).__name__}: {error}"[:300])
            return  # nothing deleted: the whole batch comes back after its visibility timeout
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                for n, m in enumerate(done[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        with self._lock:
            self.stats.batches += 1
            self.stats.messages += len(messages)
            self.stats.item_failures += len(failed)
            self.stats.largest_batch = max(self.stats.largest_batch, len(messages))

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """The record as Lambda's SQS event carries it."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._arn,
            "awsRegion": "us-east-1",
        }
