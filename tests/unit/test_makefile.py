"""The deploy and operate targets parse and call SAM CLI as documented (`make -n` only: they
need AWS, or Docker for `make invoke`)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from local_stack.template import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def dry_run(*arguments: str) -> str:
    finished = subprocess.run(  # noqa: S603 - make, with our own arguments
        ["make", "-n", *arguments],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    # One line per command, continuation lines joined, as the shell runs it.
    return finished.stdout.replace("\\\n", " ")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["deploy"], ".venv-sam/bin/sam deploy"),
        (
            ["deploy", "STACK=media-staging", 'PARAMS=WistiaProjectMap="{\\"a/\\":\\"p1\\"}"'],
            "sam deploy  --stack-name media-staging --parameter-overrides "
            '\'WistiaProjectMap="{\\"a/\\":\\"p1\\"}"\'',
        ),
        (["outputs", "CONFIG_ENV=staging"], "sam list stack-outputs --config-env staging"),
        (
            ["invoke", "EVENT=events/s3-object-created.json"],
            'sam local invoke ImportFunction --event "events/s3-object-created.json"',
        ),
        (["logs", "FILTER=ERROR"], "sam logs --name ImportFunction --tail"),
        (["delete"], ".venv-sam/bin/sam delete"),
        (
            ["redrive", "DRY_RUN=1", "MAX=5"],
            ".venv/bin/s3-to-wistia redrive",
        ),
        (
            ["cli", "ARGS=upload 'first take.mp4' --json"],
            ".venv/bin/s3-to-wistia upload 'first take.mp4' --json",
        ),
    ],
)
def test_deploy_and_operate_targets_parse(arguments: list[str], expected: str) -> None:
    assert expected in dry_run(*arguments)


def test_redrive_passes_its_options() -> None:
    command = " ".join(
        dry_run("redrive", "DRY_RUN=1", "MAX=5", "STACK=media", "CONFIG_ENV=staging").split()
    )

    assert "s3-to-wistia redrive --stack media --config-env staging --dry-run --limit 5" in command


def test_deploy_builds_first() -> None:
    output = dry_run("deploy")

    assert output.index("sam build") < output.index("sam deploy")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["bench", "ARGS=--quick"], "-m bench --quick"),
        (["reliability", "ARGS=--quick"], "-m reliability --quick"),
        (["bench"], "-m figures"),
        (["reliability"], "-m figures"),
        (["test", "ARGS=-x tests/unit"], ".venv/bin/pytest -x tests/unit"),
        (["unit"], ".venv/bin/pytest tests/unit"),
        (["run", "SOURCE=my videos"], '-m local_stack.run --source "my videos"'),
        (["local", "SOURCE=my videos"], '-m local_stack.serve --source "my videos"'),
        (["emulator", "PORT=9000", "TOKEN=t1"], "--port 9000 --token t1"),
        (["figures"], "-m figures"),
    ],
)
def test_the_documented_options_reach_their_commands(arguments: list[str], expected: str) -> None:
    assert expected in " ".join(dry_run(*arguments).split(" "))


def test_help_lists_every_target_without_colour_codes_in_a_pipe() -> None:
    finished = subprocess.run(
        ["make", "--no-print-directory", "help"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert finished.returncode == 0
    assert "\x1b[" not in finished.stdout
    targets = {line.split()[0] for line in finished.stdout.splitlines() if line.strip()}
    assert {"run", "local", "test", "unit", "lint", "bench", "reliability", "figures", "cli"} <= (
        targets
    )
