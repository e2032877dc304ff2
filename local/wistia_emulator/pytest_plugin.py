"""pytest fixtures for the Wistia emulator.

Register with `pytest_plugins = ["wistia_emulator.pytest_plugin"]` in a conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wistia_emulator.server import WistiaEmulator

TEST_TOKEN = "test-token"


@pytest.fixture
def wistia_emulator() -> Iterator[WistiaEmulator]:
    """A fresh, started emulator accepting `test-token`; stopped after the test."""
    with WistiaEmulator(tokens=(TEST_TOKEN,), processing_delay=0.01) as emulator:
        yield emulator
