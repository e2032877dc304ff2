"""Fixtures for the CLI's integration tests (see clitools.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from integration.clitools import Deployment, Run, deploy, describe_local_stack
from local_stack.aws import LocalAws
from local_stack.template import Stack
from s3_to_wistia.cli.local import LocalStack
from s3_to_wistia.cli.main import main
from wistia_emulator import WistiaEmulator


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """`s3-to-wistia ARGS...`: its real entry point, in this process."""

    def run(*arguments: str) -> Run:
        capsys.readouterr()
        code = main(list(arguments))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def deployment(stack: Stack, wistia_emulator: WistiaEmulator) -> Deployment:
    return deploy(stack, wistia_emulator.url)


@pytest.fixture
def local_up(
    stack: Stack, moto_server: LocalAws, wistia_emulator: WistiaEmulator, local_dir: Path
) -> LocalStack:
    """The test's stack, described as up, as `make local` describes the one it serves."""
    return describe_local_stack(local_dir, stack, moto_server.endpoint_url, wistia_emulator.url)
