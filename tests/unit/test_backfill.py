"""The backfill function's logic against in-memory fakes: the S3 Batch Operations event and
answer, the result codes, the keys a manifest may hold, the job's userArguments, exactly one
import across events and backfills, and the pace that keeps it inside Wistia's budget."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import S3BatchOperationEvent

from s3_to_wistia.backfill import (
    BACKFILL_MAX_ATTEMPTS,
    BackfillSettings,
    Task,
    handle_batch_event,
    key_candidates,
    read_task,
    run_task,
)
from s3_to_wistia.config import ConfigError
from s3_to_wistia.contracts import DeadLetterMessage
from s3_to_wistia.errors import RetryableError, UnsupportedEvent
from s3_to_wistia.events import parse_notification
from s3_to_wistia.model import ObjectInfo, ObjectRef
from s3_to_wistia.pacing import Pace, PacedWistia
from unit.fakes import SETTINGS, Clock, World, ok, status, world

BUCKET = "media"
BACKFILL = replace(SETTINGS, max_attempts=BACKFILL_MAX_ATTEMPTS)
LIMIT = "This account has exceeded its video limit. Please upgrade to upload more videos."


def batch_event(
    key: str,
    *,
    version: str | None = None,
    schema: str = "2.0",
    arguments: dict[str, str] | None = None,
    task_id: str = "dGFzazE",
) -> dict[str, Any]:
    """The event S3 Batch Operations sends for one task (AWS's documented shapes)."""
    task: dict[str, Any] = {"taskId": task_id, "s3Key": key, "s3VersionId": version}
    job: dict[str, Any] = {"id": "job-1"}
    if schema == "1.0":
        task["s3BucketArn"] = f"arn:aws:s3:::{BUCKET}"
    else:
        task["s3Bucket"] = BUCKET
        if arguments is not None:
            job["userArguments"] = arguments
    return {
        "invocationSchemaVersion": schema,
        "invocationId": "aW52b2NhdGlvbg",
        "job": job,
        "tasks": [task],
    }


def task_of(key: str, **options: Any) -> Task:
    return read_task(S3BatchOperationEvent(batch_event(key, **options)))


def backfill_world(*imports: Any) -> World:
    return world(list(imports), settings=BACKFILL)


def put(
    w: World,
    key: str,
    size: int = 1000,
    etag: str = '"etag"',
    version: str | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """An object as a HEAD describes it (ETag quoted, as S3 sends it)."""
    info = ObjectInfo(size, "video/mp4", metadata or {}, etag=etag, version_id=version)
    w.objects.objects[key] = info


def backfill(w: World, key: str, **options: Any) -> tuple[str, str]:
    return run_task(task_of(key, **options), w.importer, w.log, w.clock() + 60)


def event_ref(key: str, etag: str = "etag", version: str | None = None) -> ObjectRef:
    """The object as an S3 notification names it (ETag unquoted)."""
    record = {"eventSource": "aws:s3", "s3": {"object": {"key": key}}}
    return ObjectRef(BUCKET, key, version, etag, 1000, record)


# --- the event and the answer ------------------------------------------------------------------


def test_schema_1_names_the_bucket_by_arn_and_carries_no_user_arguments() -> None:
    task = task_of("clips/a.mp4", schema="1.0")

    assert (task.bucket, task.raw_key, task.version_id, task.schema) == (
        BUCKET,
        "clips/a.mp4",
        None,
        "1.0",
    )
    assert task.user_arguments == {}


def test_schema_2_names_the_bucket_and_carries_the_jobs_user_arguments() -> None:
    task = task_of("clips/a.mp4", version="v7", arguments={"project_id": "p1"})

    assert (task.bucket, task.version_id) == (BUCKET, "v7")
    assert task.user_arguments == {"project_id": "p1"}


@pytest.mark.parametrize("version", [None, "", "null"])
def test_a_task_without_a_real_version_is_identified_by_etag(version: str | None) -> None:
    assert task_of("a.mp4", version=version).version_id is None


@pytest.mark.parametrize(
    ("event", "words"),
    [
        ({"Records": []}, "not an S3 Batch Operations event"),
        ({**batch_event("a.mp4"), "invocationSchemaVersion": "3.0"}, "is not 1.0 or 2.0"),
        ({**batch_event("a.mp4"), "tasks": []}, "this event has 0"),
        ({**batch_event("a.mp4"), "tasks": batch_event("a")["tasks"] * 2}, "this event has 2"),
        (batch_event(""), "names no bucket or no key"),
    ],
)
def test_anything_but_one_task_of_a_known_schema_is_refused(
    event: dict[str, Any], words: str
) -> None:
    with pytest.raises(UnsupportedEvent, match=words):
        read_task(S3BatchOperationEvent(event))


@dataclass
class Context:
    remaining_seconds: float

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


def test_the_answer_echoes_the_invocation_and_holds_exactly_one_result() -> None:
    w = backfill_world(ok("m1"))
    put(w, "clips/a.mp4")
    # The handler reads the wall clock; give the fake clock's deadline a minute from it.
    context = Context(w.clock() + 60 - time.time())
    event = batch_event("clips/a.mp4")

    answer = handle_batch_event(S3BatchOperationEvent(event), context, w.importer, w.log)

    assert answer == {
        "invocationSchemaVersion": "2.0",
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [
            {
                "taskId": "dGFzazE",
                "resultCode": "Succeeded",
                "resultString": "SUBMITTED: imported into Wistia as media m1",
            }
        ],
    }


def test_an_event_that_is_not_a_batch_event_fails_the_invocation_and_says_why() -> None:
    w = backfill_world()

    with pytest.raises(UnsupportedEvent):
        handle_batch_event(
            S3BatchOperationEvent({"hello": "world"}), Context(60), w.importer, w.log
        )

    assert w.wistia.forms == []
    assert "unsupported event: nothing imported" in w.log.messages()


# --- keys as manifests hold them -------------------------------------------------------------


def test_a_key_is_decoded_first_and_tried_as_written_last() -> None:
    assert key_candidates("red+flower%20%282%29.mp4") == [
        "red flower (2).mp4",
        "red+flower (2).mp4",
        "red+flower%20%282%29.mp4",
    ]
    assert key_candidates("plain/key.mp4") == ["plain/key.mp4"]


@pytest.mark.parametrize(
    ("in_bucket", "in_manifest"),
    [
        ("with space.mp4", "with%20space.mp4"),
        ("with space.mp4", "with+space.mp4"),
        ("plus+sign.mp4", "plus%2Bsign.mp4"),
        (
            "ünïcødé/日本語 ファイル.mp4",
            "%C3%BCn%C3%AFc%C3%B8d%C3%A9/%E6%97%A5%E6%9C%AC%E8%AA%9E%20%E3%83%95%E3%82%A1%E3%82%A4%E3%83%AB.mp4",
        ),
        # Written by hand, not encoded: the key as written is the one that exists
        ("plus+sign.mp4", "plus+sign.mp4"),
        ("percent%41literal.mp4", "percent%41literal.mp4"),
        ("100% done.mp4", "100% done.mp4"),
    ],
)
def test_the_object_is_found_whether_the_manifest_encoded_its_key_or_not(
    in_bucket: str, in_manifest: str
) -> None:
    w = backfill_world(ok("m1"))
    put(w, in_bucket)

    code, message = backfill(w, in_manifest)

    assert (code, message) == ("Succeeded", "SUBMITTED: imported into Wistia as media m1")
    assert w.records.record(event_ref(in_bucket)).object_key == in_bucket


def test_an_object_gone_since_the_manifest_was_made_succeeds_as_skipped_without_a_record() -> None:
    w = backfill_world()

    code, message = backfill(w, "deleted.mp4")

    assert code == "Succeeded"
    assert message.startswith("SKIPPED: no such object in the bucket")
    assert w.records.items == {} and w.wistia.forms == []


def test_a_version_gone_since_the_manifest_was_made_is_recorded_skipped() -> None:
    w = backfill_world()

    code, message = backfill(w, "deleted.mp4", version="v1")

    assert (code, message) == (
        "Succeeded",
        "SKIPPED: the object was deleted before it could be imported",
    )
    assert w.records.record(event_ref("deleted.mp4", version="v1")).status == "SKIPPED"


# --- result codes ----------------------------------------------------------------------------


def test_a_zero_byte_object_succeeds_as_skipped_without_calling_wistia() -> None:
    w = backfill_world()
    put(w, "empty.mp4", size=0)

    assert backfill(w, "empty.mp4") == ("Succeeded", "SKIPPED: zero-byte object")
    assert w.wistia.forms == []


def test_a_refused_import_is_a_permanent_failure_with_its_dead_letter_sent_first() -> None:
    w = backfill_world(status(400, f'{{"error": "{LIMIT}"}}'))
    put(w, "clips/one too many.mp4")

    code, message = backfill(w, "clips/one%20too%20many.mp4")

    assert code == "PermanentFailure"
    assert message == f"FAILED: {LIMIT}; sent to the dead-letter queue"
    [letter] = w.dead_letters.sent
    assert (letter["object_key"], letter["object_version"]) == ("clips/one too many.mp4", "etag")
    # The dead letter redrives through the import function like any S3 event
    redriven = DeadLetterMessage.from_body(letter)
    assert redriven is not None
    [again] = parse_notification(redriven.redrive_event()).objects
    assert (again.bucket, again.key, again.version) == (BUCKET, "clips/one too many.mp4", "etag")
    assert w.records.record(event_ref("clips/one too many.mp4")).status == "FAILED"


@pytest.mark.parametrize(
    "answer",
    [status(429, "Rate limit exceeded", retry_after="30"), status(503, "down"), status(500)],
)
def test_a_429_or_5xx_is_a_temporary_failure_at_once_without_sleeping(answer: Any) -> None:
    w = backfill_world(answer)
    put(w, "clips/a.mp4")

    code, message = backfill(w, "clips/a.mp4")

    assert code == "TemporaryFailure"
    assert message.startswith("will be retried: ")
    assert w.clock.slept == []
    assert len(w.wistia.forms) == 1
    # Handed back: S3's retry of the task claims it again
    assert w.records.record(event_ref("clips/a.mp4")).status == "PENDING_RETRY"
    assert backfill_world_retry(w) == ("Succeeded", "SUBMITTED: imported into Wistia as media m2")


def backfill_world_retry(w: World) -> tuple[str, str]:
    w.wistia.imports[:] = [ok("m2")]
    return backfill(w, "clips/a.mp4")


def test_an_object_another_invocation_holds_to_the_end_is_a_temporary_failure() -> None:
    # The task waits for the holder as an event's delivery does; one that never finishes
    # within the task's time leaves it to S3 to run the task again.
    w = backfill_world()
    put(w, "clips/a.mp4")
    w.records.claim(event_ref("clips/a.mp4"), lease_until=w.clock() + 3600)

    code, message = backfill(w, "clips/a.mp4")

    assert code == "TemporaryFailure"
    assert "another invocation is importing this object version" in message
    assert w.wistia.forms == []


def test_the_result_string_holds_no_credential_and_stays_short() -> None:
    quoted = "https://media.s3.example/a.mp4?X-Amz-Signature=secret-signature " + "x" * 3000
    w = backfill_world(status(400, f'{{"error": "{quoted}"}}'))
    put(w, "a.mp4")
    context = Context(w.clock() + 60 - time.time())

    answer = handle_batch_event(
        S3BatchOperationEvent(batch_event("a.mp4")), context, w.importer, w.log
    )

    text = answer["results"][0]["resultString"]
    assert "secret-signature" not in text
    assert len(text) <= 1100


# --- exactly once, whichever comes first -----------------------------------------------------


def test_an_object_an_event_imported_is_not_imported_again_by_a_backfill() -> None:
    w = backfill_world(ok("m1"))
    put(w, "clips/a b.mp4", etag='"etag"')
    w.importer.import_object(event_ref("clips/a b.mp4", etag="etag"), w.clock() + 60)

    code, message = backfill(w, "clips/a%20b.mp4")

    assert (code, message) == (
        "Succeeded",
        "already handled earlier (SUBMITTED): not imported again",
    )
    assert len(w.wistia.forms) == 1


def test_an_object_a_backfill_imported_is_not_imported_again_by_its_event() -> None:
    w = backfill_world(ok("m1"))
    put(w, "clips/a.mp4", version="v3")

    assert backfill(w, "clips/a.mp4")[0] == "Succeeded"
    outcome = w.importer.import_object(event_ref("clips/a.mp4", version="v3"), w.clock() + 60)

    assert outcome.earlier
    assert len(w.wistia.forms) == 1
    assert w.records.record(event_ref("clips/a.mp4", version="v3")).wistia_hashed_id == "m1"


def test_an_object_that_failed_for_good_earlier_is_not_retried_by_a_backfill() -> None:
    w = backfill_world(status(400, '{"error": "nope"}'))
    put(w, "a.mp4")
    assert backfill(w, "a.mp4")[0] == "PermanentFailure"

    code, message = backfill(w, "a.mp4")

    assert code == "Succeeded"
    assert message == (
        "already handled earlier (FAILED): not imported again; its dead letter says why"
    )
    assert len(w.wistia.forms) == 1 and len(w.dead_letters.sent) == 1


# --- the job's userArguments -----------------------------------------------------------------


def test_a_backfill_asks_wistia_for_low_priority_unless_the_job_says_otherwise() -> None:
    low, normal, event = backfill_world(), backfill_world(), backfill_world()
    for w in (low, normal, event):
        put(w, "a.mp4")

    backfill(low, "a.mp4")
    backfill(normal, "a.mp4", arguments={"low_priority": "FALSE"})
    event.importer.import_object(event_ref("a.mp4"), event.clock() + 60)

    assert low.wistia.forms[0]["low_priority"] == "true"
    assert "low_priority" not in normal.wistia.forms[0]
    # The event path's form is as it always was
    assert set(event.wistia.forms[0]) == {"url", "name"}


def test_schema_1_backfills_are_low_priority_too() -> None:
    w = backfill_world()
    put(w, "a.mp4")

    backfill(w, "a.mp4", schema="1.0")

    assert w.wistia.forms[0]["low_priority"] == "true"


def test_the_jobs_project_is_used_unless_the_object_names_its_own() -> None:
    w = backfill_world()
    put(w, "job.mp4")
    put(w, "own.mp4", metadata={"wistia-project-id": "own-project"})

    backfill(w, "job.mp4", arguments={"project_id": " job-project "})
    backfill(w, "own.mp4", arguments={"project_id": "job-project"})

    assert [form.get("project_id") for form in w.wistia.forms] == ["job-project", "own-project"]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"projectid": "p1"}, "unknown userArguments projectid"),
        ({"low_priority": "maybe"}, "low_priority must be true or false, not 'maybe'"),
    ],
)
def test_unusable_user_arguments_fail_the_task_for_good_before_anything_is_imported(
    arguments: dict[str, str], words: str
) -> None:
    w = backfill_world()
    put(w, "a.mp4")

    code, message = backfill(w, "a.mp4", arguments=arguments)

    assert code == "PermanentFailure"
    assert words in message
    assert w.wistia.forms == [] and w.records.items == {}


