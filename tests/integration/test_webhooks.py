"""The webhook receiver over HTTP: the Wistia emulator POSTs signed webhooks to the real
handler behind the Function URL stand-in, which writes to moto's DynamoDB and SQS. Every
media ends at Wistia's final status, whatever the duplicates and the order; forged, stale,
oversized and replayed requests change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.events import Uploaded, s3_notification, upload
from local_stack.function_url import MAX_REQUEST_BYTES, FunctionUrl
from local_stack.harness import CapturedLogger, LambdaContext, all_records, drain
from local_stack.template import Stack
from s3_to_wistia.contracts import MEDIA_FAILED_REASON
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from wistia_emulator import WebhookDelivery, WistiaEmulator
from wistia_emulator.testing import mp4_bytes

from .following import (
    WEBHOOK_KEY,
    post,
    receiver,
    record,
    redrive_queue,
    wait_for,
    webhook_body,
    webhook_stack,
)

NOT_MEDIA = b"<html><body>This is a web page, not a video.</body></html>\n" * 4


@pytest.fixture
def stack(moto_server: LocalAws) -> Stack:
    return webhook_stack()


@pytest.fixture
def url(stack: Stack, wistia_emulator: WistiaEmulator) -> Iterator[FunctionUrl]:
    with receiver(stack) as function_url:
        wistia_emulator.set_webhook(function_url.url, WEBHOOK_KEY)
        yield function_url


def imported(
    stack: Stack, importer: Importer, log: CapturedLogger, key: str, body: bytes
) -> Uploaded:
    obj = upload(stack.bucket, key, body)
    answer = handle_event(
        s3_notification(obj), LambdaContext(), importer, importer.dead_letters, log.logger
    )
    assert answer["results"][0]["status"] == "SUBMITTED", answer
    return obj


def settle(emulator: WistiaEmulator) -> None:
    assert emulator.wait_until_settled(timeout=15)
    assert emulator.wait_until_webhooks_delivered(timeout=15)


def test_webhooks_follow_each_media_to_ready_or_failed(
    stack: Stack,
    url: FunctionUrl,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given two imports Wistia accepts: a video, and a page that is not media
    video = imported(stack, importer, captured_log, "launch/Keynote (final).mp4", mp4_bytes(b"v"))
    page = imported(stack, importer, captured_log, "launch/not a video.mp4", NOT_MEDIA)

    # When Wistia processes them and says so in its webhooks
    settle(wistia_emulator)

    # Then the video's record is ready, with when it became ready
    ready = record(stack, video.key, video.version_id)
    assert (ready["status"], ready["media_status"]) == ("SUBMITTED", "ready")
    assert ready["media_ready_at"] == ready["media_status_at"]
    assert ready["media_ready_at"] >= ready["submitted_at"]
    assert "media_watch" not in ready
    # and the page's record is FAILED, with one dead letter that can redrive it
    failed = record(stack, page.key, page.version_id)
    assert (failed["status"], failed["media_status"]) == ("FAILED", "failed")
    [letter] = drain(stack.queue_url)
    assert letter["reason"] == MEDIA_FAILED_REASON
    assert (letter["bucket"], letter["object_key"], letter["object_version"]) == (
        stack.bucket,
        page.key,
        page.version_id,
    )
    assert (letter["http_status"], letter["retryable"]) == (None, True)
    assert letter["wistia_error"] == {
        "event": "media.failed",
        "hashed_id": failed["wistia_hashed_id"],
    }
    assert letter["source_event"]["s3"]["object"]["versionId"] == page.version_id
    # and every POST was answered 200, by the function
    assert url.invocations and {i.status for i in url.invocations} == {200}
    assert all(i.invoked for i in url.invocations)


def test_duplicated_and_reordered_webhooks_never_move_a_media_back(
    stack: Stack,
    url: FunctionUrl,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia repeating half its events and holding half back behind later ones
    wistia_emulator.set_webhook_delivery(
        WebhookDelivery(duplicate_share=0.5, reorder_share=0.5, seed=13, hold_seconds=0.1)
    )
    objects = [
        imported(stack, importer, captured_log, f"batch/{n:02d}.mp4", mp4_bytes(bytes([n])))
        for n in range(8)
    ] + [imported(stack, importer, captured_log, "batch/broken.mp4", NOT_MEDIA)]

    # When every event has been delivered, some twice, many out of order
    settle(wistia_emulator)
    report = wistia_emulator.webhooks()
    assert report["duplicated"] and report["reordered"]

    # Then each record holds Wistia's final status, and exactly one dead letter went out
    medias = {m["hashed_id"]: m["status"] for m in wistia_emulator.medias()}
    for obj in objects:
        held = record(stack, obj.key, obj.version_id)
        assert held["media_status"] == medias[held["wistia_hashed_id"]], obj.key
    # and the last event applied is the newest of that media's events
    newest: dict[str, str] = {}
    for event in report["events"]:
        if event["type"] in ("media.processing", "media.ready", "media.failed"):
            media = event["payload"]["media"]["id"]
            newest[media] = max(newest.get(media, ""), event["generated_at"])
    for held in all_records(stack.table_name):
        assert held["media_status_at"] == newest[held["wistia_hashed_id"]]
    assert [letter["object_key"] for letter in drain(stack.queue_url)] == ["batch/broken.mp4"]


@pytest.mark.parametrize(
    ("key", "headers"),
    [
        (None, {}),
        ("a guess at the secret key", {}),
        ("whsec-the-key-before-the-rotation", {}),
        (None, {"X-Wistia-Signature": "not hex at all"}),
    ],
    ids=["missing", "forged", "stale", "malformed"],
)
def test_a_missing_forged_or_stale_signature_gets_401_and_changes_nothing(
    stack: Stack,
    url: FunctionUrl,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    key: str | None,
    headers: dict[str, str],
) -> None:
    video = imported(stack, importer, captured_log, "safe/clip.mp4", mp4_bytes(b"s"))
    settle(wistia_emulator)
    before = record(stack, video.key, video.version_id)
    forged = webhook_body(
        before["wistia_hashed_id"], ("media.failed", "2099-01-01T00:00:00Z"), uuid_prefix="forged"
    )

    status, answer = post(url.url, forged, key, **headers)

    assert status == 401, answer
    assert record(stack, video.key, video.version_id) == before
    assert drain(stack.queue_url) == []


def test_a_replayed_body_is_answered_200_and_sends_no_second_dead_letter(
    stack: Stack,
    url: FunctionUrl,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given a media whose failure a signed body reported
    wistia_emulator.set_webhook(None)
    video = imported(stack, importer, captured_log, "replay/clip.mp4", mp4_bytes(b"r"))
    hashed_id = record(stack, video.key, video.version_id)["wistia_hashed_id"]
    failure = webhook_body(hashed_id, ("media.failed", "2099-01-01T00:00:00Z"))
    assert post(url.url, failure)[0] == 200
    after = record(stack, video.key, video.version_id)

    # When the very same body comes again, twice
    replays = [post(url.url, failure) for _ in range(2)]

    # Then it is acknowledged and nothing changes
    assert [(status, answer["applied"]) for status, answer in replays] == [(200, 0), (200, 0)]
    assert record(stack, video.key, video.version_id) == after
    assert len(drain(stack.queue_url)) == 1


def test_a_10_mb_body_is_refused_before_the_function_and_a_large_one_by_it(
    stack: Stack, url: FunctionUrl
) -> None:
    # Lambda refuses requests over 6 MB itself (413); the receiver's own limit is far lower
    huge = b'{"events": [], "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    large = b'{"events": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert len(huge) > MAX_REQUEST_BYTES > len(large)

    huge_status, _ = post(url.url, huge)
    large_status, answer = post(url.url, large)

    assert huge_status == 413
    assert large_status == 400 and "larger than" in answer["message"]
    assert [(i.status, i.invoked) for i in url.invocations] == [(413, False), (400, True)]
    assert all_records(stack.table_name) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"this is not json", 400),
        (b'{"hook": {"uuid": "h"}}', 400),
        (json.dumps({"events": [{"type": "media.created", "payload": {}}]}).encode(), 200),
    ],
    ids=["not json", "no events", "an event type it does not apply"],
)
def test_a_signed_body_that_is_not_a_webhook_gets_400_and_other_events_200(
    stack: Stack, url: FunctionUrl, body: bytes, status: int
) -> None:
    assert post(url.url, body)[0] == status
    assert all_records(stack.table_name) == []


def test_events_for_media_this_project_did_not_create_are_acknowledged_and_ignored(
    stack: Stack,
    url: FunctionUrl,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.set_webhook(None)
    video = imported(stack, importer, captured_log, "ours/clip.mp4", mp4_bytes(b"o"))
    before = record(stack, video.key, video.version_id)

    status, answer = post(
        url.url, webhook_body("someoneelse", ("media.ready", "2099-01-01T00:00:00Z"))
    )

    assert (status, answer["ignored"], answer["applied"]) == (200, 1, 0)
    assert record(stack, video.key, video.version_id) == before


def test_a_rotated_secret_key_works_without_a_redeploy_and_the_old_one_stops_working(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given a receiver that caches its key for one second, and has it cached
    wistia_emulator.set_webhook(None)
    video = imported(stack, importer, captured_log, "rotate/clip.mp4", mp4_bytes(b"k"))
    hashed_id = record(stack, video.key, video.version_id)["wistia_hashed_id"]
    new_key = "whsec-rotated-key-0002"

    def body(second: int) -> bytes:
        stamp = f"2099-01-01T00:00:{second:02d}Z"
        return webhook_body(hashed_id, ("media.processing", stamp), uuid_prefix=str(second))

    with receiver(stack, WISTIA_WEBHOOK_SECRET_CACHE_SECONDS="1") as url:
        assert post(url.url, body(1))[0] == 200

        # When the key is rotated in Wistia and pasted into the secret
        boto3.client("secretsmanager").put_secret_value(
            SecretId=stack.secret_ids["WistiaWebhookSecret"],
            SecretString=json.dumps({"secret_key": new_key}),
        )

        # Then the new key works at once (a mismatch reads the secret again)
        assert post(url.url, body(2), new_key)[0] == 200
        # and once the cache time is over the old key no longer does
        time.sleep(1.2)
        assert post(url.url, body(3), WEBHOOK_KEY)[0] == 401
        assert post(url.url, body(4), new_key)[0] == 200
    assert (
        record(stack, video.key, video.version_id)["media_status_at"] == "2099-01-01T00:00:04.000Z"
    )


def test_a_failed_media_is_imported_again_by_the_redrive_and_then_followed(
    stack: Stack,
    url: FunctionUrl,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given an object Wistia could not process: FAILED, in the dead-letter queue
    clip = imported(stack, importer, captured_log, "redo/odd codec.mp4", NOT_MEDIA)
    settle(wistia_emulator)
    first = record(stack, clip.key, clip.version_id)
    assert (first["status"], first["media_status"]) == ("FAILED", "failed")

    # When Wistia can process it now and the operator redrives the queue
    wistia_emulator.set_sniff_media(False)
    summary = redrive_queue(stack, importer, captured_log)
    settle(wistia_emulator)

    # Then it is imported again with a fresh URL, as a new media, and that one is followed
    assert (summary.redriven, summary.submitted) == (1, 1)
    again = record(stack, clip.key, clip.version_id)
    assert again["status"] == "SUBMITTED"
    assert again["wistia_hashed_id"] != first["wistia_hashed_id"]
    assert wait_for(lambda: record(stack, clip.key, clip.version_id).get("media_status") == "ready")
    assert drain(stack.queue_url) == []
    assert len(wistia_emulator.medias()) == 2
