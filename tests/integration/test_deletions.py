"""ON_DELETE: a deleted object's media archived or deleted at Wistia, or kept; each deletion
recorded. Real S3 deletions on moto's server (delete markers, versions deleted for good),
the function's own handling, and the emulator's Data API with its token rights."""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import replace
from typing import Any

import boto3
import pytest

from local_stack.events import encoded_key, fixture, s3_record, upload
from local_stack.harness import (
    CountingMetrics,
    LambdaContext,
    budget_times,
    drain,
    forget_budget,
    record_of,
)
from local_stack.template import Stack, provision
from s3_to_wistia.adapters.budget import DynamoDBSchedule
from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.cli.redrive import run
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.events import parse_notification
from s3_to_wistia.redrive import Invocation
from s3_to_wistia.wiring import ImportFunction, build_import_function
from wistia_emulator import Fault, WistiaEmulator

TOKEN = "test-token"  # the stack's token (tests/conftest.py)
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2048


def function_with(settings: Settings, captured_log: Any, on_delete: str) -> ImportFunction:
    return build_import_function(
        replace(settings, on_delete=on_delete), captured_log.logger, CountingMetrics()
    )


def deliver(function: ImportFunction, event: dict[str, Any], log: Any) -> Any:
    return handle_event(
        event,
        LambdaContext(timeout_seconds=30),
        function.importer,
        function.dead_letters,
        log.logger,
        function.removals,
    )


def created(bucket: str, key: str, sequencer: str, body: bytes = VIDEO) -> dict[str, Any]:
    """Upload the object; its ObjectCreated event with this sequencer."""
    record = s3_record(upload(bucket, key, body))
    record["s3"]["object"]["sequencer"] = sequencer
    return {"Records": [record]}


def deleted(bucket: str, key: str, sequencer: str, version_id: str | None = None) -> dict[str, Any]:
    """Delete the key (a delete marker) or one version for good; the ObjectRemoved event
    S3 sends for it."""
    s3 = boto3.client("s3")
    if version_id:
        answer = s3.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
        name, version = "ObjectRemoved:Delete", version_id
    else:
        answer = s3.delete_object(Bucket=bucket, Key=key)
        name, version = "ObjectRemoved:DeleteMarkerCreated", answer.get("VersionId")
    record = copy.deepcopy(fixture("s3-object-created.json")["Records"][0])
    record["eventName"] = name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["object"] = {"key": encoded_key(key), "sequencer": sequencer}
    if version:
        record["s3"]["object"]["versionId"] = version
    return {"Records": [record]}


def deletion_record(stack: Stack, key: str, event: dict[str, Any]) -> dict[str, Any]:
    obj = event["Records"][0]["s3"]["object"]
    mark = obj.get("versionId") or obj["sequencer"]
    found = record_of(stack.table_name, stack.bucket, key, f"deleted:{mark}")
    assert found is not None
    return found


def media(wistia: WistiaEmulator, hashed_id: str) -> dict[str, Any]:
    [found] = [m for m in wistia.medias() if m["hashed_id"] == hashed_id]
    return found


def imported(function: ImportFunction, event: dict[str, Any], log: Any) -> str:
    """Deliver the object's creation; the hashed id of the media it made."""
    answer = deliver(function, event, log)
    assert answer["results"][0]["status"] == "SUBMITTED"
    [obj] = parse_notification(event).objects
    found = record_of(
        function.importer.settings.imports_table_name, obj.bucket, obj.key, obj.version
    )
    assert found is not None
    return str(found["wistia_hashed_id"])


@pytest.mark.parametrize(("on_delete", "flag"), [("delete", "deleted"), ("archive", "archived")])
def test_a_deleted_object_has_its_media_deleted_or_archived(
    stack: Stack,
    settings: Settings,
    captured_log: Any,
    wistia_emulator: WistiaEmulator,
    on_delete: str,
    flag: str,
) -> None:
    # Given an imported object
    function = function_with(settings, captured_log, on_delete)
    hashed_id = imported(function, created(stack.bucket, "gone/clip.mp4", "0A"), captured_log)

    # When it is deleted (a delete marker in the stack's versioned bucket)
    event = deleted(stack.bucket, "gone/clip.mp4", "0B")
    answer = deliver(function, event, captured_log)

    # Then its media is deleted (or archived) at Wistia, and the deletion is recorded
    assert answer["results"] == [
        {
            "object": f"s3://{stack.bucket}/gone/clip.mp4",
            "version": f"deleted:{event['Records'][0]['s3']['object']['versionId']}",
            "status": "DELETED",
        }
    ]
    assert wistia_emulator.wait_until_settled(10)
    assert media(wistia_emulator, hashed_id)[flag] is True
    record = deletion_record(stack, "gone/clip.mp4", event)
    assert record["status"] == "DELETED"
    assert record["media_action"] == ("deleted" if on_delete == "delete" else "archived")
    assert record["media_action_hashed_id"] == hashed_id
    assert "wistia_hashed_id" not in record  # the status index must not find it


