"""The status poller's real handler over HTTP to moto and the Wistia emulator: records whose
webhooks never come are found and brought to Wistia's final status through the Data API,
within the run's request budget, and a 429, a 5xx or an upload-only token lose nothing."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.events import Uploaded, s3_notification, upload
from local_stack.harness import CapturedLogger, LambdaContext, all_records, budget_times, drain
from local_stack.template import Stack
from s3_to_wistia.adapters.budget import DynamoDBSchedule
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from s3_to_wistia.polling import Stop
from wistia_emulator import Fault, WebhookDelivery, WistiaEmulator
from wistia_emulator.testing import mp4_bytes

from .following import TOKEN, WEBHOOK_KEY, poller, receiver, record, webhook_stack

LOOKUP = "/v1/medias.json"


@pytest.fixture
def stack(moto_server: LocalAws) -> Stack:
    return webhook_stack()


def import_all(stack: Stack, importer: Importer, log: CapturedLogger, count: int) -> list[Uploaded]:
    objects = [
        upload(stack.bucket, f"poll/{n:03d}.mp4", mp4_bytes(bytes([n % 256]))) for n in range(count)
    ]
    answer = handle_event(
        s3_notification(*objects), LambdaContext(), importer, importer.dead_letters, log.logger
    )
    assert {r["status"] for r in answer["results"]} == {"SUBMITTED"}
    return objects


def lookups(emulator: WistiaEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r.get("path") == LOOKUP]


def statuses(stack: Stack) -> list[str]:
    return sorted(str(r.get("media_status")) for r in all_records(stack.table_name))


def test_records_whose_webhooks_never_come_are_found_by_the_poller(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given an account without webhooks: 105 imports, and never a word about them
    import_all(stack, importer, captured_log, 105)
    assert wistia_emulator.wait_until_settled(timeout=20)
    assert statuses(stack) == ["None"] * 105

    # When the poller runs once
    report = poller(stack, wistia_emulator.url)()

    # Then every record holds Wistia's status, asked 100 hashed ids at a time (Wistia, and
    # the emulator, refuse more than 100 with a 400)
    assert statuses(stack) == ["ready"] * 105
    assert (report["requests"], report["asked"], report["stopped"]) == (2, 105, None)
    assert [(r["status"], r["query"]["per_page"]) for r in lookups(wistia_emulator)] == [
        (200, "100"),
        (200, "100"),
    ]
    for held in all_records(stack.table_name):
        assert held["media_ready_at"] == held["media_status_at"]
        assert "media_watch" not in held  # nothing more to ask about it
    # and a second run finds nothing left to ask
    assert poller(stack, wistia_emulator.url)()["requests"] == 0


def test_the_poller_stays_inside_its_request_budget_and_the_next_run_goes_on(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given more waiting records than one run of one request may ask about
    import_all(stack, importer, captured_log, 105)
    assert wistia_emulator.wait_until_settled(timeout=20)
    run = poller(stack, wistia_emulator.url, STATUS_POLL_MAX_REQUESTS="1")

    reports = [run() for _ in range(3)]

    # Each run sends one request at most, the least recently checked first, until done
    assert [(r["requests"], r["asked"]) for r in reports] == [(1, 100), (1, 5), (0, 0)]
    assert statuses(stack) == ["ready"] * 105
    assert len(lookups(wistia_emulator)) == 2


def test_the_poller_and_the_webhooks_meet_on_one_status_the_lost_events_filled_in(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given webhooks of which Wistia drops 60%, duplicates some, reorders some
    with receiver(stack) as url:
        wistia_emulator.set_webhook(url.url, WEBHOOK_KEY)
        wistia_emulator.set_webhook_delivery(
            WebhookDelivery(drop_share=0.6, duplicate_share=0.3, reorder_share=0.3, seed=3)
        )
        objects = import_all(stack, importer, captured_log, 30)
        assert wistia_emulator.wait_until_settled(timeout=20)
        assert wistia_emulator.wait_until_webhooks_delivered(timeout=20)
        assert wistia_emulator.webhooks()["dropped"]
        waiting = [r for r in all_records(stack.table_name) if r.get("media_status") != "ready"]
        assert waiting  # some records never heard of their final status

        # When the poller runs
        report = poller(stack, wistia_emulator.url)()

    # Then every record is ready, and the poller asked only about those still waiting
    assert statuses(stack) == ["ready"] * len(objects)
    assert (report["requests"], report["asked"]) == (1, len(waiting))


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="rate_limit", count=1, retry_after=2, match_method="GET", match_path=LOOKUP),
        Fault(kind="status", status=503, count=1, match_method="GET", match_path=LOOKUP),
        Fault(kind="status", status=500, count=1, match_method="GET", match_path=LOOKUP),
        Fault(kind="drop", count=1, match_method="GET", match_path=LOOKUP),
    ],
    ids=["429", "503", "500", "dropped"],
)
def test_a_429_or_5xx_stops_the_run_and_the_next_run_catches_up(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    fault: Fault,
) -> None:
    import_all(stack, importer, captured_log, 5)
    assert wistia_emulator.wait_until_settled(timeout=20)
    wistia_emulator.add_fault(fault)
    run = poller(stack, wistia_emulator.url)

    first = run()
    second = run()

    # The run met the fault on its first request and stopped there: no hammering
    assert first["requests"] == 1 and "next run" in str(first["stopped"])
    assert second["stopped"] is None and second["requests"] == 1
    assert statuses(stack) == ["ready"] * 5
    if fault.kind == "rate_limit":
        # and its Retry-After paused the stack's whole request budget: the next run's
        # request waited for the pause to end
        throttled, caught_up = lookups(wistia_emulator)
        assert caught_up["at"] >= throttled["at"] + 2


def test_an_upload_only_token_is_said_clearly_and_the_run_does_not_fail(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import_all(stack, importer, captured_log, 3)
    assert wistia_emulator.wait_until_settled(timeout=20)
    # The token can upload, and nothing else
    wistia_emulator.set_tokens(rights={TOKEN: "upload"})
    capsys.readouterr()

    report = poller(stack, wistia_emulator.url)()

    assert "cannot read the Data API" in str(report["stopped"])
    assert report["requests"] == 2  # read the token once more, then gave up for this run
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "upload-only token" in line and "give the token read rights" in line
    assert '"StatusPollUnauthorized":[1.0]' in capsys.readouterr().out
    assert statuses(stack) == ["None"] * 3


def test_a_failed_media_found_by_the_poller_goes_to_the_dead_letter_queue_once(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    obj = upload(stack.bucket, "poll/broken.mp4", b"not media" * 50)
    handle_event(
        s3_notification(obj), LambdaContext(), importer, importer.dead_letters, captured_log.logger
    )
    assert wistia_emulator.wait_until_settled(timeout=20)
    run = poller(stack, wistia_emulator.url)

    run()
    run()

    held = record(stack, obj.key, obj.version_id)
    assert (held["status"], held["media_status"]) == ("FAILED", "failed")
    [letter] = drain(stack.queue_url)
    assert letter["object_key"] == "poll/broken.mp4"
    assert len(lookups(wistia_emulator)) == 1


def test_the_poller_books_its_requests_on_the_stacks_request_budget(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given records waiting for their status, and the poller as the template configures it
    import_all(stack, importer, captured_log, 3)
    assert wistia_emulator.wait_until_settled(timeout=20)
    started = time.time()

    report = poller(stack, wistia_emulator.url)()

    # Then its request was booked on the schedule every caller of the stack shares
    assert (report["requests"], report["stopped"]) == (1, None)
    assert budget_times(stack)["next_slot_at"] > started


def test_while_imports_fill_the_budget_the_poller_asks_nothing_and_loses_nothing(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    import_all(stack, importer, captured_log, 3)
    assert wistia_emulator.wait_until_settled(timeout=20)
    asked = len(lookups(wistia_emulator))
    # Given imports that have booked the next 10 seconds of the account's requests (all
    # their horizon)
    client = boto3.session.Session().client("dynamodb")
    schedule = DynamoDBSchedule(client, stack.resources["RateBudgetTable"])
    schedule.book(1, 1, 10.0, time.time(), time.time() + 60)

    report = poller(stack, wistia_emulator.url)()

    # Then the poller (last in line) sends nothing, and the records wait for a later run
    assert (report["requests"], report["stopped"]) == (0, Stop.BUDGET.value)
    assert len(lookups(wistia_emulator)) == asked
    assert statuses(stack) == ["None"] * 3
