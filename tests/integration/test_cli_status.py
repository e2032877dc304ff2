"""`s3-to-wistia status` against moto's server: records the function wrote, read with a
query for one object and a bounded scan otherwise, Wistia's processing status when the
record holds it, totals by state, and a stopped local stack's snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from integration.clitools import VIDEO, VIDEO_LIMIT, Deployment, Run, deliver, run_on_terminal
from local_stack.events import s3_notification, upload
from local_stack.harness import CapturedLogger, all_records
from local_stack.template import Stack
from s3_to_wistia.cli.local import LocalStack, Snapshot, write_snapshot
from s3_to_wistia.importing import Importer
from s3_to_wistia.times import iso_now
from wistia_emulator import WistiaEmulator

CliRun = Callable[..., Run]


@pytest.fixture
def imported(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> dict[str, Any]:
    """Records the function wrote: two SUBMITTED, one SKIPPED, one FAILED (video limit)."""
    objects = {
        "clips/a.mp4": upload(stack.bucket, "clips/a.mp4", VIDEO),
        "clips/b.mp4": upload(stack.bucket, "clips/b.mp4", VIDEO),
        "notes.txt": upload(stack.bucket, "notes.txt", b"not media"),
    }
    deliver(s3_notification(*objects.values()), importer, captured_log)
    wistia_emulator.set_video_limit(2)
    objects["over.mp4"] = upload(stack.bucket, "over.mp4", VIDEO)
    deliver(s3_notification(objects["over.mp4"]), importer, captured_log)
    return objects


def test_status_shows_every_record_with_totals_by_state(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    run = run_cli("status", "--table", stack.table_name, "--json")

    assert run.code == 0, run.err
    document = run.json()
    assert document["totals"] == {"SUBMITTED": 2, "SKIPPED": 1, "FAILED": 1}
    assert (document["method"], document["complete"]) == ("scan", True)
    by_key = {r["object_key"]: r for r in document["records"]}
    assert set(by_key) == set(imported)
    assert by_key["over.mp4"]["error"] == VIDEO_LIMIT
    assert by_key["clips/a.mp4"]["wistia_hashed_id"]
    assert "claim_id" not in by_key["clips/a.mp4"]
    # Newest change first
    times = [r["updated_at"] for r in document["records"]]
    assert times == sorted(times, reverse=True)


def test_status_in_a_pipe_is_tab_separated_rows_and_the_totals_go_to_stderr(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    run = run_cli("status", "--table", stack.table_name)

    assert run.code == 0, run.err
    [header, *rows] = run.out.splitlines()
    assert header.split("\t") == [
        "object",
        "version",
        "status",
        "wistia id",
        "media",
        "updated",
        "note",
    ]
    assert len(rows) == 4
    over = next(row.split("\t") for row in rows if "over.mp4" in row)
    assert over[1] == imported["over.mp4"].version_id  # whole, for scripts
    assert over[2] == "FAILED" and over[6] == VIDEO_LIMIT
    assert "4 records: 2 SUBMITTED (2 not known yet), 1 FAILED, 1 SKIPPED" in run.err


def test_one_objects_uri_is_one_query_and_a_prefix_a_scan(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    one = run_cli(
        "status", f"s3://{stack.bucket}/clips/a.mp4", "--table", stack.table_name, "--json"
    )
    prefix = run_cli("status", f"s3://{stack.bucket}/clips/", "--table", stack.table_name, "--json")

    assert one.code == prefix.code == 0
    assert one.json()["method"] == "query"
    assert one.json()["scanned"] == 1
    assert [r["object_key"] for r in one.json()["records"]] == ["clips/a.mp4"]
    assert prefix.json()["method"] == "scan"
    assert sorted(r["object_key"] for r in prefix.json()["records"]) == [
        "clips/a.mp4",
        "clips/b.mp4",
    ]


def test_a_key_that_names_no_object_is_a_prefix(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    run = run_cli("status", f"s3://{stack.bucket}/clips/a", "--table", stack.table_name, "--json")

    assert run.json()["method"] == "scan"
    assert [r["object_key"] for r in run.json()["records"]] == ["clips/a.mp4"]


def test_state_and_since_filter_the_records(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    # An old record, changed three days ago
    boto3.client("dynamodb").put_item(
        TableName=stack.table_name,
        Item={
            "object_uri": {"S": f"s3://{stack.bucket}/old.mp4"},
            "object_version": {"S": "v-old"},
            "bucket": {"S": stack.bucket},
            "object_key": {"S": "old.mp4"},
            "status": {"S": "FAILED"},
            "error": {"S": "long ago"},
            "updated_at": {"S": "2020-01-01T00:00:00.000Z"},
        },
    )

    failed = run_cli("status", "--state", "failed", "--table", stack.table_name, "--json")
    recent = run_cli("status", "--since", "2h", "--table", stack.table_name, "--json")
    both = run_cli(
        "status", "--state", "FAILED", "--since", "1d", "--table", stack.table_name, "--json"
    )
    dated = run_cli("status", "--since", "2019-12-31", "--table", stack.table_name, "--json")

    assert sorted(r["object_key"] for r in failed.json()["records"]) == ["old.mp4", "over.mp4"]
    assert "old.mp4" not in {r["object_key"] for r in recent.json()["records"]}
    assert len(recent.json()["records"]) == 4
    assert [r["object_key"] for r in both.json()["records"]] == ["over.mp4"]
    assert len(dated.json()["records"]) == 5


def test_wistias_processing_status_is_shown_when_the_record_holds_it(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    # As the webhook receiver or the poller writes it (CONTRACT.md, "Processing status")
    obj = imported["clips/a.mp4"]
    boto3.client("dynamodb").update_item(
        TableName=stack.table_name,
        Key={
            "object_uri": {"S": f"s3://{stack.bucket}/clips/a.mp4"},
            "object_version": {"S": obj.version_id},
        },
        UpdateExpression="SET media_status = :s, media_status_at = :t, media_ready_at = :t",
        ExpressionAttributeValues={":s": {"S": "ready"}, ":t": {"S": "2026-01-31T12:00:00Z"}},
    )

    run = run_cli("status", "--table", stack.table_name, "--json")
    ready = run_cli("status", "--media", "ready", "--table", stack.table_name, "--json")
    table = run_cli("status", "--table", stack.table_name)

    record = next(r for r in run.json()["records"] if r["object_key"] == "clips/a.mp4")
    assert (record["media_status"], record["media_ready_at"]) == ("ready", "2026-01-31T12:00:00Z")
    assert run.json()["media_totals"] == {"ready": 1, "not known yet": 1}
    assert [r["object_key"] for r in ready.json()["records"]] == ["clips/a.mp4"]
    row = next(line.split("\t") for line in table.out.splitlines() if "clips/a.mp4" in line)
    assert row[4] == "ready"


def test_limit_bounds_the_read_and_says_so(
    run_cli: CliRun, stack: Stack, imported: dict[str, Any]
) -> None:
    run = run_cli("status", "--limit", "1", "--table", stack.table_name, "--json")
    text = run_cli("status", "--limit", "1", "--table", stack.table_name)

    assert run.code == 0
    assert (len(run.json()["records"]), run.json()["complete"]) == (1, False)
    assert "stopped at --limit 1" in text.err


def test_nothing_matching_is_not_a_failure(run_cli: CliRun, stack: Stack) -> None:
    run = run_cli("status", "--table", stack.table_name)

    assert run.code == 0
    assert "No record matches." in run.err


def test_the_stack_outputs_name_the_table(
    run_cli: CliRun, deployment: Deployment, importer: Importer, captured_log: CapturedLogger
) -> None:
    obj = upload(deployment.stack.bucket, "via-stack.mp4", VIDEO)
    deliver(s3_notification(obj), importer, captured_log)

    run = run_cli("status", *deployment.target, "--json")

    assert run.code == 0, run.err
    assert [r["object_key"] for r in run.json()["records"]] == ["via-stack.mp4"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--since", "yesterday"), "--since takes a duration such as 90m"),
        (("bucket/key",), "is not an s3://bucket/key URI"),
        (("--state", "DONE"), "Invalid value for '--state'"),
        (("--limit", "-1"), "Invalid value for '--limit'"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    run_cli: CliRun, arguments: tuple[str, ...], message: str
) -> None:
    run = run_cli("status", *arguments, "--table", "t")

    assert run.code == 2
    [line] = run.err.splitlines()
    assert line.startswith("s3-to-wistia: error: ") and message in line


def test_no_such_table_is_one_line(run_cli: CliRun, moto_server: Any) -> None:
    run = run_cli("status", "--table", "no-such-table")

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no table 'no-such-table' in us-east-1: check --table / --stack "
        "/ --region"
    ]


def test_no_such_stack_is_one_line(run_cli: CliRun, moto_server: Any) -> None:
    run = run_cli("status", "--stack", "no-such-stack")

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no stack 'no-such-stack' in us-east-1: pass --stack NAME "
        "(and --region), or give --table"
    ]


def test_local_reads_the_local_stack_while_it_is_up(
    run_cli: CliRun, stack: Stack, local_up: LocalStack, imported: dict[str, Any]
) -> None:
    run = run_cli("status", "--local", "--json")

    assert run.code == 0, run.err
    assert len(run.json()["records"]) == 4
    assert "make local keeps up at" in run.json()["source"]["local"]
    assert "Local: the local stack make local keeps up" in run.err


def test_local_reads_the_snapshot_a_stopped_stack_left(
    run_cli: CliRun,
    stack: Stack,
    local_up: LocalStack,
    local_dir: Path,
    imported: dict[str, Any],
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given a stack that left its snapshot and stopped (its process gone)
    assert wistia_emulator.wait_until_settled()
    medias = {m["hashed_id"]: m for m in wistia_emulator.medias()}
    write_snapshot(
        local_dir / "run",
        Snapshot(
            taken_at=iso_now(),
            stack=LocalStack(**{**local_up.__dict__, "pid": 0, "started_by": "make run"}),
            records=all_records(stack.table_name),
            dead_letters=[],
            medias=medias,
        ),
    )
    (local_dir / "live" / "stack.json").unlink()

    run = run_cli("status", "--local", "--json")
    refused = run_cli("import", "--local", f"s3://{stack.bucket}/clips/a.mp4")

    assert run.code == 0, run.err
    document = run.json()
    assert document["method"] == "snapshot"
    assert document["source"]["snapshot"] == str(local_dir / "run" / "snapshot.json")
    assert document["totals"] == {"SUBMITTED": 2, "SKIPPED": 1, "FAILED": 1}
    # The Data API's word at snapshot time stands in for a processing status not recorded
    assert document["media_totals"] == {"ready": 2}
    assert "the snapshot make run left when it stopped its stack" in run.err
    assert refused.code == 1
    [line] = refused.error_lines
    assert "this needs the local stack up, and there is only the snapshot make run left" in line
    assert "start `make local`" in line


def test_local_without_any_local_stack_says_how_to_start_one(run_cli: CliRun) -> None:
    run = run_cli("status", "--local")

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no local stack is up: start one with `make local` (it stays up "
        "until Ctrl-C), or run `make run`, after which `status --local` reads what it left"
    ]


def test_a_terminal_sees_the_scan_progress(stack: Stack, imported: dict[str, Any]) -> None:
    done, shown = run_on_terminal("status", "--table", stack.table_name)
    assert done.returncode == 0
    assert f"Reading {stack.table_name}" in shown
    assert "4/4" in shown  # items scanned out of the table's count
    # The rows stay plain on stdout, a pipe here
    assert "\x1b[" not in done.stdout.decode()
    assert len(done.stdout.decode().splitlines()) == 5
