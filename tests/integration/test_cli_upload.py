"""`s3-to-wistia upload` against the Wistia emulator over HTTP, the token read from a secret
in moto's server: what Wistia received (the emulator counts the bytes and their sha256),
what the operator sees, and the exit code."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from integration.clitools import CLI, Run, run_on_terminal
from local_stack.aws import LocalAws
from local_stack.harness import budget_times
from local_stack.template import Stack
from s3_to_wistia.adapters.budget import DynamoDBSchedule
from s3_to_wistia.budget import MAX_PAUSE_SECONDS
from s3_to_wistia.cli.local import LocalStack
from s3_to_wistia.cli.main import main
from wistia_emulator import Fault, WistiaEmulator

TOKEN = "test-token"
# Colour and cursor escapes: none may reach a pipe.
ESCAPE = "\x1b["
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")


@pytest.fixture
def cli(
    stack: Stack, wistia_emulator: WistiaEmulator, capsys: pytest.CaptureFixture[str]
) -> Iterator[Any]:
    """s3-to-wistia's main() in this process, pointed at the test's secret and emulator."""

    def run(*arguments: str, target: tuple[str, ...] | None = None) -> Run:
        if target is None:
            target = ("--token-secret", stack.secret_id, "--upload-url", wistia_emulator.url)
        capsys.readouterr()
        code = main([*arguments, *target])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    yield run


def media_file(directory: Path, name: str, size: int, seed: int = 1) -> Path:
    """A file of `size` pseudo-random bytes (not a multiple of any chunk size)."""
    path = directory / name
    block = hashlib.sha256(str(seed).encode()).digest() * 4096
    with path.open("wb") as handle:
        left = size
        while left:
            handle.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def uploads(emulator: WistiaEmulator) -> list[dict[str, Any]]:
    return [r for r in emulator.requests() if r["method"] == "POST" and r["path"] == "/"]


# --- what Wistia receives --------------------------------------------------------------------


def test_upload_sends_the_whole_file_and_prints_its_hashed_id(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = media_file(tmp_path, "first take.mp4", 3 * 1024 * 1024 + 17)

    run = cli("upload", str(clip))

    assert run.code == 0, run.err
    [media] = wistia_emulator.medias()
    assert (media["bytes"], media["sha256"]) == (clip.stat().st_size, sha256_of(clip))
    assert media["name"] == "first take.mp4"
    assert run.out.strip() == f"{clip}: uploaded as {media['hashed_id']} (3.0 MiB)"
    [request] = uploads(wistia_emulator)
    assert request["auth"] == "bearer"
    assert TOKEN not in run.out + run.err


def test_json_output_lists_every_upload_with_its_hashed_id(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    project = wistia_emulator.create_project("Launch")
    first = media_file(tmp_path, "a.mp4", 70_000, seed=1)
    second = media_file(tmp_path, "b.mov", 1_500_000, seed=2)

    run = cli("upload", str(first), str(second), "--project", project["hashed_id"], "--json")

    assert run.code == 0, run.err
    document = run.json()
    assert (document["uploaded"], document["failed"]) == (2, 0)
    by_hashed_id = {m["hashed_id"]: m for m in wistia_emulator.medias()}
    for entry, path in zip(document["uploads"], (first, second), strict=True):
        media = by_hashed_id[entry["hashed_id"]]
        assert entry["file"] == str(path)
        assert entry["bytes"] == media["bytes"] == path.stat().st_size
        assert media["sha256"] == sha256_of(path)
        assert media["project_id"] == project["hashed_id"]
        assert entry["possible_duplicate"] is False


def test_name_sets_the_media_name(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = media_file(tmp_path, "raw_0001.mp4", 10_000)

    run = cli("upload", str(clip), "--name", "Product tour (final)")

    assert run.code == 0, run.err
    assert [m["name"] for m in wistia_emulator.medias()] == ["Product tour (final)"]


# --- retries ---------------------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    wistia_emulator.add_fault(Fault(kind="rate_limit", count=1, retry_after=1))
    clip = media_file(tmp_path, "clip.mp4", 200_000)

    run = cli("upload", str(clip))

    assert run.code == 0, run.err
    assert [r["status"] for r in uploads(wistia_emulator)] == [429, 200]
    assert "as Wistia asked (Retry-After)" in run.err
    [media] = wistia_emulator.medias()
    assert media["sha256"] == sha256_of(clip)


def test_5xx_answers_are_retried(cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path) -> None:
    wistia_emulator.add_fault(Fault(kind="status", status=503, count=2))
    clip = media_file(tmp_path, "clip.mp4", 200_000)

    run = cli("upload", str(clip), "--json")

    assert run.code == 0, run.err
    assert [r["status"] for r in uploads(wistia_emulator)] == [503, 503, 200]
    [entry] = run.json()["uploads"]
    assert entry["attempts"] == 3
    assert entry["possible_duplicate"] is False
    assert len(wistia_emulator.medias()) == 1


def test_retries_are_bounded(cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path) -> None:
    wistia_emulator.add_fault(Fault(kind="status", status=502))
    clip = media_file(tmp_path, "clip.mp4", 50_000)

    run = cli("upload", str(clip), "--attempts", "2")

    assert run.code == 1
    assert len(uploads(wistia_emulator)) == 2
    assert run.error_lines == [
        f"s3-to-wistia: error: {clip}: Wistia is unavailable (502); gave up after 2 tries"
    ]
    assert wistia_emulator.medias() == []


def test_a_retry_after_a_lost_answer_says_it_may_have_made_a_duplicate(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    # Wistia creates the media, then the connection drops before its answer arrives.
    wistia_emulator.add_fault(Fault(kind="drop_after_create", count=1))
    clip = media_file(tmp_path, "clip.mp4", 300_000)

    run = cli("upload", str(clip), "--json")

    assert run.code == 0, run.err
    [entry] = run.json()["uploads"]
    assert entry["possible_duplicate"] is True
    medias = wistia_emulator.medias()
    assert [m["sha256"] for m in medias] == [sha256_of(clip)] * 2
    assert entry["hashed_id"] == medias[1]["hashed_id"]
    assert "Wistia may now hold it twice" in run.err


def test_a_connection_failure_is_retried(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    wistia_emulator.add_fault(Fault(kind="drop", count=1))
    clip = media_file(tmp_path, "clip.mp4", 100_000)

    run = cli("upload", str(clip))

    assert run.code == 0, run.err
    assert [m["sha256"] for m in wistia_emulator.medias()] == [sha256_of(clip)]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/"


def test_wistia_unreachable_is_one_line(cli: Any, stack: Stack, tmp_path: Path) -> None:
    clip = media_file(tmp_path, "clip.mp4", 10_000)

    run = cli(
        "upload",
        str(clip),
        "--attempts",
        "1",
        target=("--token-secret", stack.secret_id, "--upload-url", closed_port_url()),
    )

    assert run.code == 1
    assert run.error_lines == [
        f"s3-to-wistia: error: {clip}: could not connect to Wistia: NewConnectionError "
        "(check your network and --upload-url); gave up after 1 try"
    ]


def test_aws_unreachable_is_one_line(
    cli: Any, stack: Stack, wistia_emulator: WistiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = closed_port_url().rstrip("/")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)

    run = cli("upload", __file__)

    assert run.code == 1
    [line] = run.error_lines
    assert line.startswith(f"s3-to-wistia: error: AWS is unreachable at {endpoint}")
    assert "Traceback" not in run.err


# --- refusals and bad input ------------------------------------------------------------------


def test_a_rejected_token_is_one_line_naming_the_secret_and_stops_the_run(
    cli: Any, stack: Stack, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    wistia_emulator.set_tokens("another-token")
    first = media_file(tmp_path, "a.mp4", 10_000)
    second = media_file(tmp_path, "b.mp4", 10_000)

    run = cli("upload", str(first), str(second))

    assert run.code == 1
    assert run.error_lines[0] == (
        f"s3-to-wistia: error: {first}: Wistia rejected the API token in the secret "
        f"'{stack.secret_id}' (401): put a valid token with upload permission in it"
    )
    assert len(uploads(wistia_emulator)) == 1  # the second file was not sent
    assert "Traceback" not in run.err
    assert TOKEN not in run.out + run.err


def test_the_video_limit_stops_the_run(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    wistia_emulator.set_video_limit(0)
    clip = media_file(tmp_path, "a.mp4", 10_000)

    run = cli("upload", str(clip), "--json")

    assert run.code == 1
    [entry] = run.json()["uploads"]
    assert entry["http_status"] == 400
    assert "video limit" in entry["error"]


@pytest.mark.parametrize(
    ("kind", "problem"),
    [("missing", "no such file"), ("directory", "is a directory"), ("empty", "is empty")],
)
def test_files_that_cannot_be_uploaded_stop_everything_before_anything_is_sent(
    cli: Any, wistia_emulator: WistiaEmulator, tmp_path: Path, kind: str, problem: str
) -> None:
    good = media_file(tmp_path, "good.mp4", 10_000)
    bad = tmp_path / f"{kind}.mp4"
    if kind == "directory":
        bad.mkdir()
    elif kind == "empty":
        bad.write_bytes(b"")

    run = cli("upload", str(good), str(bad))

    assert run.code == 1
    assert len(run.error_lines) == 2
    assert run.error_lines[0].startswith(f"s3-to-wistia: error: {bad}: ")
    assert problem in run.error_lines[0]
    assert "nothing was uploaded" in run.error_lines[1]
    assert wistia_emulator.requests() == []
    assert "Traceback" not in run.err


def test_an_unreadable_secret_is_one_line(cli: Any, wistia_emulator: WistiaEmulator) -> None:
    run = cli(
        "upload",
        __file__,
        target=("--token-secret", "no-such-secret", "--upload-url", wistia_emulator.url),
    )

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no Wistia token secret 'no-such-secret' in us-east-1 (or it has "
        "no value yet): check --token-secret / --stack / --region"
    ]
    assert wistia_emulator.requests() == []


def test_a_secret_without_a_token_says_how_to_put_one(
    cli: Any, moto_server: LocalAws, wistia_emulator: WistiaEmulator
) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(Name="cli-empty-token", SecretString='{"token": ""}')

    run = cli(
        "upload",
        __file__,
        target=("--token-secret", "cli-empty-token", "--upload-url", wistia_emulator.url),
    )

    assert run.code == 1
    [line] = run.error_lines
    assert 'has no "token" field' in line
    assert "aws secretsmanager put-secret-value --secret-id cli-empty-token" in line


def test_no_such_stack_is_one_line(cli: Any, wistia_emulator: WistiaEmulator) -> None:
    run = cli("upload", __file__, target=("--stack", "no-such-stack"))

    assert run.code == 1
    assert run.error_lines == [
        "s3-to-wistia: error: no stack 'no-such-stack' in us-east-1: pass --stack NAME "
        "(and --region), or give --token-secret"
    ]


def test_the_stack_outputs_name_the_token_secret(
    cli: Any, stack: Stack, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    cloudformation = boto3.client("cloudformation")
    name = f"cli-{stack.table_name}"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"WistiaTokenSecretArn": {"Value": stack.secret_id}},
            }
        ),
    )
    clip = media_file(tmp_path, "clip.mp4", 10_000)

    run = cli("upload", str(clip), target=("--stack", name, "--upload-url", wistia_emulator.url))

    assert run.code == 0, run.err
    assert len(wistia_emulator.medias()) == 1


def local_variables(
    stack: Stack, wistia_emulator: WistiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What --local reads: the import function's own variables (the budget table among
    them), Wistia pointed at the emulator."""
    for name, value in stack.environment_for(wistia_emulator.url).items():
        monkeypatch.setenv(name, value)


