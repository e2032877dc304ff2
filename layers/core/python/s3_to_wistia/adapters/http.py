"""An urllib3 pool whose calls end by a deadline, however slowly the answer trickles in.

Socket timeouts bound each read, not a call: an answer that sends one byte a second never
times out. Here every read of an answer (status line, headers and body) first shrinks the
socket's timeout to what is left before the calling thread's deadline, so the whole call
ends by then, with urllib3's ordinary ReadTimeoutError. The deadline is per thread (the
SQS batch imports on several threads at once) and set with `deadline()`.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


@contextmanager
def deadline(at: float | None) -> Iterator[None]:
    """Calls made by this thread inside the block end by `at` (epoch seconds)."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = at
    try:
        yield
    finally:
        _local.deadline = previous


def bounded_pool(**pool_kw: Any) -> urllib3.PoolManager:
    """A PoolManager whose connections honour `deadline()`."""
    manager = urllib3.PoolManager(**pool_kw)
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}
    return manager


class _DeadlineReader(io.RawIOBase):
    """The socket's reads, each one limited to the time left before the deadline."""

    def __init__(self, sock: socket.socket, at: float) -> None:
        self._sock = sock
        self._at = at
        self._timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._at - time.time()
        if left <= 0:
            raise TimeoutError("the call's deadline passed while the answer was arriving")
        self._sock.settimeout(left if self._timeout is None else min(self._timeout, left))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client.HTTPResponse asks of a socket: makefile('rb')."""

    def __init__(self, sock: socket.socket, at: float) -> None:
        self._sock = sock
        self._at = at

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._at))


class _Response(http.client.HTTPResponse):
    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        bounded: Any
        at = getattr(_local, "deadline", None)
        bounded = sock if at is None else _DeadlineSocket(sock, at)
        super().__init__(bounded, *args, **kwargs)


class _Connection(HTTPConnection):
    response_class = _Response


class _HTTPSConnection(HTTPSConnection):
    response_class = _Response


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection
