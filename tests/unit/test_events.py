"""Reading events: key decoding and the three accepted shapes."""

from __future__ import annotations

import json

import pytest

from local_stack.events import fixture
from s3_to_wistia.errors import UnsupportedEvent
from s3_to_wistia.events import event_kind, parse_notification, parse_sqs_body


def test_direct_s3_notification_keys_are_decoded() -> None:
    parsed = parse_notification(fixture("s3-object-created.json"))

    [obj] = parsed.objects
    assert obj.bucket == "my-media-bucket"
    assert obj.key == "launch/Product Demo (2026).mp4"
    assert obj.version == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert obj.size == 1048576


def test_odd_keys_decode_plus_percent_and_unicode() -> None:
    parsed = parse_notification(fixture("s3-odd-keys.json"))

    assert [o.key for o in parsed.objects] == [
        "clips/C++ talk 100% final.mov",
        "日本/café déjà vu.MP4",
        "raw/folder/",
    ]
    # an unversioned bucket's objects are told apart by ETag
    assert parsed.objects[0].version == "0cc175b9c0f1b6a831c399e269772661"


def test_eventbridge_object_created_is_read_like_a_notification() -> None:
    [obj] = parse_notification(fixture("eventbridge-object-created.json")).objects

    assert obj.key == "launch/Product Demo (2026).mp4"
    assert obj.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"


def test_sqs_bodies_are_notifications_and_test_events_are_ignored() -> None:
    event = fixture("sqs-s3-notification.json")

    assert event_kind(event) == "sqs"
    [real, test] = [parse_sqs_body(r["body"]) for r in event["Records"]]
    assert [o.key for o in real.objects] == ["launch/Product Demo (2026).mp4"]
    assert test.objects == [] and "TestEvent" in test.ignored[0]


def test_records_other_than_object_created_or_removed_are_ignored_with_a_reason() -> None:
    event = fixture("s3-object-created.json")
    event["Records"][0]["eventName"] = "ObjectRestore:Completed"

    parsed = parse_notification(event)

    assert parsed.objects == [] and parsed.removals == []
    assert parsed.ignored == ["ObjectRestore:Completed event for s3://my-media-bucket"]


@pytest.mark.parametrize(
    ("name", "marker"),
    [("ObjectRemoved:Delete", False), ("ObjectRemoved:DeleteMarkerCreated", True)],
)
def test_s3_deletions_are_read_as_removals_with_their_order(name: str, marker: bool) -> None:
    event = fixture("s3-object-created.json")
    record = event["Records"][0]
    record["eventName"] = name
    record["s3"]["object"] = {
        "key": "launch/red+flower.mp4",
        "versionId": "v-marker",
        "sequencer": "0055aed6dcd90281e5",
    }

    parsed = parse_notification(event)

    assert parsed.objects == [] and parsed.ignored == []
    [removal] = parsed.removals
    assert (removal.key, removal.version_id, removal.delete_marker) == (
        "launch/red flower.mp4",
        "v-marker",
        marker,
    )
    assert removal.sequencer == "0055AED6DCD90281E5"
    assert removal.as_record_ref().version == "deleted:v-marker"


def test_an_unversioned_deletion_is_recorded_under_its_sequencer() -> None:
    event = fixture("s3-object-created.json")
    record = event["Records"][0]
    record["eventName"] = "ObjectRemoved:Delete"
    record["s3"]["object"] = {"key": "a.mp4", "sequencer": "00AB"}

    [removal] = parse_notification(event).removals

    assert removal.version_id is None
    assert removal.as_record_ref().version == "deleted:00AB"


def test_eventbridge_object_deleted_is_a_removal() -> None:
    event = fixture("eventbridge-object-created.json")
    event["detail-type"] = "Object Deleted"
    event["detail"]["deletion-type"] = "Delete Marker Created"
    event["detail"]["object"]["sequencer"] = "00AB"

    parsed = parse_notification(event)

    assert parsed.objects == []
    [removal] = parsed.removals
    assert removal.delete_marker and removal.sequencer == "00AB"


def test_other_eventbridge_detail_types_are_ignored() -> None:
    event = fixture("eventbridge-object-created.json")
    event["detail-type"] = "Object Restore Completed"

    parsed = parse_notification(event)

    assert parsed.objects == [] and parsed.removals == []


def test_a_sequencer_that_is_not_hex_is_no_order() -> None:
    event = fixture("s3-object-created.json")
    event["Records"][0]["s3"]["object"]["sequencer"] = "not-hex"

    [obj] = parse_notification(event).objects

    assert obj.sequencer is None


@pytest.mark.parametrize(
    "event",
    [
        {},
        [],
        "text",
        {"Records": []},
        {"Records": [{"eventSource": "aws:kinesis"}]},
        {"source": "aws.ec2", "detail": {}},
    ],
)
def test_unknown_events_are_refused_with_a_clear_error(event: object) -> None:
    with pytest.raises(UnsupportedEvent, match="not an S3 notification"):
        parse_notification(event)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda r: r["s3"]["object"].pop("key"), "'key'"),
        (lambda r: r["s3"].pop("bucket"), "'bucket'"),
        (lambda r: r["s3"]["object"].update(key=""), "non-empty string"),
        (lambda r: r["s3"]["object"].update(size="big"), "size must be a number"),
    ],
)
def test_truncated_s3_records_are_refused_naming_what_is_missing(mutate, words) -> None:
    event = fixture("s3-object-created.json")
    mutate(event["Records"][0])

    with pytest.raises(UnsupportedEvent, match=words):
        parse_notification(event)


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(UnsupportedEvent, match="not JSON"):
        parse_sqs_body("{truncated")


def test_an_sqs_body_holding_eventbridge_is_read() -> None:
    body = json.dumps(fixture("eventbridge-object-created.json"))

    assert len(parse_sqs_body(body).objects) == 1
