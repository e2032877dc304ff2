"""The import function end to end: moto's server for AWS and the Wistia emulator over real
HTTP. The emulator really fetches the presigned URL the function signs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.events import (
    eventbridge_event,
    s3_notification,
    sqs_batch,
    upload,
)
from local_stack.harness import CapturedLogger, LambdaContext, all_records, drain, record_of
from local_stack.template import Stack
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.events import parse_notification
from s3_to_wistia.importing import Importer
from wistia_emulator import Fault, WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def deliver(event: Any, importer: Importer, log: CapturedLogger, timeout: float = 30.0) -> dict:
    return handle_event(
        event, LambdaContext(timeout_seconds=timeout), importer, importer.dead_letters, log.logger
    )


def test_a_new_object_is_imported_fetched_by_wistia_and_recorded(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given a video uploaded with spaces and brackets in its key
    obj = upload(stack.bucket, "launch/Product Demo (2026).mp4", VIDEO)

    # When S3 notifies the function
    answer = deliver(s3_notification(obj), importer, captured_log)

    # Then Wistia received one import, named after the file, and fetched the exact bytes
    assert answer["results"] == [
        {
            "object": f"s3://{stack.bucket}/{obj.key}",
            "version": obj.version_id,
            "status": "SUBMITTED",
        }
    ]
    assert wistia_emulator.wait_until_settled(timeout=10)
    [media] = wistia_emulator.medias()
    assert media["name"] == "Product Demo (2026).mp4"
    assert media["status"] == "ready"
    assert media["bytes"] == len(VIDEO)
    [request] = wistia_emulator.requests()
    assert request["auth"] == "bearer"
    # And the record holds Wistia's answer, the URL without its signature, and its expiry
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert record["status"] == "SUBMITTED"
    assert record["wistia_hashed_id"] == media["hashed_id"]
    assert record["wistia_response"]["hashed_id"] == media["hashed_id"]
    assert record["wistia_media_id"] == media["id"]
    assert record["object_key"] == obj.key
    assert "?" not in record["source_url"]
    assert record["source_url"].endswith("/launch/Product%20Demo%20%282026%29.mp4")
    expires = (
        time.mktime(time.strptime(record["url_expires_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    )
    assert abs(expires - (time.time() + 21600)) < 60


def test_sqs_batch_imports_each_message_and_ignores_s3_test_events(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given three uploads delivered through SQS, with S3's test event and an unreadable body
    objects = [upload(stack.bucket, f"batch/clip {i}.mov", VIDEO) for i in range(3)]
    bodies = [json.dumps(s3_notification(obj)) for obj in objects]
    test_event = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket}
    )
    event = sqs_batch(*bodies, test_event, "this is not json")

    # When the batch is handled
    answer = deliver(event, importer, captured_log)

    # Then nothing is handed back for redelivery, every object is submitted once,
    # and the unreadable message waits in the dead-letter queue with its reason
    assert answer == {"batchItemFailures": []}
    assert sorted(m["name"] for m in wistia_emulator.medias()) == [
        "clip 0.mov",
        "clip 1.mov",
        "clip 2.mov",
    ]
    statuses = {r["object_key"]: r["status"] for r in all_records(stack.table_name)}
    assert statuses == {obj.key: "SUBMITTED" for obj in objects}
    [dead] = drain(stack.queue_url)
    assert "not JSON" in dead["reason"]
    assert dead["source_event"]["body"] == "this is not json"


def test_sqs_batch_hands_back_only_the_messages_that_must_be_retried(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given one object that another invocation is importing right now (its claim is held)
    good, busy = (upload(stack.bucket, f"b/{name}.mp4", VIDEO) for name in ("good", "busy"))
    [busy_ref] = parse_notification(s3_notification(busy)).objects
    importer.records.claim(busy_ref, lease_until=time.time() + 1)
    event = sqs_batch(json.dumps(s3_notification(busy)), json.dumps(s3_notification(good)))

    # When the batch is handled
    answer = deliver(event, importer, captured_log)

    # Then exactly the busy object's message is handed back, and the other was submitted
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert [m["name"] for m in wistia_emulator.medias()] == ["good.mp4"]
    # And when SQS redelivers it after the other invocation's lease ran out, it is imported
    time.sleep(1.1)
    retry = {"Records": event["Records"][:1]}
    assert deliver(retry, importer, captured_log) == {"batchItemFailures": []}
    assert sorted(m["name"] for m in wistia_emulator.medias()) == ["busy.mp4", "good.mp4"]


def test_eventbridge_object_created_event_is_imported(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    obj = upload(stack.bucket, "eb/Q4 review+notes.mp4", VIDEO)

    deliver(eventbridge_event(obj), importer, captured_log)

    [media] = wistia_emulator.medias()
    assert media["name"] == "Q4 review+notes.mp4"
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "SUBMITTED"


@pytest.mark.parametrize(
    "key",
    [
        "clips/C++ talk 100% final.mov",
        "日本/café déjà vu.MP4",
        "a/b/c/deep path/with  two spaces.mkv",
        "symbols/!$&'()*,;=@[]~ #{}^`|.mp4",
        "quotes/\"quoted\" and 'single'.webm",
    ],
)
def test_awkward_keys_round_trip_to_the_exact_object(
    key: str,
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given an object whose key needs encoding everywhere
    obj = upload(stack.bucket, key, VIDEO)

    # When its (URL-encoded) notification is handled
    deliver(s3_notification(obj), importer, captured_log)

    # Then Wistia fetched exactly that object through the presigned URL
    assert wistia_emulator.wait_until_settled(timeout=10)
    [media] = wistia_emulator.medias()
    assert media["status"] == "ready", media.get("error")
    assert media["bytes"] == len(VIDEO)
    assert media["name"] == key.rsplit("/", 1)[-1]
    assert record_of(stack.table_name, stack.bucket, key, obj.version_id or "") is not None


def test_folder_markers_empty_and_filtered_objects_are_skipped_with_reasons(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    folder = upload(stack.bucket, "incoming/", b"")
    empty = upload(stack.bucket, "incoming/empty.mp4", b"")
    notes = upload(stack.bucket, "incoming/notes.txt", b"not a video")

    answer = deliver(s3_notification(folder, empty, notes), importer, captured_log)

    assert [r["status"] for r in answer["results"]] == ["SKIPPED"] * 3
    assert wistia_emulator.requests() == []
    reasons = {r["object_key"]: r["error"] for r in all_records(stack.table_name)}
    assert reasons == {
        "incoming/": "folder marker (key ends with '/')",
        "incoming/empty.mp4": "zero-byte object",
        "incoming/notes.txt": "extension 'txt' is not in the import filter",
    }
    assert drain(stack.queue_url) == []


def test_extension_filter_is_case_insensitive_and_configurable(
    stack: Stack,
    settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    importer = importer_for(settings, extensions=frozenset({"mov"}))
    upper = upload(stack.bucket, "HOLIDAY.MOV", VIDEO)
    mp4 = upload(stack.bucket, "holiday.mp4", VIDEO)

    answer = deliver(s3_notification(upper, mp4), importer, captured_log)

    assert [r["status"] for r in answer["results"]] == ["SUBMITTED", "SKIPPED"]


def test_an_object_deleted_before_the_event_is_skipped_not_imported(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    obj = upload(stack.bucket, "gone/soon.mp4", VIDEO)
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key=obj.key, VersionId=obj.version_id)

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "SKIPPED"
    assert wistia_emulator.requests() == []
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert "deleted" in record["error"]


def test_user_metadata_overrides_name_description_and_project(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given a project that exists at Wistia, named by the object's metadata
    seed = upload(stack.bucket, "seed.mp4", VIDEO)
    deliver(s3_notification(seed), importer, captured_log)
    project = wistia_emulator.medias()[0]["project_id"]
    obj = upload(
        stack.bucket,
        "meta/raw_0042.mp4",
        VIDEO,
        metadata={
            "wistia-name": "Keynote",
            "wistia-description": "Day one",
            "wistia-project-id": project,
        },
    )

    deliver(s3_notification(obj), importer, captured_log)

    media = next(m for m in wistia_emulator.medias() if m["name"] == "Keynote")
    assert media["description"] == "Day one"
    assert media["project_id"] == project


@pytest.mark.parametrize("error_style", ["legacy", "current"])
def test_video_limit_sends_one_dead_letter_and_the_invocation_succeeds(
    error_style: str,
    stack: Stack,
    settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
) -> None:
    # Given an account already at its video limit, answering in either body shape
    with WistiaEmulator(tokens=("test-token",), video_limit=0, error_style=error_style) as emulator:
        importer = importer_for(settings, upload_url=emulator.url)
        obj = upload(stack.bucket, "over/limit.mp4", VIDEO)
        event = s3_notification(obj)

        # When the object's event arrives twice
        first = deliver(event, importer, captured_log)
        second = deliver(event, importer, captured_log)
        requests = emulator.requests()

    # Then the invocations succeed, the record is FAILED with Wistia's words,
    # and exactly one dead letter carries what a redrive needs
    assert first["results"][0]["status"] == "FAILED"
    assert second["results"][0]["status"] == "FAILED"
    [dead] = drain(stack.queue_url)
    assert "video limit" in dead["reason"]
    assert dead["http_status"] == 400
    assert dead["retryable"] is False
    assert dead["attempts"] == 1
    assert dead["bucket"] == stack.bucket and dead["object_key"] == obj.key
    assert dead["object_version"] == obj.version_id
    assert dead["source_event"] == event["Records"][0]
    assert dead["wistia_error"]["error"]
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert record["status"] == "FAILED"
    assert "video limit" in record["error"]
    assert len(requests) == 1


def test_a_wrong_token_is_a_permanent_failure_after_one_fresh_read(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    wistia_emulator.set_tokens("some-other-token")
    obj = upload(stack.bucket, "auth/denied.mp4", VIDEO)

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "FAILED"
    [dead] = drain(stack.queue_url)
    assert dead["http_status"] == 401
    assert "token" in dead["reason"]
    # one try with the cached token, one after reading the secret again
    assert [r["status"] for r in wistia_emulator.requests()] == [401, 401]


def test_a_rotated_token_is_picked_up_without_a_restart(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given the function has cached the first token
    deliver(s3_notification(upload(stack.bucket, "rot/one.mp4", VIDEO)), importer, captured_log)
    # When the token is rotated at Wistia and in the secret
    wistia_emulator.set_tokens("rotated-token")
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.secret_id, SecretString=json.dumps({"token": "rotated-token"})
    )
    answer = deliver(
        s3_notification(upload(stack.bucket, "rot/two.mp4", VIDEO)), importer, captured_log
    )

    # Then the next import succeeds with the new token, and nothing is dead-lettered
    assert answer["results"][0]["status"] == "SUBMITTED"
    assert drain(stack.queue_url) == []


def test_wistia_outage_is_retried_with_backoff_then_succeeds(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    wistia_emulator.add_fault(Fault(kind="status", status=503, count=1))
    wistia_emulator.add_fault(Fault(kind="drop", count=1))
    wistia_emulator.add_fault(Fault(kind="rate_limit", retry_after=1, count=1))
    obj = upload(stack.bucket, "flaky/ok.mp4", VIDEO)
    started = time.monotonic()

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "SUBMITTED"
    # Retry-After: 1 was honoured
    assert time.monotonic() - started >= 1.0
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["attempts"] == 4
    assert len(wistia_emulator.medias()) == 1


def test_a_timed_out_import_is_looked_up_by_the_next_delivery_not_resubmitted(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia answers the import after 1 s while the function waits 0.3 s
    importer = importer_for(settings, read_timeout=0.3)
    wistia_emulator.add_fault(Fault(kind="latency", seconds=1.0, count=1))
    obj = upload(stack.bucket, "slow/ok.mp4", VIDEO)
    event = s3_notification(obj)

    # When it times out, the function does not submit again while Wistia may still be
    # creating the media: it hands the event back, remembering the unanswered submission
    with pytest.raises(RetryableError, match="may still be creating"):
        deliver(event, importer, captured_log)
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["unanswered_submits"] == 1
    time.sleep(1.0)  # Lambda's retry comes a minute later; the slow request has finished

    # Then Lambda's retry finds the media the slow request created: one media, recorded
    answer = deliver(event, importer, captured_log)
    assert answer["results"][0]["status"] == "SUBMITTED"
    [media] = wistia_emulator.medias()
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["wistia_hashed_id"] == media["hashed_id"]
    assert record["recovered_lost_answer"] is True


def test_an_outage_longer_than_the_invocation_fails_it_and_the_retry_finishes_the_job(
    stack: Stack,
    settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia answering 500 for longer than this invocation can wait
    importer = importer_for(settings, max_attempts=3)
    importer.sleep = lambda seconds: None
    wistia_emulator.add_fault(Fault(kind="status", status=500, count=3))
    obj = upload(stack.bucket, "outage/long.mp4", VIDEO)
    event = s3_notification(obj)

    # When the event is delivered, the invocation fails so Lambda keeps the event
    with pytest.raises(RetryableError, match="unavailable"):
        deliver(event, importer, captured_log)
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "PENDING_RETRY"
    assert drain(stack.queue_url) == []

    # And Lambda's retry, once Wistia is back, imports it exactly once
    answer = deliver(event, importer, captured_log)
    assert answer["results"][0]["status"] == "SUBMITTED"
    assert len(wistia_emulator.medias()) == 1


def test_deadline_stops_retrying_before_lambda_would_kill_the_invocation(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    wistia_emulator.add_fault(Fault(kind="rate_limit", retry_after=30, count=1))
    obj = upload(stack.bucket, "deadline/x.mp4", VIDEO)
    started = time.monotonic()

    with pytest.raises(RetryableError, match="rate limit"):
        deliver(s3_notification(obj), importer, captured_log, timeout=5)

    assert time.monotonic() - started < 5


def test_duplicate_deliveries_import_once(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    obj = upload(stack.bucket, "dup/once.mp4", VIDEO)
    event = s3_notification(obj)

    results = [deliver(event, importer, captured_log)["results"][0]["status"] for _ in range(3)]

    assert results == ["SUBMITTED", "SUBMITTED", "SUBMITTED"]
    assert len(wistia_emulator.requests()) == 1


def test_concurrent_deliveries_import_once_and_none_is_lost(
    stack: Stack,
    settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    import concurrent.futures

    # Given eight Lambda instances receiving the same event at the same moment,
    # while Wistia answers slowly enough for them to overlap
    wistia_emulator.add_fault(Fault(kind="latency", seconds=0.3, probability=1.0))
    obj = upload(stack.bucket, "race/one.mp4", VIDEO)
    event = s3_notification(obj)
    instances = [importer_for(settings) for _ in range(8)]

    def invoke(importer: Importer) -> str:
        try:
            return str(deliver(event, importer, captured_log)["results"][0]["status"])
        except RetryableError:
            return "RETRY"  # Lambda would deliver it again later

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(invoke, instances))

    # Then Wistia saw one import; the others were duplicates, and none failed its
    # invocation: the one holding the claim finishes the object (an error here would count
    # S3's ordinary duplicate deliveries as function errors)
    assert len(wistia_emulator.requests()) == 1
    assert outcomes.count("SUBMITTED") >= 1
    assert set(outcomes) <= {"SUBMITTED", "IN_PROGRESS"}
    # And any later delivery finds the work done
    for importer in instances:
        assert deliver(event, importer, captured_log)["results"][0]["status"] == "SUBMITTED"
    assert len(wistia_emulator.requests()) == 1


def test_unsupported_events_fail_loudly_and_import_nothing(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    from s3_to_wistia.errors import UnsupportedEvent

    events: list[Any] = [
        {"hello": "world"},
        {"Records": []},
        [],
        {"source": "aws.ec2", "detail": {}},
    ]
    for event in events:
        with pytest.raises(UnsupportedEvent):
            deliver(event, importer, captured_log)

    assert wistia_emulator.requests() == []
    errors = [line for line in captured_log.lines() if line["level"] == "ERROR"]
    assert len(errors) == 4
    assert all("unsupported event" in line["message"] for line in errors)


def test_secrets_and_signatures_never_reach_logs_records_or_messages(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given a run that touches every path: success, retry, and a permanent failure
    wistia_emulator.add_fault(Fault(kind="status", status=503, count=1))
    deliver(s3_notification(upload(stack.bucket, "s/ok.mp4", VIDEO)), importer, captured_log)
    wistia_emulator.set_video_limit(1)
    deliver(s3_notification(upload(stack.bucket, "s/over.mp4", VIDEO)), importer, captured_log)

    # Then the token and any presigned signature appear nowhere a person can read
    readable = "\n".join(
        [
            captured_log.text(),
            json.dumps(all_records(stack.table_name), default=str),
            json.dumps(drain(stack.queue_url)),
        ]
    )
    assert captured_log.text()
    assert "test-token" not in readable
    assert "X-Amz-Signature" not in readable
    assert "X-Amz-Credential" not in readable
    lines = captured_log.lines()
    assert all("bucket" in line and "object_key" in line for line in lines if "reason" in line)


def test_a_lost_answer_is_found_in_wistia_instead_of_importing_twice(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia creates the media but its answer never reaches the function
    importer = importer_for(settings)
    wistia_emulator.add_fault(Fault(kind="drop_after_create", count=1))
    obj = upload(stack.bucket, "lost/answer.mp4", VIDEO)

    # When the function retries
    answer = deliver(s3_notification(obj), importer, captured_log)

    # Then it adopts the media the lost answer created: one media, recorded
    assert answer["results"][0]["status"] == "SUBMITTED"
    [media] = wistia_emulator.medias()
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert record["wistia_hashed_id"] == media["hashed_id"]
    assert record["recovered_lost_answer"] is True
    assert [r["method"] for r in wistia_emulator.requests()] == ["POST", "GET"]


def test_without_the_lookup_a_lost_answer_duplicates_the_media(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # The reason the lookup exists: Wistia has no idempotency key.
    importer = importer_for(settings, lookup_before_resubmit=False)
    wistia_emulator.add_fault(Fault(kind="drop_after_create", count=1))
    obj = upload(stack.bucket, "lost/twice.mp4", VIDEO)

    deliver(s3_notification(obj), importer, captured_log)

    assert len(wistia_emulator.medias()) == 2


def test_a_lost_answer_is_found_by_the_next_invocation_too(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given the first invocation's only attempt lost its answer, and it gave the event back
    importer = importer_for(settings, max_attempts=1)
    wistia_emulator.add_fault(Fault(kind="drop_after_create", count=1))
    obj = upload(stack.bucket, "lost/later.mp4", VIDEO)
    event = s3_notification(obj)
    with pytest.raises(RetryableError):
        deliver(event, importer, captured_log)

    # When Lambda retries the event
    answer = deliver(event, importer, captured_log)

    # Then the retry finds the media instead of creating a second one
    assert answer["results"][0]["status"] == "SUBMITTED"
    assert len(wistia_emulator.medias()) == 1


def test_a_prefix_map_files_objects_into_projects(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given two projects at Wistia, mapped from key prefixes (the longest prefix wins)
    webinars = wistia_emulator.create_project("Webinars")["hashed_id"]
    archive = wistia_emulator.create_project("Webinar archive")["hashed_id"]
    project_map = (("webinars/archive/", archive), ("webinars/", webinars))
    importer = importer_for(settings, project_map=project_map)
    objects = [
        upload(stack.bucket, key, VIDEO)
        for key in ("webinars/q1.mp4", "webinars/archive/2019.mp4", "other/x.mp4")
    ]

    deliver(s3_notification(*objects), importer, captured_log)

    projects = {m["name"]: m["project_id"] for m in wistia_emulator.medias()}
    assert projects["q1.mp4"] == webinars
    assert projects["2019.mp4"] == archive
    assert projects["x.mp4"] not in (webinars, archive)  # Wistia's Uploads_YYYY-MM-DD


def test_long_term_signing_keys_from_a_secret_sign_the_url(
    stack: Stack,
    settings: Settings,
    moto_server: LocalAws,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given an IAM user's keys in a secret, for URLs that outlive the role's credentials
    moto_server.trust_key("AKIALOCALSIGNINGUSER", "signing-user-secret")
    secret = boto3.client("secretsmanager").create_secret(
        Name=f"signing-{stack.bucket}",
        SecretString=json.dumps(
            {"access_key_id": "AKIALOCALSIGNINGUSER", "secret_access_key": "signing-user-secret"}
        ),
    )
    importer = importer_for(
        settings, signing_credentials_secret=secret["ARN"], presigned_url_expires=604800
    )
    obj = upload(stack.bucket, "signed/long.mp4", VIDEO)

    deliver(s3_notification(obj), importer, captured_log)

    # Then Wistia fetched a URL signed by that user, valid for the 7 days asked
    assert wistia_emulator.wait_until_settled(timeout=10)
    [media] = wistia_emulator.medias()
    assert media["status"] == "ready"
    assert "X-Amz-Credential=AKIALOCALSIGNINGUSER" in media["source_url"]
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    expires = datetime.strptime(record["url_expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(expires.replace(tzinfo=UTC).timestamp() - (time.time() + 604800)) < 60
    assert "signing-user-secret" not in captured_log.text()
