"""The fast unit tier: pure logic and in-memory fakes only. Sockets are disabled, so a test
that reaches for the network fails instead of quietly becoming an integration test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