def test_local_takes_the_functions_variables(
    cli: Any,
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local_variables(stack, wistia_emulator, monkeypatch)
    monkeypatch.delenv("WISTIA_API_URL")  # upload needs only the Upload API
    clip = media_file(tmp_path, "clip.mp4", 10_000)

    run = cli("upload", str(clip), target=("--local",))

    assert run.code == 0, run.err
    assert len(wistia_emulator.medias()) == 1


def test_upload_books_on_the_stacks_request_budget_and_a_429_pauses_it_for_all(
    cli: Any,
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the stack's functions' variables (the budget table among them), and Wistia
    # about to answer the first try 429, Retry-After 1
    local_variables(stack, wistia_emulator, monkeypatch)
    wistia_emulator.add_fault(Fault(kind="rate_limit", count=1, retry_after=1))
    clip = media_file(tmp_path, "clip.mp4", 10_000)
    started = time.time()

    run = cli("upload", str(clip), target=("--local",))

    # Then both tries were booked on the account's schedule, and the 429 paused it for
    # every caller, not only for this command
    assert run.code == 0, run.err
    budget = budget_times(stack)
    assert budget["next_slot_at"] > started
    assert started + 0.5 < budget["paused_until"] <= time.time() + 1


def test_while_the_budget_is_paused_upload_sends_nothing_and_says_so(
    cli: Any,
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local_variables(stack, wistia_emulator, monkeypatch)
    schedule = DynamoDBSchedule(boto3.client("dynamodb"), stack.resources["RateBudgetTable"])
    # A pause a little longer than upload waits for a slot (120 s), as long as any caller
    # may write (a longer one would be a wrong clock's, and put back)
    schedule.pause(time.time() + MAX_PAUSE_SECONDS + 1.5)
    clip = media_file(tmp_path, "clip.mp4", 10_000)

    run = cli("upload", str(clip), "--json", target=("--local",))

    assert run.code == 1
    assert "request budget had no slot" in run.json()["uploads"][0]["error"]
    assert uploads(wistia_emulator) == []


def test_local_uploads_to_the_local_stack_make_local_keeps_up(
    cli: Any, local_up: LocalStack, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = media_file(tmp_path, "clip.mp4", 10_000)

    run = cli("upload", str(clip), target=("--local",))

    assert run.code == 0, run.err
    assert len(wistia_emulator.medias()) == 1


def test_local_refuses_an_aws_endpoint_off_this_machine(
    cli: Any, stack: Stack, wistia_emulator: WistiaEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WISTIA_TOKEN_SECRET", stack.secret_id)
    monkeypatch.delenv("AWS_ENDPOINT_URL")

    run = cli("upload", __file__, target=("--local", "--upload-url", wistia_emulator.url))

    assert run.code == 1
    [line] = run.error_lines
    assert "set AWS_ENDPOINT_URL" in line


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("upload", "a.mp4", "b.mp4", "--name", "x"), "--name names one media"),
        (("upload", "a.mp4", "--upload-url", "http://example.com/"), "--upload-url must use https"),
        (("upload", "a.mp4", "--local", "--stack", "x"), "--local and --stack"),
        (("upload", "a.mp4", "--attempts", "0"), "Invalid value for '--attempts'"),
        (("upload",), "Missing argument 'FILE...'"),
        (("upload", "a.mp4", "--bogus"), "No such option '--bogus'"),
        (("bogus",), "No such command 'bogus'"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, arguments: tuple[str, ...], message: str
) -> None:
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    arguments = tuple(str(tmp_path / a) if a.endswith(".mp4") else a for a in arguments)

    code = main(list(arguments))

    err = capsys.readouterr().err
    assert code == 2
    [line] = err.splitlines()
    assert line.startswith("s3-to-wistia: error: ")
    assert message in line


# --- the console script, as an operator runs it ------------------------------------------------


def test_the_console_script_prints_no_colour_into_a_pipe(
    stack: Stack, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = media_file(tmp_path, "clip.mp4", 100_000)
    target = ["--token-secret", stack.secret_id, "--upload-url", wistia_emulator.url]
    environment = {
        k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")
    }

    done = subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "upload", str(clip), str(tmp_path / "missing.mp4"), *target],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    uploaded = subprocess.run(  # noqa: S603
        [str(CLI), "upload", str(clip), *target],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert f"s3-to-wistia: error: {tmp_path / 'missing.mp4'}: no such file" in done.stderr
    assert uploaded.returncode == 0, uploaded.stderr
    assert "uploaded as" in uploaded.stdout
    assert ESCAPE not in done.stdout + done.stderr + uploaded.stdout + uploaded.stderr


def test_no_color_wins_over_a_forced_terminal(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = cli("upload", "missing.mp4")
    monkeypatch.setenv("NO_COLOR", "1")
    plain = cli("upload", "missing.mp4")

    assert COLOUR.search(coloured.err)
    assert not COLOUR.search(plain.err)
    assert plain.code == coloured.code == 1


def test_a_terminal_gets_a_progress_bar(
    stack: Stack, wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = media_file(tmp_path, "clip.mp4", 5 * 1024 * 1024)
    done, shown = run_on_terminal(
        "upload", str(clip), "--token-secret", stack.secret_id, "--upload-url", wistia_emulator.url
    )
    assert done.returncode == 0
    assert "clip.mp4" in shown
    assert "5.0/5.0 MiB" in shown
    assert ESCAPE in shown  # drawn and coloured on the terminal...
    # ...while the result goes, plain, to stdout, a pipe here.
    assert "uploaded as" in done.stdout.decode()
    assert ESCAPE not in done.stdout.decode()


# --- a large file, with bounded memory -----------------------------------------------------------


@pytest.mark.slow
def test_a_1_gib_file_streams_with_bounded_memory(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    size = 1 << 30
    sparse = tmp_path / "sparse.mp4"
    spool = tmp_path / "emulator"
    spool.mkdir()
    # The CLI's own peak memory: a wrapper whose only child is the console script.
    wrapper = (
        "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
        "sys.exit(code)"
    )
    try:
        with sparse.open("wb") as handle:
            handle.truncate(size)  # a hole: no disk used, reads as zeros
        with WistiaEmulator(tokens=(TOKEN,), processing_delay=0.01, data_dir=str(spool)) as emu:
            done = subprocess.run(  # noqa: S603
                [
                    sys.executable,
                    "-c",
                    wrapper,
                    str(CLI),
                    "upload",
                    str(sparse),
                    "--json",
                    "--token-secret",
                    stack.secret_id,
                    "--upload-url",
                    emu.url,
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert emu.wait_until_settled(timeout=60)
            [media] = emu.medias()
    finally:
        sparse.unlink(missing_ok=True)

    assert done.returncode == 0, done.stderr
    assert media["bytes"] == size
    assert media["sha256"] == _sha256_of_zeros(size)
    assert done.stdout and json.loads(done.stdout)["uploads"][0]["hashed_id"] == media["hashed_id"]
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    with capsys.disabled():
        print(f"\n  upload of 1 GiB: the CLI's peak RSS was {peak_kib / 1024:.1f} MiB")
    # A sanity bound only (the goal is under 64 MiB): reading the file whole would be 1 GiB.
    assert peak_kib < 256 * 1024
    # The emulator streamed the upload into its own folder under `spool`, and removed it.
    assert list(spool.iterdir()) == []


def _sha256_of_zeros(size: int) -> str:
    digest = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(size // len(zeros)):
        digest.update(zeros)
    return digest.hexdigest()


def test_the_console_script_is_installed_with_the_project() -> None:
    done = subprocess.run(  # noqa: S603 - our own console script
        [str(CLI), "--version"], capture_output=True, text=True, timeout=30, check=False
    )

    assert done.returncode == 0, f"{CLI} is missing or broken: run `make install`"
    assert done.stdout.startswith("s3-to-wistia, version ")
