"""`make local` and `--local`: the local stack kept up in another process, found by the CLI
from its description, worked on with the commands that change things, then stopped, after
which only its snapshot is left to read."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from integration.clitools import Run
from local_stack.samples import avi_bytes
from local_stack.template import ROOT

CliRun = Callable[..., Run]
START_TIMEOUT = 60


@pytest.fixture
def make_local(local_dir: Path, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`make local` in its own process, until the test ends."""
    log = (tmp_path / "make-local.out").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack.serve"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    description = local_dir / "live" / "stack.json"
    deadline = time.monotonic() + START_TIMEOUT
    while not description.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert description.is_file(), (tmp_path / "make-local.out").read_text()
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        log.close()


def described(local_dir: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((local_dir / "live" / "stack.json").read_text())
    return document


def wait_for_record(run_cli: CliRun, uri: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = run_cli("status", "--local", uri, "--json")
        records = run.json()["records"] if run.code == 0 else []
        if records and records[0]["status"] not in ("IN_PROGRESS", "PENDING_RETRY"):
            return dict(records[0])
        assert time.monotonic() < deadline, run.err
        time.sleep(0.2)


def test_make_local_keeps_a_stack_up_for_the_cli_until_it_is_stopped(
    run_cli: CliRun, make_local: subprocess.Popen[str], local_dir: Path
) -> None:
    # Given make local up, and an object put into its bucket with any S3 client
    stack = described(local_dir)
    assert stack["started_by"] == "make local"
    bucket = stack["resources"]["bucket"]
    s3 = boto3.client(
        "s3",
        endpoint_url=stack["endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id=stack["access_key_id"],
        aws_secret_access_key=stack["secret_access_key"],
    )
    s3.put_object(Bucket=bucket, Key="clips/take one.avi", Body=avi_bytes(hue=40))
    uri = f"s3://{bucket}/clips/take one.avi"

    # Then its function imports it, and status --local shows the record, live
    record = wait_for_record(run_cli, uri)
    assert record["status"] == "SUBMITTED"

    # And the commands that change things work on it
    again = run_cli("import", "--local", uri)
    assert again.code == 1
    assert "was already imported" in again.error_lines[0]
    checked = run_cli("doctor", "--local", "--json")
    assert checked.code == 0, checked.out
    events = next(c for c in checked.json()["checks"] if c["check"] == "events")
    assert "notifies the local stack's delivery queue" in events["detail"]
    redriven = run_cli("redrive", "--local", "--wait", "0", "--json")
    assert (redriven.code, redriven.json()["read"]) == (0, 0)

    # When it is stopped
    make_local.send_signal(signal.SIGTERM)
    assert make_local.wait(timeout=30) == 0

    # Then nothing of it is left up, and status --local reads what it left
    assert not (local_dir / "live" / "stack.json").exists()
    after = run_cli("status", "--local", "--json")
    assert after.code == 0, after.err
    assert after.json()["method"] == "snapshot"
    [left] = after.json()["records"]
    assert (left["object_key"], left["status"]) == ("clips/take one.avi", "SUBMITTED")
    assert after.json()["media_totals"] == {"ready": 1}
    refused = run_cli("redrive", "--local")
    assert refused.code == 1
    [line] = refused.error_lines
    assert "this needs the local stack up" in line and "start `make local`" in line


def test_a_stale_description_is_not_taken_for_a_stack_that_is_up(
    run_cli: CliRun, local_dir: Path
) -> None:
    # A make local that was killed (kill -9) and could not clean up after itself
    (local_dir / "live").mkdir(parents=True)
    (local_dir / "live" / "stack.json").write_text(
        json.dumps(
            {
                "format": "s3-to-wistia local stack 1",
                "started_by": "make local",
                "pid": 2**22 + 12345,
                "started_at": "2026-01-01T00:00:00Z",
                "endpoint_url": "http://127.0.0.1:9",
                "region": "us-east-1",
                "access_key_id": "AKIALOCALSTACKTEST01",
                "secret_access_key": "local-stack-secret-access-key-not-a-real-one",
                "resources": {},
                "function_environment": {},
            }
        )
    )

    run = run_cli("status", "--local")

    assert run.code == 1
    [line] = run.error_lines
    assert "no local stack is up: start one with `make local`" in line