# --- keeping to the budget -------------------------------------------------------------------


def test_the_pace_spaces_calls_one_interval_apart_and_never_waits_past_a_deadline() -> None:
    clock = Clock()
    pace = Pace(0.5, burst=1, clock=clock, sleep=clock.sleep)

    pace.wait()
    pace.wait()
    pace.wait()

    assert clock.slept == [0.5, 0.5]
    with pytest.raises(RetryableError, match="no turn to call Wistia before"):
        pace.wait(deadline=clock() + 0.1)
    assert clock.slept == [0.5, 0.5]


def test_a_turn_not_taken_may_be_taken_late_but_never_more_than_the_burst() -> None:
    clock = Clock()
    pace = Pace(1.0, burst=2, clock=clock, sleep=clock.sleep)
    pace.wait()

    clock.now += 10  # ten seconds without a Wistia call (tasks already done, say)
    for _ in range(4):
        pace.wait()

    # Two at once (the turn that was due, and one made up), then one a second again
    assert clock.slept == [1.0, 1.0]


def test_a_paced_backfill_that_cannot_have_its_turn_in_time_is_a_temporary_failure() -> None:
    w = backfill_world()
    put(w, "a.mp4")
    pace = Pace(120.0, burst=1, clock=w.clock, sleep=w.clock.sleep)
    pace.wait()  # another invocation of this environment just took the turn
    w.importer.wistia = PacedWistia(w.wistia, pace)

    code, message = backfill(w, "a.mp4")

    assert code == "TemporaryFailure"
    assert "keeps to its share of the account's rate" in message
    assert w.wistia.forms == [] and w.clock.slept == []


def test_the_backfill_settings_split_the_rate_among_its_instances() -> None:
    settings = BackfillSettings.from_env(
        {"BACKFILL_REQUESTS_PER_MINUTE": "300", "BACKFILL_CONCURRENCY": "5"}
    )

    assert settings.pace_interval == 1.0
    assert BackfillSettings.from_env({}) == BackfillSettings(240, 3)


@pytest.mark.parametrize("value", ["0", "-1", "fast"])
def test_a_bad_backfill_setting_fails_the_cold_start_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match="BACKFILL_CONCURRENCY"):
        BackfillSettings.from_env({"BACKFILL_CONCURRENCY": value})
