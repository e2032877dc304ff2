"""One Lambda event in, imports out, and Lambda's answer back.

Direct S3 and EventBridge events fail the invocation when an object must be retried,
so Lambda's retries and failure destination keep it. SQS batches answer with
batchItemFailures for exactly the messages that must come back.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from s3_to_wistia.contracts import DeadLetterMessage
from s3_to_wistia.deletions import RemovalFollower
from s3_to_wistia.errors import RetryableError, UnsupportedEvent
from s3_to_wistia.events import Parsed, event_kind, parse_notification, parse_sqs_body
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import Status
from s3_to_wistia.ports import DeadLetterSink, Log
from s3_to_wistia.times import iso_now

# SQS hands over up to 10 messages; each waits mostly on Wistia, so they run at once.
SQS_WORKERS = 10
_sqs_pool = ThreadPoolExecutor(max_workers=SQS_WORKERS, thread_name_prefix="record")


def handle_event(
    event: Any,
    context: Any,
    importer: Importer,
    dead_letters: DeadLetterSink,
    log: Log,
    removals: RemovalFollower | None = None,
    records_pool: Executor | None = None,
) -> dict[str, Any]:
    """`removals` follows the deletion events (without it they are logged and ignored).
    `records_pool`: the threads an SQS batch's records run on (one pool a process by
    default; a local stand-in running several instances in one process gives each its own)."""
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    try:
        kind = event_kind(event)
        parsed = None if kind == "sqs" else parse_notification(event)
    except UnsupportedEvent as error:
        log.error("unsupported event: nothing imported", reason=str(error))
        raise
    if parsed is None:
        pool = records_pool or _sqs_pool
        return _handle_sqs_batch(
            event, context, importer, dead_letters, log, deadline, pool, removals
        )
    return {"results": import_all(parsed, importer, log, deadline, removals=removals)}


def import_all(
    parsed: Parsed,
    importer: Importer,
    log: Log,
    deadline: float,
    hand_back_in_progress: bool = False,
    removals: RemovalFollower | None = None,
) -> list[dict[str, str]]:
    """Import every object named; raise RetryableError after trying all if any must come back.

    A direct or EventBridge delivery that finds another invocation importing the object
    waits for it (see Importer.import_object). An SQS message for it is handed back
    instead, with `hand_back_in_progress`: that costs nothing, and SQS brings it back."""
    for reason in parsed.ignored:
        log.info("record ignored", reason=reason)
    results: list[dict[str, str]] = []
    retry: list[str] = []
    for obj in parsed.objects:
        log.thread_safe_append_keys(
            bucket=obj.bucket, object_key=obj.key, object_version=obj.version
        )
        try:
            outcome = importer.import_object(
                obj, deadline, wait_for_holder=not hand_back_in_progress
            )
            results.append(
                {"object": obj.uri, "version": obj.version, "status": outcome.status.value}
            )
            if hand_back_in_progress and outcome.status is Status.IN_PROGRESS:
                retry.append(f"{obj.uri}: {outcome.detail}")
        except RetryableError as error:
            log.warning("import will be retried", reason=str(error))
            retry.append(f"{obj.uri}: {error}")
        finally:
            log.thread_safe_clear_keys()
    results += follow_removals(parsed, removals, log, deadline, retry)
    if retry:
        raise RetryableError("; ".join(retry))
    return results


def follow_removals(
    parsed: Parsed,
    removals: RemovalFollower | None,
    log: Log,
    deadline: float,
    retry: list[str],
) -> list[dict[str, str]]:
    """Record and follow every deletion named; those to retry are added to `retry`."""
    results: list[dict[str, str]] = []
    for removal in parsed.removals:
        if removals is None:
            log.info("record ignored", reason=f"deletion of {removal.uri}")
            continue
        log.thread_safe_append_keys(bucket=removal.bucket, object_key=removal.key)
        try:
            outcome = removals.follow(removal, deadline)
            ref = outcome.object
            results.append({"object": ref.uri, "version": ref.version, "status": outcome.status})
        except RetryableError as error:
            log.warning("deletion will be followed again", reason=str(error))
            retry.append(f"{removal.uri} (deleted): {error}")
        finally:
            log.thread_safe_clear_keys()
    return results


def _handle_sqs_batch(
    event: Any,
    context: Any,
    importer: Importer,
    dead_letters: DeadLetterSink,
    log: Log,
    deadline: float,
    pool: Executor,
    removals: RemovalFollower | None,
) -> Any:
    # Imported here: direct S3 invocations, the common case, never need batch handling.
    import asyncio

    from aws_lambda_powertools.utilities.batch import (
        AsyncBatchProcessor,
        EventType,
        async_process_partial_response,
    )

    def handle_message(body: str, message_id: str) -> None:
        try:
            parsed = parse_sqs_body(body)
        except UnsupportedEvent as error:
            # Redelivering it cannot help: keep it in the dead-letter queue and move on.
            log.error(
                "SQS message is not an S3 event; sent to the dead-letter queue", reason=str(error)
            )
            dead_letters.send(
                DeadLetterMessage.for_unreadable_message(
                    str(error), body, message_id, failed_at=iso_now()
                )
            )
            return
        import_all(parsed, importer, log, deadline, hand_back_in_progress=True, removals=removals)

    async def record_handler(record: Any) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, handle_message, record.body, record.message_id)

    processor = AsyncBatchProcessor(event_type=EventType.SQS)
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