def test_a_repeated_deletion_event_acts_once(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    function = function_with(settings, captured_log, "delete")
    imported(function, created(stack.bucket, "twice.mp4", "0A"), captured_log)
    event = deleted(stack.bucket, "twice.mp4", "0B")

    deliver(function, event, captured_log)
    deliver(function, event, captured_log)

    deletes = [r for r in wistia_emulator.requests() if r["method"] == "DELETE"]
    assert len(deletes) == 1


def test_a_key_uploaded_again_after_its_deletion_keeps_its_media_whatever_the_order(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    # Given an object imported, deleted, then uploaded again
    function = function_with(settings, captured_log, "delete")
    first = imported(function, created(stack.bucket, "again.mp4", "0A"), captured_log)
    removal = deleted(stack.bucket, "again.mp4", "0B")
    again = created(stack.bucket, "again.mp4", "0C")

    # When the new upload's event arrives before the deletion's
    second = imported(function, again, captured_log)
    deliver(function, removal, captured_log)

    # Then neither media is touched: the key was written after the deletion
    assert not media(wistia_emulator, first)["deleted"]
    assert not media(wistia_emulator, second)["deleted"]
    record = deletion_record(stack, "again.mp4", removal)
    assert record["media_action"] == "left alone"
    assert "written again" in record["error"]


def test_deleting_an_old_version_leaves_the_current_ones_media(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    function = function_with(settings, captured_log, "delete")
    old_event = created(stack.bucket, "versions.mp4", "0A")
    old = imported(function, old_event, captured_log)
    current = imported(function, created(stack.bucket, "versions.mp4", "0B"), captured_log)
    old_version = old_event["Records"][0]["s3"]["object"]["versionId"]

    event = deleted(stack.bucket, "versions.mp4", "0C", version_id=old_version)
    deliver(function, event, captured_log)

    assert not media(wistia_emulator, old)["deleted"]
    assert not media(wistia_emulator, current)["deleted"]
    assert "still has a current version" in deletion_record(stack, "versions.mp4", event)["error"]


def test_an_object_this_project_never_imported_touches_nothing_at_wistia(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    function = function_with(settings, captured_log, "delete")
    upload(stack.bucket, "never.mp4", VIDEO)  # no event: never imported
    before = len(wistia_emulator.requests())

    event = deleted(stack.bucket, "never.mp4", "0B")
    deliver(function, event, captured_log)

    assert len(wistia_emulator.requests()) == before
    assert deletion_record(stack, "never.mp4", event)["media_action"] == "left alone"


def test_keep_records_the_deletion_and_leaves_wistia_alone(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    function = function_with(settings, captured_log, "keep")
    hashed_id = imported(function, created(stack.bucket, "kept.mp4", "0A"), captured_log)
    before = len(wistia_emulator.requests())

    event = deleted(stack.bucket, "kept.mp4", "0B")
    deliver(function, event, captured_log)

    assert len(wistia_emulator.requests()) == before
    assert not media(wistia_emulator, hashed_id)["deleted"]
    assert deletion_record(stack, "kept.mp4", event)["media_action"] == "kept"


def test_a_token_without_delete_rights_is_one_clear_dead_letter(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    # Given the media was imported, then the token lost its delete rights
    function = function_with(settings, captured_log, "delete")
    hashed_id = imported(function, created(stack.bucket, "rights.mp4", "0A"), captured_log)
    wistia_emulator.set_tokens(rights={TOKEN: "upload"})

    # When the object is deleted
    event = deleted(stack.bucket, "rights.mp4", "0B")
    answer = deliver(function, event, captured_log)  # the invocation succeeds: no retries

    # Then one dead letter says what the token lacks, and can be redriven as it came
    assert answer["results"][0]["status"] == "FAILED"
    [letter] = drain(stack.queue_url)
    assert "read, update and delete rights" in letter["reason"]
    assert letter["http_status"] == 401
    assert letter["source_event"] == event["Records"][0]
    assert not media(wistia_emulator, hashed_id)["deleted"]
    assert deletion_record(stack, "rights.mp4", event)["status"] == "FAILED"
    assert TOKEN not in captured_log.text()


def test_wistia_unavailable_hands_the_deletion_back(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    function = function_with(settings, captured_log, "delete")
    hashed_id = imported(function, created(stack.bucket, "later.mp4", "0A"), captured_log)
    wistia_emulator.add_fault(
        Fault(kind="status", status=503, count=1, match_method="DELETE", match_path="/v1/medias/*")
    )
    event = deleted(stack.bucket, "later.mp4", "0B")

    with pytest.raises(RetryableError, match="503"):
        deliver(function, event, captured_log)
    deliver(function, event, captured_log)  # Lambda's retry

    assert media(wistia_emulator, hashed_id)["deleted"] is True
    assert deletion_record(stack, "later.mp4", event)["media_action"] == "deleted"


def test_a_429_to_the_deletion_pauses_the_whole_accounts_budget(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    # Given an imported object, and Wistia about to throttle the archive
    function = function_with(settings, captured_log, "archive")
    imported(function, created(stack.bucket, "throttled.mp4", "0A"), captured_log)
    wistia_emulator.add_fault(
        Fault(kind="rate_limit", count=1, retry_after=30, match_method="PUT", match_path="/*")
    )
    event = deleted(stack.bucket, "throttled.mp4", "0B")

    # When its deletion is followed and Wistia answers 429, Retry-After 30
    with pytest.raises(RetryableError, match="429"):
        deliver(function, event, captured_log)

    # Then every caller of the account is paused (the budget's table), not only this one
    paused_until = budget_times(stack)["paused_until"]
    assert time.time() + 25 < paused_until <= time.time() + 30


def test_while_the_budget_is_paused_a_deletion_asks_wistia_nothing_and_comes_back(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    # Given an imported object, and the account's budget paused for a minute by a 429
    # another caller saw
    function = function_with(settings, captured_log, "delete")
    hashed_id = imported(function, created(stack.bucket, "paused.mp4", "0A"), captured_log)
    asked = len(wistia_emulator.requests())
    DynamoDBSchedule(boto3.client("dynamodb"), stack.resources["RateBudgetTable"]).pause(
        time.time() + 60
    )
    event = deleted(stack.bucket, "paused.mp4", "0B")

    # When its deletion arrives in an invocation that ends before the pause does
    function = function_with(settings, captured_log, "delete")  # a new environment
    with pytest.raises(RetryableError, match="request budget"):
        handle_event(
            event,
            LambdaContext(timeout_seconds=5),
            function.importer,
            function.dead_letters,
            captured_log.logger,
            function.removals,
        )

    # Then Wistia was asked nothing and the media is still there; once the pause is over
    # (the item gone here), the retry deletes it
    assert len(wistia_emulator.requests()) == asked
    assert media(wistia_emulator, hashed_id)["deleted"] is False
    forget_budget(stack)
    deliver(function_with(settings, captured_log, "delete"), event, captured_log)
    assert media(wistia_emulator, hashed_id)["deleted"] is True


def test_a_refused_deletion_is_redriven_once_the_token_may_delete(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    # Given a deletion dead-lettered for the token's rights
    function = function_with(settings, captured_log, "delete")
    hashed_id = imported(function, created(stack.bucket, "redrive.mp4", "0A"), captured_log)
    wistia_emulator.set_tokens(rights={TOKEN: "upload"})
    event = deleted(stack.bucket, "redrive.mp4", "0B")
    deliver(function, event, captured_log)

    # When the token gets its rights back and the queue is redriven
    wistia_emulator.set_tokens(TOKEN)

    def invoke(redriven: dict[str, Any]) -> Invocation:
        deliver(function, redriven, captured_log)
        return Invocation(ok=True)

    queue = DeadLetterQueue(boto3.client("sqs"), stack.queue_url, wait_seconds=0)
    records = Records(boto3.client("dynamodb"), stack.table_name)
    summary = run(queue, records, invoke, lambda line: None)

    # Then the deletion is followed, and the queue is empty
    assert summary.redriven == 1
    assert media(wistia_emulator, hashed_id)["deleted"] is True
    assert deletion_record(stack, "redrive.mp4", event)["media_action"] == "deleted"
    assert drain(stack.queue_url) == []


def test_unversioned_the_same_bytes_uploaded_after_the_deletion_are_imported_again(
    moto_server: Any, wistia_emulator: WistiaEmulator, captured_log: Any
) -> None:
    # Given an unversioned bucket (the user's own), whose object was imported
    name = f"their-media-{uuid.uuid4().hex[:8]}"
    stack = provision(token=TOKEN, parameters={"ExistingBucketName": name, "OnDelete": "delete"})
    settings = Settings.from_env(stack.environment_for(wistia_emulator.url))
    function = function_with(settings, captured_log, "delete")
    first = imported(function, created(stack.bucket, "same.mp4", "0A"), captured_log)

    # When it is deleted, its media with it, and the very same bytes are uploaded again
    deliver(function, deleted(stack.bucket, "same.mp4", "0B"), captured_log)
    second = imported(function, created(stack.bucket, "same.mp4", "0C"), captured_log)

    # Then the key has a new media (same ETag, same record, imported again), the old is gone
    assert second != first
    assert media(wistia_emulator, first)["deleted"] is True
    assert not media(wistia_emulator, second)["deleted"]


def test_a_refusal_that_quotes_the_token_leaves_it_out_of_the_dead_letter_and_record(
    stack: Stack, settings: Settings, captured_log: Any, wistia_emulator: WistiaEmulator
) -> None:
    function = function_with(settings, captured_log, "delete")
    imported(function, created(stack.bucket, "echo.mp4", "0A"), captured_log)
    wistia_emulator.add_fault(
        Fault(
            kind="status",
            status=422,
            body=f'{{"error": "cannot delete with Bearer {TOKEN}"}}',
            content_type="application/json",
            match_method="DELETE",
            match_path="/v1/medias/*",
        )
    )

    event = deleted(stack.bucket, "echo.mp4", "0B")
    deliver(function, event, captured_log)

    [letter] = drain(stack.queue_url)
    assert "cannot delete" in letter["reason"]
    record = deletion_record(stack, "echo.mp4", event)
    assert TOKEN not in json.dumps(letter) + json.dumps(record, default=str)
