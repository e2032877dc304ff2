"""Injected faults: what the network or Wistia's edge can do to a request.

A test arms faults to check that a client survives them: a slow answer, a 503 from a
load balancer, a connection dropped before or after Wistia acted, or a 429.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

FAULT_KINDS = ("latency", "status", "drop", "drop_after_create", "rate_limit", "trickle")


@dataclass
class Fault:
    """One armed fault. Applies to the next `count` matching requests, to each matching
    request with `probability`, or (neither given) to every matching request until cleared."""

    kind: str
    count: int | None = None
    probability: float | None = None
    seed: int | None = None  # makes `probability` reproducible
    match_method: str = "POST"  # "*" matches every method
    match_path: str = "/"  # exact, or a prefix when it ends with "*" ("/v1/*")
    # latency: wait this long, then handle the request normally; trickle: handle it
    # normally, then send the answer one byte every `seconds`
    seconds: float = 0.0
    trickle_headers: bool = False  # trickle: the status line and headers too, not just the body
    status: int = 503  # status: the answer's code, body and content type
    # None: "<status> <reason phrase>". "{url}" in it is replaced by the request's url
    # parameter, "{url_quoted}" by the same percent-encoded: an error page that quotes what
    # it was given.
    body: str | None = None
    content_type: str = "text/plain"
    retry_after: int = 1  # rate_limit: the Retry-After header

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.count is not None and self.probability is not None:
            raise ValueError("give a fault a count or a probability, not both")
        if self.count is not None and self.count < 1:
            raise ValueError("a fault's count must be at least 1")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("a fault's probability must be between 0 and 1")
        if self.seconds < 0 or self.retry_after < 0:
            raise ValueError("seconds and retry_after cannot be negative")
        if not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")

    def matches(self, method: str, path: str) -> bool:
        if self.match_method not in ("*", method.upper()):
            return False
        if self.match_path.endswith("*"):
            return path.startswith(self.match_path[:-1])
        return path == self.match_path

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)


class _ArmedFault:
    """A fault plus what it needs at run time: its remaining count and its own RNG."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.remaining = fault.count
        self._rng = random.Random(fault.seed)  # noqa: S311 - test jitter, not crypto

    def fires(self) -> bool:
        if self.remaining is not None:
            self.remaining -= 1
            return True
        if self.fault.probability is not None:
            return self._rng.random() < self.fault.probability
        return True

    @property
    def used_up(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


class FaultBook:
    """The armed faults, in the order added. Not thread safe: the account's lock guards it."""

    def __init__(self) -> None:
        self._armed: list[_ArmedFault] = []

    def add(self, fault: Fault) -> None:
        self._armed.append(_ArmedFault(fault))

    def clear(self) -> None:
        self._armed.clear()

    def select(self, method: str, path: str) -> list[Fault]:
        """The faults that fire for this request: any latencies, then at most one fault that
        decides the outcome (status, drop, drop_after_create or rate_limit)."""
        chosen: list[Fault] = []
        for armed in list(self._armed):
            if not armed.fault.matches(method, path) or not armed.fires():
                continue
            if armed.used_up:
                self._armed.remove(armed)
            chosen.append(armed.fault)
            if armed.fault.kind != "latency":
                break
        return chosen
