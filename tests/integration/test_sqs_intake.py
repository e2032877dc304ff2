"""Intake=Queue on the local stack: S3 sends object events to the template's IntakeQueue, an
event source mapping stand-in hands them to the function ten at a time, and what must come
back comes back (batchItemFailures), up to the queue's redrive into the dead-letter queue."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.events import upload
from local_stack.harness import CapturedLogger, all_records, drain
from local_stack.sqs_source import SqsEventSource
from local_stack.template import Stack, provision
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import SQS_WORKERS, handle_event
from s3_to_wistia.importing import Importer
from wistia_emulator import Fault, WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x02" * 2000
TOKEN = "test-token"
WAIT_LIMIT = 60.0


@pytest.fixture
def queue_stack(moto_server: LocalAws) -> Stack:
    """The template with Intake=Queue, the bucket notifying the intake queue as its
    NotificationConfiguration says, and failed records back after 1 s."""
    stack = provision(token=TOKEN, parameters={"Intake": "Queue"})
    queue_url = stack.resources["IntakeQueue"]
    sqs = boto3.client("sqs")
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=stack.bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1"})
    return stack


@pytest.fixture
def running(
    queue_stack: Stack,
    wistia_emulator: WistiaEmulator,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
) -> Iterator[Callable[..., SqsEventSource]]:
    sources: list[SqsEventSource] = []
    pools: list[ThreadPoolExecutor] = []

    def start(concurrency: int = 2, **overrides: Any) -> SqsEventSource:
        settings = replace(
            Settings.from_env(queue_stack.environment_for(wistia_emulator.url)), **overrides
        )
        handlers = []
        for _ in range(concurrency):
            importer = importer_for(settings)

            # Each instance has its own record threads, as separate Lambda environments do.
            pool = ThreadPoolExecutor(max_workers=SQS_WORKERS)
            pools.append(pool)

            def handler(
                event: Any, context: Any, importer: Importer = importer, pool: Executor = pool
            ) -> Any:
                return handle_event(
                    event,
                    context,
                    importer,
                    importer.dead_letters,
                    captured_log.logger,
                    records_pool=pool,
                )

            handlers.append(handler)
        source = SqsEventSource(handlers, queue_stack.resources["IntakeQueue"], 30.0).start()
        sources.append(source)
        return source

    yield start
    for source in sources:
        source.stop()
    for pool in pools:
        pool.shutdown()


def wait_idle(source: SqsEventSource) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not source.idle():
        assert time.monotonic() < deadline, "the intake queue never drained"
        time.sleep(0.2)


def test_object_events_through_the_queue_are_imported_in_batches(
    queue_stack: Stack,
    wistia_emulator: WistiaEmulator,
    running: Callable[..., SqsEventSource],
) -> None:
    # Given 25 objects whose events wait in the intake queue, hidden while a batch is in
    # hand as long as the function may run (with the fixture's 1 s, a slow batch comes back
    # to the other poller mid-flight and fails on its own claims)
    for n in range(25):
        upload(queue_stack.bucket, f"queued/{n:02d}.mp4", VIDEO)
    boto3.client("sqs").set_queue_attributes(
        QueueUrl=queue_stack.resources["IntakeQueue"], Attributes={"VisibilityTimeout": "30"}
    )

    # When the event source hands them to the function, two batches at most at once
    source = running(concurrency=2)
    wait_idle(source)

    # Then each was imported once, several to an invocation
    records = all_records(queue_stack.table_name)
    assert sorted(r["status"] for r in records) == ["SUBMITTED"] * 25
    assert len(wistia_emulator.requests()) == 25
    assert source.stats.largest_batch > 1
    assert source.stats.failed_batches == 0


def test_a_record_that_must_be_retried_comes_back_alone(
    queue_stack: Stack,
    wistia_emulator: WistiaEmulator,
    running: Callable[..., SqsEventSource],
) -> None:
    # Given Wistia answers the first import 503, and the function tries once per delivery
    wistia_emulator.add_fault(Fault(kind="status", status=503, count=1, match_path="/"))
    for n in range(5):
        upload(queue_stack.bucket, f"retry/{n}.mp4", VIDEO)

    source = running(concurrency=1, max_attempts=1)
    wait_idle(source)

    # Then that record was reported failed, came back and was imported; the others once
    records = all_records(queue_stack.table_name)
    assert sorted(r["status"] for r in records) == ["SUBMITTED"] * 5
    assert source.stats.item_failures == 1
    assert len(wistia_emulator.medias()) == 5


def test_an_event_that_keeps_failing_ends_in_the_dead_letter_queue_as_it_was(
    queue_stack: Stack,
    wistia_emulator: WistiaEmulator,
    running: Callable[..., SqsEventSource],
) -> None:
    # Given Wistia answers every import 503
    wistia_emulator.add_fault(Fault(kind="status", status=503, probability=1.0, match_path="/"))
    obj = upload(queue_stack.bucket, "stuck/always.mp4", VIDEO)

    source = running(concurrency=1, max_attempts=1)
    wait_idle(source)

    # Then after the queue's maxReceiveCount deliveries the S3 event itself is in the
    # dead-letter queue, where `make redrive` can replay it
    [message] = drain(queue_stack.queue_url)
    assert message["Records"][0]["s3"]["object"]["key"] == "stuck/always.mp4"
    # (five deliveries; a batch whose every record failed fails whole, as Powertools does)
    assert source.stats.item_failures + source.stats.failed_batches == 5
    record = next(r for r in all_records(queue_stack.table_name) if r["object_key"] == obj.key)
    assert record["status"] == "PENDING_RETRY"
    assert json.dumps(message)  # an ordinary S3 notification body
