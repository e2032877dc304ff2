"""Applying Wistia's media events to the import records (StatusUpdater) with in-memory fakes
that keep the adapter's conditions: newer only, once per event, one dead letter per failed
media, and events for media this project did not create acknowledged and ignored."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from local_stack.events import Uploaded, s3_notification
from s3_to_wistia.contracts import MEDIA_FAILED_REASON, DeadLetterMessage, ImportRecord
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.events import parse_notification
from s3_to_wistia.media_status import DEAD_LETTER_LEASE_SECONDS, StatusUpdater
from s3_to_wistia.model import MediaEvent, ObjectRef, RecordKey
from s3_to_wistia.redrive import read_message
from s3_to_wistia.times import iso_precise
from unit.fakes import Clock, CountingMetrics, FakeDeadLetters, FakeRecords, ListLog

HASHED_ID = "abc123def4"
SUBMITTED_AT = "2026-01-31T12:00:00.000Z"


@dataclass
class Follow:
    updater: StatusUpdater
    records: FakeRecords
    dead_letters: FakeDeadLetters
    metrics: CountingMetrics
    log: ListLog
    clock: Clock
    ref: ObjectRef
    key: RecordKey

    def record(self) -> ImportRecord:
        return self.records.record(self.ref)


def follow() -> Follow:
    clock = Clock()
    records = FakeRecords(clock)
    dead_letters = FakeDeadLetters()
    metrics = CountingMetrics()
    log = ListLog()
    updater = StatusUpdater(records, dead_letters, metrics, log, clock=clock)
    # The object as S3's notification names it (key encoded), so a dead letter can redrive it
    uploaded = Uploaded("media", "launch/Keynote (final).mp4", "v1", "0" * 32, 1000)
    [ref] = parse_notification(s3_notification(uploaded)).objects
    key = records.add_submitted(ref, HASHED_ID, SUBMITTED_AT)
    return Follow(updater, records, dead_letters, metrics, log, clock, ref, key)


def ev(status: str, second: int, uuid: str | None = None, hashed_id: str = HASHED_ID) -> MediaEvent:
    return MediaEvent(
        uuid or f"{status}-{second}",
        f"media.{status}",
        hashed_id,
        status,
        f"2026-01-31T12:00:{second:02d}.000Z",
    )


def test_statuses_are_recorded_as_the_contract_names_them() -> None:
    world = follow()

    world.updater.apply_events([ev("processing", 2), ev("ready", 9)])

    record = world.record()
    assert (record.status, record.media_status) == ("SUBMITTED", "ready")
    assert record.media_status_at == "2026-01-31T12:00:09.000Z"
    assert record.media_ready_at == "2026-01-31T12:00:09.000Z"
    # nothing more is awaited: the poller no longer lists it
    assert record.media_watch is None
    assert world.metrics.counts["MediaReady"] == 1
    assert world.metrics.counts["MediaTimeToReady"] == 9


def test_an_older_event_arriving_late_never_undoes_a_newer_one() -> None:
    world = follow()

    tally = world.updater.apply_events([ev("ready", 9), ev("processing", 2)])

    assert (tally.applied, tally.stale) == (1, 1)
    record = world.record()
    assert (record.media_status, record.media_status_at) == ("ready", "2026-01-31T12:00:09.000Z")


def test_a_redelivered_event_changes_nothing_the_second_time() -> None:
    world = follow()
    ready = ev("ready", 9)
    world.updater.apply_events([ready])
    before = dict(world.records.item(world.key))

    tally = world.updater.apply_events([ready, ready])

    assert (tally.applied, tally.stale) == (0, 2)
    assert world.records.item(world.key) == before
    assert world.metrics.counts["MediaReady"] == 1


def test_the_first_ready_time_is_kept_when_ready_is_said_again_later() -> None:
    world = follow()

    world.updater.apply_events([ev("ready", 9), ev("ready", 30, uuid="poll")])

    record = world.record()
    assert (record.media_ready_at, record.media_status_at) == (
        "2026-01-31T12:00:09.000Z",
        "2026-01-31T12:00:30.000Z",
    )
    assert world.metrics.counts["MediaReady"] == 1


def test_an_event_for_a_media_this_project_did_not_create_is_ignored() -> None:
    world = follow()
    before = dict(world.records.item(world.key))

    tally = world.updater.apply_events([ev("ready", 9, hashed_id="someoneelse")])

    assert (tally.unknown, tally.applied) == (1, 0)
    assert world.records.item(world.key) == before
    assert "event for a media this project did not create" in world.log.messages()[0]


def test_a_record_that_moved_on_to_another_media_ignores_the_old_ones_events() -> None:
    # Given a record redriven since: it holds the new media now
    world = follow()
    world.records.item(world.key)["wistia_hashed_id"] = "newmedia01"

    tally = world.updater.apply_to(world.key, ev("failed", 9))

    assert tally.unknown == 1
    assert world.dead_letters.sent == []
    assert world.record().status == "SUBMITTED"


def test_events_of_other_types_are_acknowledged_without_a_lookup() -> None:
    world = follow()

    tally = world.updater.apply_events(
        [MediaEvent("u", "media.created", HASHED_ID, None, ""), MediaEvent("", "x.y", "", None, "")]
    )

    assert tally.ignored == 2
    assert world.records.lookups == 0


# --- a media Wistia failed -------------------------------------------------------------------


def test_a_failed_media_turns_the_record_failed_with_one_redrivable_dead_letter() -> None:
    world = follow()

    tally = world.updater.apply_events([ev("processing", 2), ev("failed", 5)])

    assert tally.failures == 1
    record = world.record()
    assert (record.status, record.media_status, record.error) == (
        "FAILED",
        "failed",
        MEDIA_FAILED_REASON,
    )
    assert record.media_watch is None and record.media_dead_letter_due is None
    [letter] = world.dead_letters.sent
    assert letter["reason"] == MEDIA_FAILED_REASON
    assert "Wistia could not process the media" in letter["reason"]
    assert (letter["http_status"], letter["retryable"]) == (None, True)
    assert letter["wistia_error"] == {"event": "media.failed", "hashed_id": HASHED_ID}
    assert (letter["bucket"], letter["object_key"], letter["object_version"]) == (
        world.ref.bucket,
        world.ref.key,
        world.ref.version,
    )
    # and the redrive reads it back to the very object version
    redriven = read_message({"MessageId": "m1", "ReceiptHandle": "r", "Body": json.dumps(letter)})
    assert redriven.problem is None
    assert [o.uri for o in redriven.objects] == [world.ref.uri]
    assert world.metrics.counts["MediaFailed"] == 1


def test_a_failure_said_again_sends_no_second_dead_letter() -> None:
    world = follow()
    failed = ev("failed", 5)

    world.updater.apply_events([failed, failed])
    # the poller reads it failed later, and a late duplicate comes
    world.updater.apply_to(world.key, ev("failed", 40, uuid="poll"))
    world.updater.apply_events([failed])

    assert len(world.dead_letters.sent) == 1
    assert world.metrics.counts["MediaFailed"] == 1


def test_a_dead_letter_that_could_not_be_sent_is_sent_by_the_next_delivery() -> None:
    # Given the queue down when the failure arrives
    world = follow()
    world.dead_letters.down = True
    with pytest.raises(RetryableError):
        world.updater.apply_events([ev("failed", 5)])
    assert world.record().status == "FAILED"  # the failure is recorded, its letter due

    # When Wistia delivers the same body again, the queue back
    world.dead_letters.down = False
    tally = world.updater.apply_events([ev("failed", 5)])

    # Then the dead letter goes, once
    assert (tally.stale, tally.failures) == (1, 1)
    assert len(world.dead_letters.sent) == 1
    assert world.record().media_watch is None


def test_a_sender_that_died_mid_way_is_taken_over_only_after_its_lease() -> None:
    # Given a failure claimed by a sender that then died (no letter sent, nothing released)
    world = follow()
    world.records.item(world.key).update(media_status="failed", media_event="x")
    now = world.clock()
    claimed = world.records.claim_media_failure(
        world.key, HASHED_ID, iso_precise(now), iso_precise(now - DEAD_LETTER_LEASE_SECONDS)
    )
    assert claimed is not None

    # When another delivery comes within the lease, it sends nothing
    world.clock.now += DEAD_LETTER_LEASE_SECONDS / 2
    assert not world.updater.dead_letter_failure(world.key, HASHED_ID)
    # and once the lease is over, it sends the dead letter
    world.clock.now += DEAD_LETTER_LEASE_SECONDS
    assert world.updater.dead_letter_failure(world.key, HASHED_ID)
    assert len(world.dead_letters.sent) == 1
    assert world.record().media_watch is None


def test_a_record_redriven_since_its_media_failed_is_left_to_the_redrive() -> None:
    # Given a failed media, dead-lettered, and the redrive reopening the record
    world = follow()
    world.updater.apply_events([ev("failed", 5)])
    world.records.item(world.key)["status"] = "PENDING_RETRY"

    # When the failure is said again
    world.updater.apply_to(world.key, ev("failed", 50, uuid="poll"))

    # Then the record is not turned FAILED again and no second letter goes
    assert world.record().status == "PENDING_RETRY"
    assert len(world.dead_letters.sent) == 1


def test_a_redriven_media_failure_rebuilds_the_event_when_the_record_has_none() -> None:
    # Records written before the source event was kept: an S3 record is rebuilt from the key
    record = ImportRecord(
        bucket="media",
        object_key="C++ talk + Q&A.mp4",
        object_version="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
        status="FAILED",
    )
    unversioned = ImportRecord(
        bucket="media",
        object_key="a b.mp4",
        object_version='"0123456789abcdef0123456789abcdef"',
        status="FAILED",
    )

    for stored in (record, unversioned):
        letter = DeadLetterMessage.for_media_failure(stored, "h1", failed_at="t")
        event = letter.redrive_event()
        assert event is not None
        [found] = parse_notification(event).objects
        assert (found.bucket, found.key, found.version) == (
            stored.bucket,
            stored.object_key,
            stored.object_version.strip('"'),
        )


# --- the records of known media --------------------------------------------------------------


def test_a_medias_next_events_need_no_second_lookup() -> None:
    world = follow()

    world.updater.apply_events([ev("processing", 2)])
    world.updater.apply_events([ev("ready", 9)])

    assert world.records.lookups == 1
    assert world.record().media_status == "ready"


def test_a_record_redriven_to_a_new_media_is_looked_up_again_not_written() -> None:
    # Given the record of media A known from an earlier event, then redriven: it holds B now
    world = follow()
    world.updater.apply_events([ev("processing", 2)])
    world.records.item(world.key)["wistia_hashed_id"] = "newmedia01"

    # When A's late event comes
    tally = world.updater.apply_events([ev("failed", 9)])

    # Then it is looked up again, found nowhere, and changes nothing
    assert (tally.unknown, tally.applied) == (1, 0)
    assert world.records.lookups == 2
    assert world.dead_letters.sent == []
    assert world.record().status == "SUBMITTED"


def test_the_known_media_are_bounded() -> None:
    from s3_to_wistia.media_status import KnownMedia

    known = KnownMedia(capacity=2)
    for n in range(3):
        known.put(f"m{n}", [RecordKey(f"s3://b/{n}", "v")])
    known.get("m1")
    known.put("m3", [])

    assert [known.get(f"m{n}") is not None for n in range(4)] == [False, True, False, True]
