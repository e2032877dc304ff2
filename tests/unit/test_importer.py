"""The whole Importer against in-memory fakes: every way an object can end, in microseconds."""

from __future__ import annotations

import json

import pytest

from s3_to_wistia.contracts import RecordFields
from s3_to_wistia.errors import PermanentError, RetryableError
from s3_to_wistia.model import ObjectRef, Outcome, Status
from s3_to_wistia.policy import SETTLE_SECONDS
from s3_to_wistia.times import iso
from unit.fakes import SETTINGS, World, dropped_after_sending, obj, ok, status, timeout, world

LIMIT = "This account has exceeded its video limit. Please upgrade to upload more videos."
DEADLINE_SECONDS = 60.0


def run(
    w: World, ref: ObjectRef | None = None, deadline_seconds: float = DEADLINE_SECONDS
) -> Outcome:
    ref = ref or obj()
    if ref.key not in w.objects.objects:
        w.objects.put(ref.key)
    return w.importer.import_object(ref, w.clock() + deadline_seconds)


def test_a_media_object_is_submitted_once_and_recorded_without_the_signature() -> None:
    w = world([ok("m1")])

    outcome = run(w)

    assert (outcome.status, outcome.detail) == (Status.SUBMITTED, "m1")
    record = w.records.record(obj())
    assert record.status == "SUBMITTED"
    assert record.wistia_hashed_id == "m1"
    assert record.source_url == "https://media.s3.example/clips/demo.mp4"
    assert "secret-signature" not in repr(record)
    assert len(w.wistia.forms) == 1
    assert w.wistia.forms[0]["name"] == "demo.mp4"
    assert w.metrics.counts["ImportsSubmitted"] == 1


@pytest.mark.parametrize(
    ("key", "size", "reason"),
    [
        ("folder/", 0, "folder marker (key ends with '/')"),
        ("clips/empty.mp4", 0, "zero-byte object"),
        ("notes.txt", 10, "extension 'txt' is not in the import filter"),
    ],
)
def test_objects_that_are_not_media_are_skipped_without_calling_wistia(
    key: str, size: int, reason: str
) -> None:
    w = world()

    outcome = run(w, obj(key, size))

    assert (outcome.status, outcome.detail) == (Status.SKIPPED, reason)
    assert w.records.record(obj(key, size)).error == reason
    assert w.wistia.forms == []


def test_an_object_deleted_before_its_event_is_skipped() -> None:
    w = world()
    ref = obj()

    outcome = w.importer.import_object(ref, w.clock() + DEADLINE_SECONDS)

    assert outcome.status == Status.SKIPPED
    assert "deleted" in outcome.detail
    assert w.wistia.forms == []


def test_a_second_delivery_of_an_imported_object_does_nothing() -> None:
    w = world([ok("m1")])
    run(w)

    again = run(w)

    assert again.status == Status.SUBMITTED
    assert len(w.wistia.forms) == 1
    assert w.metrics.counts["DuplicateDeliveries"] == 1


def test_the_video_limit_fails_the_object_into_one_dead_letter_without_retrying() -> None:
    w = world([status(400, json.dumps({"error": LIMIT}))])

    outcome = run(w)

    assert (outcome.status, outcome.detail) == (Status.FAILED, LIMIT)
    [letter] = w.dead_letters.sent
    assert (letter["reason"], letter["http_status"], letter["retryable"]) == (LIMIT, 400, False)
    assert letter["source_event"] == obj().source_event
    assert w.records.record(obj()).status == "FAILED"
    assert len(w.wistia.forms) == 1
    assert w.metrics.counts["VideoLimitReached"] == 1


def test_a_401_reads_the_token_again_once_and_then_succeeds() -> None:
    w = world([status(401, "<html>no</html>"), ok("m1")])
    w.tokens.values = ["old-token", "new-token"]

    outcome = run(w)

    assert outcome.status == Status.SUBMITTED
    assert w.wistia.tokens == ["old-token", "new-token"]
    assert w.tokens.reads == 2


def test_a_second_401_after_reading_the_token_again_is_permanent() -> None:
    w = world([status(401, "<html>no</html>")])

    outcome = run(w)

    assert outcome.status == Status.FAILED
    assert "API token" in outcome.detail
    assert len(w.wistia.forms) == 2
    assert len(w.dead_letters.sent) == 1


def test_a_429_waits_at_least_retry_after_then_submits() -> None:
    w = world([status(429, "Rate limit exceeded", retry_after="3"), ok("m1")])

    outcome = run(w)

    assert outcome.status == Status.SUBMITTED
    assert len(w.clock.slept) == 1 and w.clock.slept[0] >= 3
    assert w.metrics.counts["WistiaRetries"] == 1


def test_wistia_down_for_every_attempt_hands_the_object_back_pending_retry() -> None:
    w = world([status(503, "busy")])

    with pytest.raises(RetryableError, match="gave up after 5 attempt"):
        run(w)

    record = w.records.record(obj())
    assert record.status == "PENDING_RETRY"
    assert record.error == "Wistia is unavailable (503)"
    assert len(w.wistia.forms) == SETTINGS.max_attempts


