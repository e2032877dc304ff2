"""`make run`, as a newcomer runs it: the whole pipeline in a subprocess, judged by what it
prints and its exit status, and what `s3-to-wistia status --local` shows of it afterwards.
Also the pieces it stands on: the sample media writers and the stand-in for Lambda's
asynchronous invocation."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local_stack.delivery import AsyncInvoker, Invocation, object_keys
from local_stack.events import s3_notification, upload
from local_stack.harness import drain
from local_stack.samples import FRAME_CHUNK_ID, avi_bytes, builtin_samples, wav_bytes
from local_stack.template import ROOT, Stack

RUN_TIMEOUT = 120
CLI = Path(sys.executable).parent / "s3-to-wistia"


def checkout_environment() -> dict[str, str]:
    """This environment, as a shell in the checkout has it: nothing on PYTHONPATH (the run
    finds the function's code from template.yaml), the checkout's own .local/."""
    return {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "S3_TO_WISTIA_LOCAL_DIR")
    }


@dataclass(frozen=True)
class SampleRun:
    finished: subprocess.CompletedProcess[str]
    seconds: float


@pytest.fixture(scope="module")
def sample_run() -> SampleRun:
    """One `make run` of the built-in samples, shared by the tests that read it."""
    started = time.monotonic()
    finished = make_run()
    return SampleRun(finished, time.monotonic() - started)


def make_run(*arguments: str) -> subprocess.CompletedProcess[str]:
    """What `make run` executes, from the repository root."""
    environment = checkout_environment()
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local_stack.run", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def table_rows(output: str, first_header: str) -> list[list[str]]:
    """The rows of the plain-text table whose header starts with `first_header`."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(first_header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_make_run_shows_every_sample_where_it_should_end(sample_run: SampleRun) -> None:
    finished = sample_run.finished

    output = finished.stdout
    assert finished.returncode == 0, output + finished.stderr
    assert sample_run.seconds < 30
    rows = {row[0]: row for row in table_rows(output, "object key")}
    for sample in builtin_samples():
        row = rows[sample.key]
        assert row[1] == sample.status, row
        if sample.status == "SUBMITTED":
            assert re.fullmatch(r"[a-z0-9]{10}", row[2]), row
            assert row[3] == "ready", row
            # and the webhooks brought that status into the record
            assert row[4] == "ready", row
        if sample.fails_at_wistia:
            assert (row[3], row[4]) == ("failed", "failed"), row
        if sample.reason:
            assert sample.reason in row[5], row
        if sample.delivered_twice:
            assert "1 Wistia media by this name" in row[5], row
    assert len(rows) == len(builtin_samples())
    # The dead-letter queue holds exactly the upload over the video limit and the file Wistia
    # could not process, and says why
    assert "Dead-letter queue: 2 messages" in output
    dead_letters = table_rows(output.split("Dead-letter queue", 1)[1], "object key")
    reasons = {row[0]: row[2] for row in dead_letters}
    assert set(reasons) == {"One video too many.avi", "Not really a video.avi"}
    assert "video limit" in reasons["One video too many.avi"]
    assert "Wistia could not process the media" in reasons["Not really a video.avi"]
    assert "OK: all 9 objects ended where they should." in output
    # Then the objects put in the bucket before the function was wired up (never an event)
    # came in through the backfill, each once, and the events' objects were left alone
    assert "3 objects put in the bucket before the function was wired up" in output
    backfilled = {row[0]: row for row in table_rows(output, "object from before")}
    assert set(backfilled) == {
        "earlier/Launch keynote 2019.avi",
        "earlier/voice memos/Q1 stand-up.wav",
        "earlier/notes from 2019.txt",
    }
    for key in ("earlier/Launch keynote 2019.avi", "earlier/voice memos/Q1 stand-up.wav"):
        assert backfilled[key][1] == "succeeded"
        assert re.fullmatch(
            r"SUBMITTED: imported into Wistia as media [a-z0-9]{10}", backfilled[key][2]
        )
    assert backfilled["earlier/notes from 2019.txt"][2].startswith("SKIPPED: extension 'txt'")
    assert "job Complete: 12 of 12 tasks succeeded, 0 failed" in output
    assert (
        "OK: the backfill imported 2 media from before and skipped 1, each once; the 9 objects "
        "the events had handled were not imported again." in output
    )
    # And an overwritten object's new file is swapped into its media, which keeps its id
    swapped = re.search(
        r"new version imported as media ([a-z0-9]{10}), ready, then swapped into ([a-z0-9]{10})",
        output,
    )
    assert swapped, output
    assert swapped.group(2) == rows["talks/C++ talk + Q&A.avi"][2]
    assert swapped.group(1) != swapped.group(2)
    assert f"OK: the overwrite kept its hashed id: media {swapped.group(2)} now holds" in output
    # And last, a deleted object's media is deleted at Wistia (OnDelete=delete), by hashed id
    deleted = re.search(r"DELETED +audio/café déjà vu\.wav +media ([a-z0-9]{10}) deleted\n", output)
    assert deleted, output
    hashed_id = deleted.group(1)
    assert hashed_id == rows["audio/café déjà vu.wav"][2]
    assert f"OK: the deletion was followed: media {hashed_id} deleted at Wistia" in output
    # And the console stays readable: no request lines, no JSON logs, but where they went
    assert '"GET ' not in output and "HTTP/1.1" not in output
    assert '{"level"' not in output and '"_aws"' not in output
    assert finished.stderr == ""
    log = ROOT / ".local" / "run" / "function.log"
    assert ".local/run/function.log" in output
    assert '"message":"import submitted"' in log.read_text(encoding="utf-8")
    # And neither log holds a presigned URL's credentials, though the server log lists the
    # requests that carried them
    servers = (ROOT / ".local" / "run" / "servers.log").read_text(encoding="utf-8")
    assert "GET /" in servers
    for text in (servers, log.read_text(encoding="utf-8")):
        assert "X-Amz-Signature" not in text and "X-Amz-Credential" not in text


def test_after_make_run_status_local_shows_the_runs_records(sample_run: SampleRun) -> None:
    # Given a finished make run, which ends by suggesting the command
    assert sample_run.finished.returncode == 0, sample_run.finished.stdout
    last = sample_run.finished.stdout.splitlines()[-1]
    assert "s3-to-wistia status --local" in last
    assert "nothing is left running" in sample_run.finished.stdout.splitlines()[-2]

    # When the operator runs it, nothing of the run being up any more
    shown = subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "status", "--local", "--json"],
        cwd=ROOT,
        env=checkout_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it shows every sample's record, as the run left it, and says where from
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["method"] == "snapshot"
    assert "the snapshot make run left" in shown.stderr
    by_key = {r["object_key"]: r for r in document["records"]}
    assert set(by_key) == {sample.key for sample in builtin_samples()}
    for sample in builtin_samples():
        assert by_key[sample.key]["status"] == sample.status, sample.key
    submitted = sum(sample.status == "SUBMITTED" for sample in builtin_samples())
    assert document["media_totals"] == {"ready": submitted}


