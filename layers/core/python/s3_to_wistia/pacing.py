"""Spacing one execution environment's calls to Wistia, so that the instances of a function
together stay inside the share of the account's rate they were given.

Lambda runs one invocation at a time in an execution environment, and a function's reserved
concurrency caps how many environments it has. N environments that each call Wistia at most
once every N x 60 / R seconds send at most R requests a minute together, however fast S3
Batch Operations (or anything else) invokes them. A wait is at most one interval (a fraction
of a second at the template's defaults) and never runs past the call's deadline: a call that
cannot have its turn in time raises RetryableError, which the backfill answers
`TemporaryFailure`, so S3 brings the task back later instead of a Lambda sleeping.

This is the one place a caller takes its turn before every Wistia call (PacedWistia wraps the
WistiaApi port, so the Importer stays the only code that calls Wistia). The account-wide
rate budget (issue 12) takes over the same place: a budget shared by every caller replaces
the per-environment interval, and nothing else changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from s3_to_wistia.errors import RetryableError
from s3_to_wistia.model import WistiaAnswer
from s3_to_wistia.ports import WistiaApi


class Pace:
    """One turn every `interval` seconds on average; 0 lets every call through at once.

    A turn not taken in its time (the invocation had no Wistia call to make, or was slow) may
    be taken late: up to `burst` turns back to back, never more (the generic cell rate
    algorithm). So the rate holds over any stretch of time, and `burst - 1` turns at most are
    made up at once: N environments together exceed R a minute by at most N x (burst - 1)
    requests in any window."""

    def __init__(
        self,
        interval: float,
        burst: int = 2,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval < 0 or burst < 1:
            raise ValueError("a pace needs an interval of 0 or more and a burst of 1 or more")
        self.interval = interval
        self._slack = (burst - 1) * interval
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, deadline: float | None = None) -> None:
        """Sleep until this caller's turn (epoch seconds, as `deadline`). RetryableError,
        without waiting, when the turn would come after `deadline`."""
        if self.interval == 0:
            return
        with self._lock:
            now = self._clock()
            turn = max(now - self._slack, self._next)
            if deadline is not None and turn > deadline:
                raise RetryableError(
                    "no turn to call Wistia before the invocation's deadline (the function "
                    "keeps to its share of the account's rate)"
                )
            # Taken now, slept outside the lock: the next caller queues behind this turn.
            self._next = turn + self.interval
        if turn > now:
            self._sleep(turn - now)


class PacedWistia:
    """The WistiaApi port, each call taking its turn from a Pace first."""

    def __init__(self, wistia: WistiaApi, pace: Pace) -> None:
        self._wistia = wistia
        self.pace = pace

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        self.pace.wait(deadline)
        return self._wistia.import_url(form, token, deadline)

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        self.pace.wait(deadline)
        return self._wistia.list_medias(name, project_id, token, deadline)
