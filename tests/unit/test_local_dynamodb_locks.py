"""AtomicDynamoDB's locks without a server: requests on one item wait for each other,
requests on other items do not, and a table-wide request runs alone."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterable
from typing import Any

from local_stack.aws import AtomicDynamoDB

HANG_GUARD = 10.0  # seconds; only ever reached if the lock is wrong


class HoldingApp:
    """A WSGI app that holds each request until told to let it go, and says who is in."""

    def __init__(self) -> None:
        self.inside: list[str] = []
        self.entered = threading.Condition()
        self.release: dict[str, threading.Event] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        label = environ["HTTP_X_LABEL"]
        with self.entered:
            self.inside.append(label)
            self.entered.notify_all()
        self.release.setdefault(label, threading.Event()).wait(HANG_GUARD)
        with self.entered:
            self.inside.remove(label)
        start_response("200 OK", [])
        return [b"{}"]

    def wait_inside(self, label: str) -> bool:
        with self.entered:
            return self.entered.wait_for(lambda: label in self.inside, HANG_GUARD)


def request(operation: str, body: dict[str, Any], label: str) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    return {
        "HTTP_X_AMZ_TARGET": f"DynamoDB_20120810.{operation}",
        "HTTP_X_LABEL": label,
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
    }


def send(middleware: AtomicDynamoDB, environ: dict[str, Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: middleware(environ, lambda *a: None))
    thread.start()
    return thread


def update(key: str, label: str) -> dict[str, Any]:
    return request("UpdateItem", {"TableName": "t", "Key": {"id": {"S": key}}}, label)


def make() -> tuple[AtomicDynamoDB, HoldingApp]:
    app = HoldingApp()
    middleware = AtomicDynamoDB(app)
    app.release["create"] = threading.Event()
    app.release["create"].set()
    create = {
        "TableName": "t",
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    }
    middleware(request("CreateTable", create, "create"), lambda *a: None)
    return middleware, app


def test_requests_on_other_items_run_at_once() -> None:
    middleware, app = make()

    first = send(middleware, update("a", "on a"))
    assert app.wait_inside("on a")
    second = send(middleware, update("b", "on b"))

    assert app.wait_inside("on b")  # in while the request on "a" is still inside
    for label in ("on a", "on b"):
        app.release.setdefault(label, threading.Event()).set()
    first.join()
    second.join()


def test_requests_on_one_item_wait_for_each_other() -> None:
    middleware, app = make()

    first = send(middleware, update("a", "first"))
    assert app.wait_inside("first")
    second = send(middleware, update("a", "second"))
    third = send(middleware, update("b", "other"))
    assert app.wait_inside("other")

    assert "second" not in app.inside  # still held back by the first
    app.release.setdefault("first", threading.Event()).set()
    assert app.wait_inside("second")
    for label in ("second", "other"):
        app.release.setdefault(label, threading.Event()).set()
    for thread in (first, second, third):
        thread.join()


def test_a_table_wide_request_runs_alone() -> None:
    middleware, app = make()

    writer = send(middleware, update("a", "write"))
    assert app.wait_inside("write")
    scan = send(middleware, request("Scan", {"TableName": "t"}, "scan"))
    later = send(middleware, update("b", "later write"))

    app.release.setdefault("write", threading.Event()).set()
    assert app.wait_inside("scan")
    assert app.inside == ["scan"]  # the write that came after it waits
    app.release.setdefault("scan", threading.Event()).set()
    assert app.wait_inside("later write")
    app.release.setdefault("later write", threading.Event()).set()
    for thread in (writer, scan, later):
        thread.join()


def test_the_body_is_still_there_for_moto() -> None:
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.append(environ["wsgi.input"].read())
        return [b"{}"]

    environ = update("a", "x")
    AtomicDynamoDB(app)(environ, lambda *a: None)

    assert json.loads(seen[0]) == {"TableName": "t", "Key": {"id": {"S": "a"}}}
