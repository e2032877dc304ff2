"""ON_OVERWRITE=replace: an overwritten object's new file is swapped into the key's original
media, which keeps its hashed id; over moto's server, the emulator's swap and background
jobs, the import function and the status poller's real handler."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import replace
from typing import Any

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.events import s3_record, upload
from local_stack.harness import (
    CapturedLogger,
    CountingMetrics,
    LambdaContext,
    budget_times,
    drain,
    record_of,
)
from local_stack.template import Stack
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.events import parse_notification
from s3_to_wistia.wiring import ImportFunction, build_import_function
from wistia_emulator import Fault, WistiaEmulator
from wistia_emulator.testing import mp4_bytes

from .following import TOKEN, poller, webhook_stack


@pytest.fixture
def stack(moto_server: LocalAws) -> Stack:
    return webhook_stack()


@pytest.fixture
def function(settings: Settings, captured_log: CapturedLogger) -> ImportFunction:
    return build_import_function(
        replace(settings, on_overwrite="replace"), captured_log.logger, CountingMetrics()
    )


def written(
    function: ImportFunction, log: CapturedLogger, bucket: str, key: str, body: bytes, seq: str
) -> dict[str, Any]:
    """Upload a version of `key`, deliver its event (with this sequencer); its record."""
    record = s3_record(upload(bucket, key, body))
    record["s3"]["object"]["sequencer"] = seq
    event = {"Records": [record]}
    answer = handle_event(
        event,
        LambdaContext(timeout_seconds=30),
        function.importer,
        function.dead_letters,
        log.logger,
        function.removals,
    )
    assert answer["results"][0]["status"] == "SUBMITTED", answer
    [obj] = parse_notification(event).objects
    found = record_of(function.importer.settings.imports_table_name, bucket, key, obj.version)
    assert found is not None
    return found


def settle(stack: Stack, emulator: WistiaEmulator, runs: int = 1) -> list[dict[str, Any]]:
    """Wistia finishes what it was doing; the poller runs `runs` times; its reports."""
    reports = []
    for _ in range(runs):
        assert emulator.wait_until_settled(timeout=20)
        reports.append(poller(stack, emulator.url)())
    return reports


def current(stack: Stack, key: str, record: dict[str, Any]) -> dict[str, Any]:
    found = record_of(stack.table_name, stack.bucket, key, record["object_version"])
    assert found is not None
    return found


def media(emulator: WistiaEmulator, hashed_id: str) -> dict[str, Any]:
    [found] = [m for m in emulator.medias() if m["hashed_id"] == hashed_id]
    return found


def test_an_overwrite_is_swapped_into_the_original_media_which_keeps_its_hashed_id(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given a key imported and ready at Wistia
    first = written(function, captured_log, stack.bucket, "talk.mp4", mp4_bytes(b"v1"), "0A")
    original = first["wistia_hashed_id"]
    settle(stack, wistia_emulator)

    # When the object is overwritten with a new file
    new_bytes = mp4_bytes(b"v2")
    second = written(function, captured_log, stack.bucket, "talk.mp4", new_bytes, "0B")

    # Then the new version's media is swapped into the original once ready, by the poller
    assert second["replaces_wistia_hashed_id"] == original
    settle(stack, wistia_emulator, runs=3)  # ready + listed; swap requested; job finished
    done = current(stack, "talk.mp4", second)
    assert done["swap_status"] == "swapped" and done["swapped_at"]
    assert "media_watch" not in done
    [swap] = wistia_emulator.swaps()
    assert swap["hashed_id"] == original
    assert swap["replacement_hashed_id"] == second["wistia_hashed_id"]
    assert swap["sha256"] == hashlib.sha256(new_bytes).hexdigest()
    assert media(wistia_emulator, original)["sha256"] == hashlib.sha256(new_bytes).hexdigest()


def test_a_429_to_a_swap_pauses_the_whole_accounts_budget_and_the_swap_waits(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given an overwritten key whose new media is ready, and Wistia about to throttle
    first = written(function, captured_log, stack.bucket, "busy.mp4", mp4_bytes(b"v1"), "0A")
    settle(stack, wistia_emulator)
    second = written(function, captured_log, stack.bucket, "busy.mp4", mp4_bytes(b"v2"), "0B")
    settle(stack, wistia_emulator)  # ready + listed for its swap
    due = current(stack, "busy.mp4", second).get("swap_status")
    wistia_emulator.add_fault(
        Fault(kind="rate_limit", count=1, retry_after=30, match_method="PUT", match_path="/*")
    )

    # When the poller's run asks for the swap and Wistia answers 429, Retry-After 30
    poller(stack, wistia_emulator.url)()

    # Then every caller of the account is paused, and the swap is left for a later run
    assert time.time() + 25 < budget_times(stack)["paused_until"] <= time.time() + 30
    assert current(stack, "busy.mp4", second).get("swap_status") == due
    assert wistia_emulator.swaps() == []
    assert first["wistia_hashed_id"] != second["wistia_hashed_id"]


def test_three_quick_overwrites_swap_only_the_latest_in(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    first = written(function, captured_log, stack.bucket, "quick.mp4", mp4_bytes(b"v1"), "0A")
    settle(stack, wistia_emulator)
    versions = [
        written(function, captured_log, stack.bucket, "quick.mp4", mp4_bytes(body), seq)
        for body, seq in ((b"v2", "0B"), (b"v3", "0C"), (b"v4", "0D"))
    ]

    settle(stack, wistia_emulator, runs=3)

    statuses = [current(stack, "quick.mp4", v).get("swap_status") for v in versions]
    assert statuses == ["superseded", "superseded", "swapped"]
    [swap] = wistia_emulator.swaps()
    assert swap["hashed_id"] == first["wistia_hashed_id"]
    assert swap["sha256"] == hashlib.sha256(mp4_bytes(b"v4")).hexdigest()


def test_an_overwrite_whose_file_fails_leaves_the_original_untouched(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    first = written(function, captured_log, stack.bucket, "bad.mp4", mp4_bytes(b"v1"), "0A")
    settle(stack, wistia_emulator)
    before = media(wistia_emulator, first["wistia_hashed_id"])["sha256"]

    # A file Wistia cannot process (not a video at all)
    second = written(function, captured_log, stack.bucket, "bad.mp4", b"not a video" * 10, "0B")
    settle(stack, wistia_emulator, runs=2)

    assert current(stack, "bad.mp4", second)["status"] == "FAILED"
    assert wistia_emulator.swaps() == []
    assert media(wistia_emulator, first["wistia_hashed_id"])["sha256"] == before
    [letter] = drain(stack.queue_url)
    assert "could not process" in letter["reason"]


def test_an_overwrite_before_the_first_media_is_ready_is_a_media_of_its_own(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    written(function, captured_log, stack.bucket, "early.mp4", mp4_bytes(b"v1"), "0A")
    # No status known yet for the first media: nothing to swap into
    second = written(function, captured_log, stack.bucket, "early.mp4", mp4_bytes(b"v2"), "0B")

    assert "replaces_wistia_hashed_id" not in second


def test_a_token_that_may_not_swap_is_one_dead_letter(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    first = written(function, captured_log, stack.bucket, "rights.mp4", mp4_bytes(b"v1"), "0A")
    settle(stack, wistia_emulator)
    second = written(function, captured_log, stack.bucket, "rights.mp4", mp4_bytes(b"v2"), "0B")
    settle(stack, wistia_emulator)  # ready, listed for its swap
    wistia_emulator.set_tokens(rights={TOKEN: "read"})  # reads, but may not swap

    settle(stack, wistia_emulator)

    assert current(stack, "rights.mp4", second)["swap_status"] == "refused"
    [letter] = drain(stack.queue_url)
    assert "read, update and delete rights" in letter["reason"]
    assert wistia_emulator.swaps() == []
    assert media(wistia_emulator, first["wistia_hashed_id"])["sha256"] != ""


def test_deleting_an_overwritten_key_deletes_its_original_media(
    stack: Stack,
    settings: Settings,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    function = build_import_function(
        replace(settings, on_overwrite="replace", on_delete="delete"),
        captured_log.logger,
        CountingMetrics(),
    )
    first = written(function, captured_log, stack.bucket, "gone.mp4", mp4_bytes(b"v1"), "0A")
    settle(stack, wistia_emulator)
    written(function, captured_log, stack.bucket, "gone.mp4", mp4_bytes(b"v2"), "0B")
    settle(stack, wistia_emulator, runs=3)

    marker = boto3.client("s3").delete_object(Bucket=stack.bucket, Key="gone.mp4")["VersionId"]
    record = copy.deepcopy(s3_record(upload(stack.bucket, "other.mp4", b"x")))
    record["eventName"] = "ObjectRemoved:DeleteMarkerCreated"
    record["s3"]["object"] = {"key": "gone.mp4", "versionId": marker, "sequencer": "0C"}
    handle_event(
        {"Records": [record]},
        LambdaContext(timeout_seconds=30),
        function.importer,
        function.dead_letters,
        captured_log.logger,
        function.removals,
    )

    # The key's media is the original, holding the new file since the swap
    assert media(wistia_emulator, first["wistia_hashed_id"])["deleted"] is True


def test_a_swap_refusal_that_quotes_the_token_leaves_it_out_of_the_dead_letter(
    stack: Stack,
    function: ImportFunction,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    written(function, captured_log, stack.bucket, "echo.mp4", mp4_bytes(b"v1"), "0A")
    settle(stack, wistia_emulator)
    second = written(function, captured_log, stack.bucket, "echo.mp4", mp4_bytes(b"v2"), "0B")
    settle(stack, wistia_emulator)  # ready, listed for its swap
    wistia_emulator.add_fault(
        Fault(
            kind="status",
            status=400,
            body=f'{{"error": "no swap for Bearer {TOKEN}"}}',
            content_type="application/json",
            match_method="PUT",
            match_path="/modern/medias/*",
        )
    )

    settle(stack, wistia_emulator)

    held = current(stack, "echo.mp4", second)
    assert held["swap_status"] == "refused"
    [letter] = drain(stack.queue_url)
    assert "no swap" in letter["reason"]
    assert TOKEN not in json.dumps(letter) + json.dumps(held, default=str)


def test_a_swap_whose_original_is_deleted_before_its_job_runs_is_superseded_not_dead_lettered(
    stack: Stack, captured_log: CapturedLogger
) -> None:
    # Wistia's background jobs take a while: the key's deletion can come in between
    with WistiaEmulator(tokens=(TOKEN,), processing_delay=1.0) as wistia:
        settings = Settings.from_env(stack.environment_for(wistia.url))
        function = build_import_function(
            replace(settings, on_overwrite="replace", on_delete="delete"),
            captured_log.logger,
            CountingMetrics(),
        )
        first = written(function, captured_log, stack.bucket, "race.mp4", mp4_bytes(b"v1"), "0A")
        settle(stack, wistia)
        second = written(function, captured_log, stack.bucket, "race.mp4", mp4_bytes(b"v2"), "0B")
        assert wistia.wait_until_settled(timeout=20)
        run = poller(stack, wistia.url)
        for _ in range(3):  # ready and listed; then the swap asked for (its job queued)
            run()
            if current(stack, "race.mp4", second).get("swap_status") == "requested":
                break
        assert current(stack, "race.mp4", second)["swap_status"] == "requested"

        # The key is deleted while the swap's job waits: its original media goes
        marker = boto3.client("s3").delete_object(Bucket=stack.bucket, Key="race.mp4")
        record = copy.deepcopy(s3_record(upload(stack.bucket, "other.mp4", b"x")))
        record["eventName"] = "ObjectRemoved:DeleteMarkerCreated"
        record["s3"]["object"] = {
            "key": "race.mp4",
            "versionId": marker["VersionId"],
            "sequencer": "0C",
        }
        handle_event(
            {"Records": [record]},
            LambdaContext(timeout_seconds=30),
            function.importer,
            function.dead_letters,
            captured_log.logger,
            function.removals,
        )
        assert media(wistia, first["wistia_hashed_id"])["deleted"] is True
        settle(stack, wistia)  # the job failed at Wistia: its original was gone

        # The swap was overtaken by the deletion: no dead letter claiming the original stays
        assert current(stack, "race.mp4", second)["swap_status"] == "superseded"
        assert drain(stack.queue_url) == []
