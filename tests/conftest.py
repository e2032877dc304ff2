"""Shared fixtures: moto's server and the Wistia emulator on loopback, and a fresh copy
of template.yaml's resources for every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from local_stack.aws import LocalAws
from local_stack.harness import CapturedLogger, make_importer
from local_stack.template import Stack, provision
from s3_to_wistia.config import Settings
from s3_to_wistia.importing import Importer
from wistia_emulator import WistiaEmulator

pytest_plugins = ["wistia_emulator.pytest_plugin"]

TOKEN = "test-token"


@pytest.fixture(autouse=True)
def local_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the CLI's --local looks (and make local writes): a folder of the test's own, so
    a `make local` the developer keeps up is never what a test talks to."""
    folder = tmp_path_factory.mktemp("local")
    monkeypatch.setenv("S3_TO_WISTIA_LOCAL_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def moto_server() -> Iterator[LocalAws]:
    """moto's server for the whole session; boto3 finds it through AWS_ENDPOINT_URL."""
    with LocalAws() as aws, pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION"):
            patch.delenv(name, raising=False)
        for name, value in aws.environment().items():
            patch.setenv(name, value)
        yield aws


@pytest.fixture
def stack(moto_server: LocalAws) -> Stack:
    """A fresh bucket, table, queue and secret, named apart from every other test's."""
    return provision(token=TOKEN)


@pytest.fixture
def settings(stack: Stack, wistia_emulator: WistiaEmulator) -> Settings:
    """The function's settings as the template sets them, pointed at the emulator."""
    environment = stack.environment_for(wistia_emulator.url)
    return Settings.from_env(environment)


@pytest.fixture
def captured_log() -> CapturedLogger:
    return CapturedLogger.create()


@pytest.fixture
def importer_for(
    captured_log: CapturedLogger,
) -> Callable[..., Importer]:
    """Build the function's Importer from settings, with any field overridden."""

    def build(settings: Settings, **overrides: Any) -> Importer:
        return make_importer(replace(settings, **overrides), captured_log.logger)

    return build


@pytest.fixture
def importer(settings: Settings, importer_for: Callable[..., Importer]) -> Importer:
    return importer_for(settings)
