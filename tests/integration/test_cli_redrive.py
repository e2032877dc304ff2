"""`s3-to-wistia redrive` as an operator runs it, against moto's server and the Wistia
emulator: the queue, table and function found by the CLI's resources, the local stack's
function run in this process (the policy itself is tested in test_redrive.py)."""

from __future__ import annotations

from collections.abc import Callable

from integration.clitools import VIDEO, VIDEO_LIMIT, Deployment, Run, deliver, queued
from local_stack.events import s3_notification, upload
from local_stack.harness import CapturedLogger, record_of
from local_stack.template import Stack
from s3_to_wistia.cli.local import LocalStack
from s3_to_wistia.importing import Importer
from wistia_emulator import WistiaEmulator

CliRun = Callable[..., Run]


def dead_lettered(
    stack: Stack, importer: Importer, log: CapturedLogger, emulator: WistiaEmulator, key: str
) -> str:
    """An upload the function dead-lettered: the account was at its video limit."""
    emulator.set_video_limit(0)
    obj = upload(stack.bucket, key, VIDEO)
    deliver(s3_notification(obj), importer, log)
    assert queued(stack.queue_url) == 1
    return obj.version_id or ""


def test_redrive_local_runs_the_local_function_and_empties_the_queue(
    run_cli: CliRun,
    stack: Stack,
    local_up: LocalStack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    version = dead_lettered(stack, importer, captured_log, wistia_emulator, "redrive/a.mp4")
    wistia_emulator.set_video_limit(None)

    run = run_cli("redrive", "--local", "--wait", "0", "--json")

    assert run.code == 0, run.err
    document = run.json()
    assert (document["read"], document["redriven"], document["submitted"]) == (1, 1, 1)
    [message] = document["messages"]
    assert message["objects"] == [f"s3://{stack.bucket}/redrive/a.mp4"]
    assert (message["reason"], message["outcome"]) == (VIDEO_LIMIT, "SUBMITTED: message deleted")
    assert queued(stack.queue_url) == 0
    record = record_of(stack.table_name, stack.bucket, "redrive/a.mp4", version)
    assert record is not None and (record["status"], record["redrives"]) == ("SUBMITTED", 1)
    assert [m["name"] for m in wistia_emulator.medias()] == ["a.mp4"]


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(
    run_cli: CliRun,
    stack: Stack,
    local_up: LocalStack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    dead_lettered(stack, importer, captured_log, wistia_emulator, "redrive/dry.mp4")
    requests = len(wistia_emulator.requests())

    run = run_cli("redrive", "--local", "--dry-run", "--wait", "0")

    assert run.code == 0, run.err
    assert "Dead-letter queue" in run.out and "(dry run: nothing is changed)" in run.out
    assert "would redrive 1" in run.out
    assert f"        1  {VIDEO_LIMIT}" in run.out
    assert queued(stack.queue_url) == 1
    assert len(wistia_emulator.requests()) == requests


def test_a_cause_not_fixed_leaves_the_message_and_exits_1(
    run_cli: CliRun,
    stack: Stack,
    local_up: LocalStack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    dead_lettered(stack, importer, captured_log, wistia_emulator, "redrive/still.mp4")

    run = run_cli("redrive", "--local", "--wait", "0")

    assert run.code == 1
    assert f"still failing (FAILED: {VIDEO_LIMIT}): a fresh dead letter replaces it" in run.out
    assert queued(stack.queue_url) == 1


def test_limit_and_its_old_name_max_bound_a_run(
    run_cli: CliRun,
    stack: Stack,
    local_up: LocalStack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.set_video_limit(0)
    objects = [upload(stack.bucket, f"batch/{n}.mp4", VIDEO) for n in range(3)]
    for obj in objects:
        deliver(s3_notification(obj), importer, captured_log)
    wistia_emulator.set_video_limit(None)

    first = run_cli("redrive", "--local", "--limit", "1", "--wait", "0", "--json")
    second = run_cli("redrive", "--local", "--max", "1", "--wait", "0", "--json")

    assert (first.json()["submitted"], second.json()["submitted"]) == (1, 1)
    assert queued(stack.queue_url) == 1
    assert len(wistia_emulator.medias()) == 2


def test_a_deployed_stacks_queue_and_table_come_from_its_outputs(
    run_cli: CliRun,
    deployment: Deployment,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    stack = deployment.stack
    dead_lettered(stack, importer, captured_log, wistia_emulator, "deployed/x.mp4")

    run = run_cli("redrive", *deployment.target, "--dry-run", "--wait", "0", "--json")

    assert run.code == 0, run.err
    assert (run.json()["read"], run.json()["redriven"]) == (1, 1)
    assert queued(stack.queue_url) == 1