def test_make_run_with_source_uploads_every_file_under_it(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "first take.avi").write_bytes(avi_bytes(hue=30))
    (tmp_path / "voice memo.wav").write_bytes(wav_bytes())

    finished = make_run("--source", str(tmp_path))

    assert finished.returncode == 0, finished.stdout + finished.stderr
    rows = {row[0]: row for row in table_rows(finished.stdout, "object key")}
    assert set(rows) == {"clips/first take.avi", "voice memo.wav"}
    assert all(row[1] == "SUBMITTED" and row[3:5] == ["ready", "ready"] for row in rows.values())
    assert "no video limit" in finished.stdout
    assert "Dead-letter queue: 0 messages" in finished.stdout


def test_make_run_refuses_a_source_that_is_not_a_folder(tmp_path: Path) -> None:
    finished = make_run("--source", str(tmp_path / "missing"))

    assert finished.returncode == 2
    assert "is not a directory" in finished.stderr


# --- the sample media ------------------------------------------------------------------------


@dataclass
class Chunk:
    fourcc: bytes
    offset: int  # of the chunk's id in the file
    size: int
    payload: bytes
    list_type: bytes | None = None
    children: list[Chunk] = field(default_factory=list)

    def find(self, fourcc: bytes) -> Chunk:
        return next(c for c in self.walk() if fourcc in (c.fourcc, c.list_type))

    def walk(self) -> Iterator[Chunk]:
        for child in self.children:
            yield child
            yield from child.walk()


def parse_riff(data: bytes, start: int = 0, end: int | None = None) -> list[Chunk]:
    """RIFF chunks between start and end, LIST and RIFF chunks parsed recursively."""
    end = len(data) if end is None else end
    chunks = []
    position = start
    while position < end:
        assert end - position >= 8, "truncated chunk header"
        fourcc = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        payload_start = position + 8
        assert payload_start + size <= end, f"{fourcc!r} runs past its parent"
        chunk = Chunk(fourcc, position, size, data[payload_start : payload_start + size])
        if fourcc in (b"RIFF", b"LIST"):
            chunk.list_type = chunk.payload[:4]
            chunk.children = parse_riff(data, payload_start + 4, payload_start + size)
        chunks.append(chunk)
        position = payload_start + size + size % 2
    assert position == end, "chunks do not fill their parent exactly"
    return chunks


