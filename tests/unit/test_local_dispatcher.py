"""The local stack finds each request's service without moto's walk of its own package
folder on every request (CachedDispatcher): the walk runs once a host, under the lock every
request takes, and the answer is the one moto gives."""

from __future__ import annotations

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from local_stack.aws import CachedDispatcher

HOSTS = (
    "dynamodb.us-east-1.amazonaws.com",
    "s3.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "secretsmanager.us-east-1.amazonaws.com",
    "moto_api",
    None,
)


def test_each_host_is_looked_up_once_and_routed_where_moto_routes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walks: list[int] = []
    moto_walk = backends.list_of_moto_modules

    def counted_walk() -> list[str]:
        walks.append(1)
        return list(moto_walk())

    monkeypatch.setattr(backends, "list_of_moto_modules", counted_walk)
    moto_router = DomainDispatcherApplication(create_backend_app)
    expected = [moto_router.get_backend_for_host(host) for host in HOSTS]
    assert "dynamodb" in expected and "s3" in expected
    walks.clear()

    cached = CachedDispatcher(create_backend_app)
    for _ in range(100):
        assert [cached.get_backend_for_host(host) for host in HOSTS] == expected

    assert len(walks) <= len(HOSTS)
