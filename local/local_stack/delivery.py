"""S3's event delivery and Lambda's asynchronous invocation, stood in for on the local stack.

On AWS, S3 invokes the function asynchronously: Lambda queues the event, one of the
function's instances runs it, and when the handler raises, Lambda tries again twice (about
1 and 2 minutes later) and then sends an on-failure record to the failure destination.

Locally, moto's S3 sends each notification to a "delivery" SQS queue (it cannot invoke a
function that runs outside moto). NotificationPump reads that queue and hands every
notification to AsyncInvoker, which plays Lambda: a few worker threads as concurrent
instances, two retries with shortened back-off, and Lambda's on-failure record.
"""

from __future__ import annotations

import json
import queue
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import boto3

from local_stack.harness import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
# Lambda waits 1 minute, then 2, between the attempts of an asynchronous invocation.
LAMBDA_RETRY_DELAYS = (60.0, 120.0)
DEFAULT_FUNCTION_ARN = LambdaContext().invoked_function_arn


def object_keys(notification: Any) -> list[str]:
    """The decoded keys an S3 notification names (S3 writes them URL-encoded, spaces as +)."""
    try:
        return [unquote_plus(record["s3"]["object"]["key"]) for record in notification["Records"]]
    except (KeyError, TypeError):
        return []


@dataclass(frozen=True)
class Invocation:
    """How one delivery of an event ended, after Lambda's retries."""

    event: dict[str, Any]
    keys: list[str]
    delivery: int  # 1 for the event's first delivery, 2 for a repeat of the same notification
    attempts: int
    response: Any = None  # the handler's answer, when an attempt succeeded
    error: BaseException | None = None  # the last attempt's error, when every attempt failed

    @property
    def succeeded(self) -> bool:
        return self.error is None


def on_failure_record(
    event: dict[str, Any],
    error: BaseException,
    request_id: str,
    function_arn: str,
    attempts: int,
) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination once an async event's retries are spent."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        # The Python runtime's error payload for an exception the handler let out.
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "requestId": request_id,
            "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
        },
    }


class AsyncInvoker:
    """Lambda's asynchronous invocation of one function: an internal queue of events, a few
    instances working it, retries with back-off, then the on-failure destination."""

    def __init__(
        self,
        handler: Handler,
        failure_queue_url: str,
        timeout_seconds: float,
        on_result: Callable[[Invocation], None],
        on_retry: Callable[[Invocation, float], None] | None = None,
        retry_delays: Sequence[float] = LAMBDA_RETRY_DELAYS,
        instances: int = 4,
        function_arn: str = DEFAULT_FUNCTION_ARN,
    ) -> None:
        self._handler = handler
        self._failure_queue_url = failure_queue_url
        self._timeout_seconds = timeout_seconds
        self._on_result = on_result
        self._on_retry = on_retry
        self._retry_delays = tuple(retry_delays)
        self._function_arn = function_arn
        # Clients are made here, on the caller's thread: creating them is not thread-safe.
        self._sqs = boto3.client("sqs")
        self._jobs: queue.SimpleQueue[tuple[dict[str, Any], int] | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._instances = [
            threading.Thread(target=self._work, name=f"lambda-instance-{n}", daemon=True)
            for n in range(instances)
        ]

    def start(self) -> AsyncInvoker:
        for instance in self._instances:
            instance.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Drop the events not started yet and wait for the running ones to finish."""
        self._stopping.set()
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._instances:
            self._jobs.put(None)
        for instance in self._instances:
            if instance.is_alive():
                instance.join(timeout)

    def invoke(self, event: dict[str, Any], deliveries: int = 1) -> None:
        """Queue the event; `deliveries` > 1 hands the same event over again once it is done."""
        self._jobs.put((event, deliveries))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            event, deliveries = job
            for delivery in range(1, deliveries + 1):
                if self._stopping.is_set():
                    return
                try:
                    invocation = self._deliver(event, delivery)
                except Exception as error:  # the failure destination itself is unreachable
                    invocation = Invocation(event, object_keys(event), delivery, 0, error=error)
                self._report(invocation)

    def _deliver(self, event: dict[str, Any], delivery: int) -> Invocation:
        keys = object_keys(event)
        # Lambda keeps the request id across the retries of one asynchronous event.
        request_id = str(uuid.uuid4())
        error: BaseException | None = None
        attempts = 0
        for delay in (0.0, *self._retry_delays):
            if delay and self._stopping.wait(delay):
                break  # shutting down: the event is abandoned, as a killed instance would
            attempts += 1
            context = LambdaContext(
                timeout_seconds=self._timeout_seconds,
                aws_request_id=request_id,
                invoked_function_arn=self._function_arn,
            )
            try:
                response = self._handler(event, context)
            except Exception as failure:
                error = failure
                if attempts <= len(self._retry_delays) and self._on_retry is not None:
                    failed = Invocation(event, keys, delivery, attempts, error=failure)
                    self._on_retry(failed, self._retry_delays[attempts - 1])
                continue
            return Invocation(event, keys, delivery, attempts, response=response)
        assert error is not None
        if not self._stopping.is_set():
            record = on_failure_record(event, error, request_id, self._function_arn, attempts)
            self._sqs.send_message(
                QueueUrl=self._failure_queue_url,
                MessageBody=json.dumps(record, default=str, ensure_ascii=False),
            )
        return Invocation(event, keys, delivery, attempts, error=error)

    def _report(self, invocation: Invocation) -> None:
        try:
            self._on_result(invocation)
        except Exception:  # a broken reporter must not take an instance down with it
            traceback.print_exc()


class NotificationPump:
    """S3's delivery of event notifications to the function: every notification moto's S3
    sends to the delivery queue becomes an asynchronous invocation."""

    def __init__(
        self,
        queue_url: str,
        invoker: AsyncInvoker,
        deliveries: Callable[[dict[str, Any]], int] = lambda notification: 1,
        poll_seconds: float = 0.05,
    ) -> None:
        self._queue_url = queue_url
        self._invoker = invoker
        self._deliveries = deliveries
        self._poll_seconds = poll_seconds
        self._sqs = boto3.client("sqs")
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="s3-event-delivery", daemon=True)
        self.errors: list[str] = []

    @property
    def queue_url(self) -> str:
        """Where S3's notifications wait (a stand-in may put one there, as S3 would)."""
        return self._queue_url

    def start(self) -> NotificationPump:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
                for message in messages:
                    self._hand_over(message)
            except Exception as error:
                if self._stopping.is_set():
                    return
                self.errors.append(f"{type(error).__name__}: {error}")
                messages = []
            if not messages:
                self._stopping.wait(self._poll_seconds)

    def _hand_over(self, message: dict[str, Any]) -> None:
        notification = json.loads(message["Body"])
        # S3 sends s3:TestEvent to a queue when its notification is configured; a function
        # invoked by S3 directly never sees it.
        if notification.get("Event") != "s3:TestEvent":
            self._invoker.invoke(notification, self._deliveries(notification))
        # Lambda's own queue has the event now: S3's delivery is done.
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
