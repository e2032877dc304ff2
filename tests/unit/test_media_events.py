"""The pure parts of following a media: the webhook signature, reading webhook bodies and the
Data API's media list into MediaEvents, and the order events apply in."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
from typing import Any

import pytest

from s3_to_wistia.errors import NotAWebhook
from s3_to_wistia.media_events import (
    normalized_time,
    order_key,
    parse_webhook_body,
    poll_events,
)
from s3_to_wistia.model import MediaEvent
from s3_to_wistia.signatures import signature, signed_by

KEY = "wistia-webhook-secret-key"


def event(
    event_type: str = "media.ready",
    uuid: str = "0f3c",
    hashed_id: str = "abc123def4",
    generated_at: str = "2026-01-31T12:00:00Z",
) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "type": event_type,
        "generated_at": generated_at,
        "metadata": {"account_id": "acct1"},
        "payload": {"media": {"id": hashed_id, "name": "demo.mp4", "duration": 1.5}},
    }


def body(*events: dict[str, Any]) -> bytes:
    return json.dumps({"hook": {"uuid": "hook1"}, "events": list(events)}).encode()


# --- the signature ---------------------------------------------------------------------------


def test_the_signature_is_the_hex_hmac_sha256_of_the_raw_body() -> None:
    raw = body(event())

    assert signature(raw, KEY) == hmac.new(KEY.encode(), raw, hashlib.sha256).hexdigest()
    assert signed_by(raw, signature(raw, KEY), KEY)
    # Hex is hex whatever its case, and blanks around a header value are not part of it
    assert signed_by(raw, f" {signature(raw, KEY).upper()} ", KEY)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "not-a-signature",
        "0" * 64,
        signature(b"another body", KEY),
        signature(body(event()), "the old key, rotated away"),
        signature(body(event()), KEY)[:-1],
        signature(body(event()), KEY) + "0",
        "é" * 64,
    ],
    ids=["empty", "garbage", "zeros", "other body", "stale key", "short", "long", "non-ascii"],
)
def test_forged_stale_or_malformed_signatures_are_refused(header: str) -> None:
    assert not signed_by(body(event()), header, KEY)


def test_a_body_changed_by_one_byte_no_longer_matches() -> None:
    raw = body(event())
    header = signature(raw, KEY)

    assert not signed_by(raw.replace(b"media.ready", b"media.readz"), header, KEY)


# --- webhook bodies --------------------------------------------------------------------------


def test_every_event_of_a_body_is_read_in_order() -> None:
    events = parse_webhook_body(
        body(
            event("media.processing", "u1", generated_at="2026-01-31T12:00:00.120Z"),
            event("media.ready", "u2", generated_at="2026-01-31T12:00:01Z"),
            event("media.failed", "u3", hashed_id="zzz999yyy8"),
            {
                "uuid": "u4",
                "type": "media.deleted",
                "generated_at": "2026-01-31T13:00:00+01:00",
                "payload": {"media": {"id": "abc123def4"}},
            },
        )
    )

    assert [(e.uuid, e.status, e.hashed_id, e.generated_at) for e in events] == [
        ("u1", "processing", "abc123def4", "2026-01-31T12:00:00.120Z"),
        ("u2", "ready", "abc123def4", "2026-01-31T12:00:01.000Z"),
        ("u3", "failed", "zzz999yyy8", "2026-01-31T12:00:00.000Z"),
        ("u4", "deleted", "abc123def4", "2026-01-31T12:00:00.000Z"),
    ]


@pytest.mark.parametrize(
    "event_type", ["media.created", "media.updated", "viewing_session.played", "something.new"]
)
def test_events_that_say_nothing_of_the_processing_are_kept_to_be_acknowledged(
    event_type: str,
) -> None:
    [read] = parse_webhook_body(body({"type": event_type, "payload": {"whatever": [1, 2]}}))

    assert (read.type, read.status) == (event_type, None)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "not JSON"),
        (b"<html>hello</html>", "not JSON"),
        (b"\xff\xfe not utf-8", "not JSON"),
        (b"[]", 'no "events" list'),
        (b'{"hook": {"uuid": "h"}}', 'no "events" list'),
        (b'{"events": {"uuid": "u"}}', 'no "events" list'),
        (body("a string"), "event 0 has no type"),  # type: ignore[arg-type]
        (body({"uuid": "u1"}), "event 0 has no type"),
        (body(event(uuid="")), "has no uuid"),
        (body({**event(), "uuid": None}), "has no uuid"),
        (body(event(hashed_id="")), "names no media"),
        (body({**event(), "payload": {"media": "abc"}}), "names no media"),
        (body(event(hashed_id="x" * 500)), "names no media"),
        (body({**event(), "generated_at": None}), "has no generated_at"),
        (body(event(generated_at="yesterday")), "not a time"),
        (body(event(generated_at="0001-01-01T00:00:00Z")), "out of range"),
        (body(event(), event("media.ready", uuid="")), "event 1 (media.ready) has no uuid"),
    ],
)
def test_a_body_that_is_not_a_webhook_body_is_refused_whole(raw: bytes, why: str) -> None:
    with pytest.raises(NotAWebhook, match=why.replace("(", r"\(").replace(")", r"\)")):
        parse_webhook_body(raw)


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00.000Z"),
        ("2026-01-31T12:00:00.5Z", "2026-01-31T12:00:00.500Z"),
        ("2026-01-31T12:00:00.123456Z", "2026-01-31T12:00:00.123Z"),
        ("2026-01-31T14:00:00.123+02:00", "2026-01-31T12:00:00.123Z"),
        ("2026-01-31T12:00:00", "2026-01-31T12:00:00.000Z"),
    ],
)
def test_times_are_normalized_so_they_compare_as_text(given: str, normalized: str) -> None:
    assert normalized_time(given) == normalized


# --- the order events apply in ---------------------------------------------------------------


def media_event(status: str, at: str, uuid: str = "u") -> MediaEvent:
    return MediaEvent(uuid, f"media.{status}", "abc123def4", status, normalized_time(at))


def newest(events: list[MediaEvent]) -> MediaEvent:
    """What the record ends at when events apply only when newer than the one applied."""
    held: MediaEvent | None = None
    for candidate in events:
        if held is None or order_key(candidate) > order_key(held):
            held = candidate
    assert held is not None
    return held


def test_a_later_generated_at_wins_whatever_the_status() -> None:
    processing = media_event("processing", "2026-01-31T12:00:05Z")
    ready = media_event("ready", "2026-01-31T12:00:04Z")

    assert order_key(processing) > order_key(ready)


def test_a_tie_on_generated_at_goes_to_the_later_status_then_to_the_uuid() -> None:
    at = "2026-01-31T12:00:00Z"

    assert order_key(media_event("ready", at)) > order_key(media_event("processing", at))
    assert order_key(media_event("deleted", at)) > order_key(media_event("ready", at))
    assert order_key(media_event("ready", at, "b")) > order_key(media_event("ready", at, "a"))


def test_a_repeated_event_is_not_newer_than_itself() -> None:
    ready = media_event("ready", "2026-01-31T12:00:00Z", "u1")

    assert not order_key(ready) > order_key(ready)


def test_whole_seconds_and_milliseconds_order_as_the_times_they_are() -> None:
    assert order_key(media_event("ready", "2026-01-31T12:00:01Z")) > order_key(
        media_event("processing", "2026-01-31T12:00:00.999Z")
    )


def test_any_arrival_order_with_any_repeats_ends_at_the_same_newest_event() -> None:
    # Given a media's life as Wistia tells it, two events in the same millisecond among them
    life = [
        media_event("processing", "2026-01-31T12:00:00.100Z", "a1"),
        media_event("processing", "2026-01-31T12:00:00.100Z", "a2"),
        media_event("ready", "2026-01-31T12:00:03.000Z", "b1"),
        media_event("deleted", "2026-01-31T12:05:00Z", "c1"),
    ]
    rng = random.Random(5)  # noqa: S311 - reproducible shuffles
    for permutation in itertools.permutations(life):
        # When they arrive in any order, some twice
        arrivals = list(permutation) + rng.sample(life, 2)
        rng.shuffle(arrivals)

        # Then the record ends at the last one, and never went back to an earlier status
        assert newest(arrivals) == life[-1]


# --- the Data API's answer -------------------------------------------------------------------


def test_the_media_lists_statuses_become_readings_and_left_out_medias_are_deleted() -> None:
    answer = [
        {"hashed_id": "aaa", "status": "ready", "name": "x"},
        {"hashed_id": "bbb", "status": "processing"},
        {"hashed_id": "ccc", "status": "no such status"},
        {"id": 7},
        "junk",
    ]

    events, missing = poll_events(
        answer, ["aaa", "bbb", "ccc", "ddd", "aaa"], "2026-01-31T12:00:00.000Z"
    )

    assert [(e.hashed_id, e.status) for e in events] == [
        ("aaa", "ready"),
        ("bbb", "processing"),
        ("ccc", "deleted"),
        ("ddd", "deleted"),
    ]
    assert missing == ["ccc", "ddd"]
    assert {e.generated_at for e in events} == {"2026-01-31T12:00:00.000Z"}


def test_an_answer_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(ValueError, match="not a JSON list"):
        poll_events({"error": "x"}, ["aaa"], "2026-01-31T12:00:00.000Z")
