"""The account's rate limit: N requests per sliding window, upload and Data API together."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowRateLimiter:
    """Admits at most `limit` requests in any `window` seconds (None: no limit).

    Not thread safe: the account's lock guards it. Refused requests take no slot, so a
    client that keeps knocking is admitted as soon as the window frees one.
    """

    def __init__(
        self,
        limit: int | None,
        window: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._admitted: deque[float] = deque()
        self.configure(limit, window)

    def configure(self, limit: int | None, window: float) -> None:
        if limit is not None and limit < 1:
            raise ValueError("rate_limit must be at least 1 (or None for no limit)")
        if window <= 0:
            raise ValueError("rate_window must be positive")
        self.limit = limit
        self.window = window

    def reset(self) -> None:
        self._admitted.clear()

    def try_acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.limit is None:
            return True
        now = self._clock()
        self._forget_before(now - self.window)
        if len(self._admitted) >= self.limit:
            return False
        self._admitted.append(now)
        return True

    def seconds_until_free(self) -> int:
        """Whole seconds until a slot frees (for Retry-After), at least 1."""
        if self.limit is None or len(self._admitted) < self.limit:
            return 1
        oldest_that_blocks = self._admitted[len(self._admitted) - self.limit]
        wait = oldest_that_blocks + self.window - self._clock()
        return max(1, math.ceil(wait))

    def _forget_before(self, cutoff: float) -> None:
        while self._admitted and self._admitted[0] <= cutoff:
            self._admitted.popleft()