def test_avi_writer_writes_a_well_formed_uncompressed_avi() -> None:
    width, height, frames, fps = 32, 24, 12, 12
    data = avi_bytes(width=width, height=height, frames=frames, fps=fps)

    [riff] = parse_riff(data)

    assert riff.fourcc == b"RIFF" and riff.list_type == b"AVI "
    assert riff.size == len(data) - 8
    assert [c.list_type or c.fourcc for c in riff.children] == [b"hdrl", b"movi", b"idx1"]
    # The main header: frame rate, frame count, one stream, the picture size, an index
    avih = riff.find(b"avih")
    assert avih.size == 56
    micros, _, _, flags, total_frames, _, streams, _, avi_width, avi_height = struct.unpack_from(
        "<10I", avih.payload
    )
    assert (micros, total_frames, streams) == (1_000_000 // fps, frames, 1)
    assert (avi_width, avi_height) == (width, height)
    assert flags & 0x10, "AVIF_HASINDEX"
    # One video stream of uncompressed 24-bit frames
    strh = riff.find(b"strh")
    assert strh.size == 56
    fcc_type, handler = struct.unpack_from("<4s4s", strh.payload)
    scale, rate, _, length = struct.unpack_from("<4I", strh.payload, 20)
    assert (fcc_type, handler, rate / scale, length) == (b"vids", b"DIB ", fps, frames)
    strf = riff.find(b"strf")
    bi_size, bi_width, bi_height, planes, bits, compression = struct.unpack_from(
        "<IiiHHI", strf.payload
    )
    assert (bi_size, bi_width, bi_height, planes, bits, compression) == (
        40,
        width,
        height,
        1,
        24,
        0,
    )
    # Every frame is a full picture, and the index points at each of them
    movi = riff.find(b"movi")
    frame_size = width * height * 3
    assert [(c.fourcc, c.size) for c in movi.children] == [(FRAME_CHUNK_ID, frame_size)] * frames
    assert len({c.payload for c in movi.children}) == frames, "the frames differ"
    index = riff.find(b"idx1")
    assert index.size == 16 * frames
    movi_type_offset = movi.offset + 8  # idx1 offsets count from the 'movi' list type
    for n, frame in enumerate(movi.children):
        ckid, entry_flags, offset, size = struct.unpack_from("<4sIII", index.payload, 16 * n)
        assert (ckid, entry_flags & 0x10, size) == (FRAME_CHUNK_ID, 0x10, frame_size)
        assert movi_type_offset + offset == frame.offset


def test_wav_writer_writes_a_readable_pcm_wav() -> None:
    with wave.open(io.BytesIO(wav_bytes(seconds=0.5, rate=8000)), "rb") as sound:
        assert (sound.getnchannels(), sound.getsampwidth(), sound.getframerate()) == (1, 2, 8000)
        assert sound.getnframes() == 4000
        assert any(sound.readframes(100))


# --- the stand-in for Lambda's asynchronous invocation ---------------------------------------


class FlakyHandler:
    """A handler that raises for its first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.request_ids: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.request_ids.append(context.aws_request_id)
        if len(self.request_ids) <= self.failures:
            raise RuntimeError(f"attempt {len(self.request_ids)} failed")
        return {"results": []}


def invoke_and_wait(handler: FlakyHandler, event: dict[str, Any], stack: Stack) -> Invocation:
    finished: list[Invocation] = []
    retries: list[float] = []
    invoker = AsyncInvoker(
        handler,
        failure_queue_url=stack.queue_url,
        timeout_seconds=5,
        on_result=finished.append,
        on_retry=lambda invocation, delay: retries.append(delay),
        retry_delays=(0.01, 0.02),
        instances=1,
    ).start()
    try:
        invoker.invoke(event)
        deadline = time.monotonic() + 10
        while not finished and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        invoker.stop()
    [invocation] = finished
    assert retries == [0.01, 0.02][: invocation.attempts - 1]
    return invocation


def test_a_failing_event_is_retried_twice_then_sent_to_the_failure_destination(
    stack: Stack,
) -> None:
    event = s3_notification(upload(stack.bucket, "retries/C++ demo.avi", b"x"))
    handler = FlakyHandler(failures=3)

    invocation = invoke_and_wait(handler, event, stack)

    assert invocation.attempts == 3 and not invocation.succeeded
    assert invocation.keys == ["retries/C++ demo.avi"]
    # The retries of one event keep its request id, as Lambda's do
    assert len(set(handler.request_ids)) == 1
    [record] = drain(stack.queue_url)
    assert record["version"] == "1.0"
    assert record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": handler.request_ids[0],
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-local:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == event
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "attempt 3 failed"
    assert object_keys(record["requestPayload"]) == ["retries/C++ demo.avi"]


def test_an_event_that_succeeds_on_a_retry_leaves_nothing_in_the_queue(stack: Stack) -> None:
    event = s3_notification(upload(stack.bucket, "retries/ok.avi", b"x"))

    invocation = invoke_and_wait(FlakyHandler(failures=1), event, stack)

    assert invocation.attempts == 2 and invocation.succeeded
    assert invocation.response == {"results": []}
    assert drain(stack.queue_url) == []


def test_object_keys_are_decoded_as_s3_encodes_them() -> None:
    notification = {"Records": [{"s3": {"object": {"key": "a+b%2Fc%2Bd+%C3%A9.avi"}}}]}

    assert object_keys(notification) == ["a b/c+d é.avi"]
    assert object_keys({"hello": "world"}) == []