def test_no_sleep_runs_past_the_invocations_deadline() -> None:
    w = world([status(429, "slow down", retry_after="30"), ok()])

    with pytest.raises(RetryableError):
        run(w, deadline_seconds=10)

    assert w.clock.slept == []
    assert len(w.wistia.forms) == 1


def test_after_a_timeout_no_delivery_submits_again_until_wistia_has_settled() -> None:
    # Given a submission that timed out: Wistia may still be creating the media
    w = world([timeout()])
    with pytest.raises(RetryableError):
        run(w)
    assert (w.records.record(obj()).unanswered_submits or 0) >= 1

    # When the next delivery comes within the settle time, it looks and hands back
    w.wistia.imports = [ok("late")]
    submissions = len(w.wistia.forms)
    with pytest.raises(RetryableError, match="may still be creating"):
        run(w)
    assert len(w.wistia.forms) == submissions
    assert w.wistia.lookups >= 1

    # Then, once settled with nothing found, a delivery submits again
    w.clock.now += SETTLE_SECONDS
    assert run(w).status == Status.SUBMITTED
    assert len(w.wistia.forms) == submissions + 1


def test_a_lost_answer_is_recovered_from_wistias_media_list_instead_of_importing_twice() -> None:
    w = world([dropped_after_sending(), ok("duplicate")])
    created = iso(w.clock() + 1)
    listing = [{"hashed_id": "lost1", "name": "demo.mp4", "created": created}]
    w.wistia.listings = [status(200, json.dumps(listing))]

    outcome = run(w)

    assert (outcome.status, outcome.detail) == (Status.SUBMITTED, "lost1")
    assert w.records.record(obj()).recovered_lost_answer is True
    assert len(w.wistia.forms) == 1
    assert w.metrics.counts["LostAnswersRecovered"] == 1


def test_a_dead_letter_queue_that_is_down_hands_the_object_back() -> None:
    w = world([status(400, '{"error": "bad project"}')])
    w.dead_letters.down = True

    with pytest.raises(RetryableError):
        run(w)

    assert w.records.record(obj()).status == "PENDING_RETRY"


def test_an_unusable_token_secret_fails_the_object_with_the_secrets_words() -> None:
    w = world()

    def unusable(refresh: bool = False) -> str:
        raise PermanentError("the Wistia token secret 'token-secret' is empty")

    w.tokens.get = unusable  # type: ignore[method-assign]

    outcome = run(w)

    assert outcome.status == Status.FAILED
    assert w.dead_letters.sent[0]["reason"] == "the Wistia token secret 'token-secret' is empty"
    assert w.wistia.forms == []


def test_a_delivery_that_finds_a_live_claim_waits_for_it_and_ends_with_its_outcome() -> None:
    # Given another invocation holds the claim and finishes while this delivery waits
    w = world([ok("m1")])
    ref = obj()
    w.objects.put(ref.key)
    holder = w.records.claim(ref, lease_until=w.clock() + 60)
    real_sleep = w.importer.sleep

    def holder_finishes(seconds: float) -> None:
        real_sleep(seconds)
        w.records.finish(ref, holder, Status.SUBMITTED, RecordFields(wistia_hashed_id="m0"))

    w.importer.sleep = holder_finishes

    outcome = w.importer.import_object(ref, w.clock() + DEADLINE_SECONDS)

    # Then it succeeds with the holder's outcome, having asked Wistia nothing
    assert outcome.status == Status.SUBMITTED
    assert w.wistia.forms == []
    assert w.metrics.counts["DuplicateDeliveries"] == 1


def test_a_delivery_that_finds_a_dead_holders_claim_takes_it_over_and_looks_first() -> None:
    # Given an invocation that died holding the claim (its lease ends in 5 s), as when its
    # record could not be written: Lambda's retry of the same event finds the claim held
    w = world([ok("m2")])
    ref = obj()
    w.objects.put(ref.key)
    w.records.claim(ref, lease_until=w.clock() + 5)

    outcome = w.importer.import_object(ref, w.clock() + DEADLINE_SECONDS)

    # Then it waits out the lease, takes the claim over and looks for a media before
    # submitting (the dead holder may have created one)
    assert outcome.status == Status.SUBMITTED
    assert sum(w.clock.slept) >= 5
    assert w.wistia.lookups == 1
    assert len(w.wistia.forms) == 1


def test_a_delivery_whose_time_runs_out_while_waiting_is_handed_back() -> None:
    w = world([ok()])
    ref = obj()
    w.objects.put(ref.key)
    w.records.claim(ref, lease_until=w.clock() + 600)

    with pytest.raises(RetryableError, match="another invocation"):
        w.importer.import_object(ref, w.clock() + 10)

    assert w.wistia.forms == []


def test_without_waiting_a_held_claim_is_reported_in_progress() -> None:
    w = world([ok()])
    ref = obj()
    w.objects.put(ref.key)
    w.records.claim(ref, lease_until=w.clock() + 600)

    outcome = w.importer.import_object(ref, w.clock() + DEADLINE_SECONDS, wait_for_holder=False)

    assert outcome.status == Status.IN_PROGRESS
    assert w.clock.slept == []
