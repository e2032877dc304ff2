"""The fast unit tier: pure logic and in-memory fakes only. Sockets are disabled, so a test
that reaches for the network fails instead of quietly becoming an integration test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # In a whole run the integration tier's moto server (session-wide) has set
    # AWS_ENDPOINT_URL; a unit test's in-memory moto (mock_aws) only answers AWS's own hosts.
    for name in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
