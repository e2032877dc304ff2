"""Webhooks, sent the way Wistia sends them: a signed JSON POST holding one or several
events, delivered at least once from a background thread.

    POST <webhook url>
    User-Agent: Wistia-Webhooks/0.0.47
    Content-Type: application/json
    X-Wistia-Signature: <hex HMAC-SHA256 of the raw body, keyed with the secret key>

    {"hook": {"uuid": "..."}, "events": [{"uuid": ..., "type": "media.ready", ...}]}

Events that arrive within `batch_window` of each other share a POST (at most `max_batch`).
A receiver that answers anything but 2xx, or cannot be reached, gets the same body again
after a backoff, up to `max_attempts` times. For testing a receiver's idempotency and
ordering, seeded shares of events are sent twice, held back behind later ones, or never
sent. One thread does all of it, however many events there are.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import urllib3

from wistia_emulator.loopback import is_loopback_url, route_localhost_names

logger = logging.getLogger("wistia_emulator")

USER_AGENT = "Wistia-Webhooks/0.0.47"  # the version Wistia's docs name
SIGNATURE_HEADER = "X-Wistia-Signature"
STOP_JOIN_SECONDS = 5.0


def signature(body: bytes, secret: str) -> str:
    """X-Wistia-Signature: hex HMAC-SHA256 of the raw body, keyed with the secret key."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookDelivery:
    """How webhooks are delivered: batching, retries, and the misbehaviour at-least-once
    delivery allows (each share is the probability for one event, drawn with `seed`)."""

    max_batch: int = 10  # events per POST at most
    batch_window: float = 0.05  # seconds a POST waits for more events after the first
    duplicate_share: float = 0.0  # events sent a second time, `hold_seconds` later
    reorder_share: float = 0.0  # events held back `hold_seconds`, so later ones overtake
    drop_share: float = 0.0  # events never sent
    seed: int | None = None
    hold_seconds: float = 0.2
    max_attempts: int = 5  # tries per POST, the first included
    retry_delay: float = 0.05  # wait before the first retry; doubles each time
    max_retry_delay: float = 2.0
    timeout: float = 5.0  # seconds to connect, and to read the answer

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("duplicate_share", "reorder_share", "drop_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("batch_window", "hold_seconds", "retry_delay", "max_retry_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} cannot be negative")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookDelivery:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown webhook delivery fields: {sorted(unknown)}")
        return cls(**data)

    def retry_wait(self, attempt: int) -> float:
        """Seconds before try `attempt + 1`, after try `attempt` failed."""
        return float(min(self.retry_delay * 2 ** (attempt - 1), self.max_retry_delay))


@dataclass
class _Post:
    """One webhook body and its tries."""

    id: int
    events: list[dict[str, Any]]
    body: bytes
    attempts: int = 0


def _event_summary(event: dict[str, Any]) -> dict[str, Any]:
    media = event.get("payload", {}).get("media", {})
    return {
        "uuid": event["uuid"],
        "type": event["type"],
        "media_id": media.get("id"),
        "generated_at": event["generated_at"],
    }


class WebhookSender:
    """Queues events and POSTs them to the configured URL from one daemon thread."""

    def __init__(
        self,
        url: str | None = None,
        secret: str | None = None,
        delivery: WebhookDelivery | None = None,
    ) -> None:
        self._wakeup = threading.Condition()
        self.hook_uuid = str(uuid.uuid4())
        self._url: str | None = None
        self._secret: str | None = None
        self._delivery = delivery or WebhookDelivery()
        self._rng = random.Random(self._delivery.seed)  # noqa: S311 - test chaos, not crypto
        self._ready: deque[tuple[float, dict[str, Any]]] = deque()  # (ready since, event)
        self._held: list[tuple[float, int, dict[str, Any]]] = []  # (due, order, event)
        self._retries: list[tuple[float, int, _Post]] = []  # (due, order, post)
        self._order = itertools.count()
        self._post_ids = itertools.count(1)
        self._in_flight = 0
        self._stopped = False
        self._history = _History()
        self._http = urllib3.PoolManager(retries=False, maxsize=1)
        self._thread: threading.Thread | None = None
        self.configure(url, secret)

    # --- configuration -------------------------------------------------------------------

    def configure(self, url: str | None, secret: str | None = None) -> None:
        """Where to POST and the secret key to sign with (None: keep the current one). url
        None: webhooks off, and what is still queued is abandoned. A new secret signs every
        POST from now on, retries included, as a rotated key in Wistia's settings would."""
        if url is not None and not is_loopback_url(url):
            raise ValueError(f"the webhook URL must be an http URL on loopback, not {url!r}")
        with self._wakeup:
            if url is None:
                self._url = self._secret = None
                self._abandon_queued("webhooks turned off")
            else:
                secret = secret or self._secret
                if not secret:
                    raise ValueError("a webhook needs a secret key to sign its bodies with")
                self._url, self._secret = url, secret
            self._wakeup.notify_all()

    def set_delivery(self, delivery: WebhookDelivery) -> None:
        """New delivery settings (and a fresh RNG from their seed) for events from now on."""
        with self._wakeup:
            self._delivery = delivery
            self._rng = random.Random(delivery.seed)  # noqa: S311 - test chaos, not crypto
            self._wakeup.notify_all()

    @property
    def url(self) -> str | None:
        with self._wakeup:
            return self._url

    @property
    def delivery(self) -> WebhookDelivery:
        with self._wakeup:
            return self._delivery

    # --- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery thread (again after stop(), as the emulator may restart)."""
        with self._wakeup:
            self._stopped = False
        self._thread = threading.Thread(target=self._run, name="wistia-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopped = True
            self._wakeup.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=STOP_JOIN_SECONDS)
        self._http.clear()

    def reset(self) -> None:
        """Forget queued events and the delivery history; keep the configuration."""
        with self._wakeup:
            self._ready.clear()
            self._held.clear()
            self._retries.clear()
            self._history = _History()
            self._rng = random.Random(self._delivery.seed)  # noqa: S311 - test chaos
            self._wakeup.notify_all()

    # --- events in -------------------------------------------------------------------------

    def enqueue(self, event: dict[str, Any]) -> None:
        """Queue one event (cheap: called with the account's lock held). Ignored while no
        webhook is configured, as Wistia sends nothing then."""
        with self._wakeup:
            if self._url is None or self._stopped:
                return
            delivery = self._delivery
            # Three draws per event whatever the outcome: the same seed makes the same choices.
            drop, duplicate, reorder = (self._rng.random() for _ in range(3))
            self._history.events.append(event)
            if drop < delivery.drop_share:
                self._history.dropped.append(_event_summary(event))
                return
            now = time.monotonic()
            if reorder < delivery.reorder_share:
                self._history.reordered.append(event["uuid"])
                self._hold(event, now + delivery.hold_seconds)
            else:
                self._ready.append((now, event))
            if duplicate < delivery.duplicate_share:
                self._history.duplicated.append(event["uuid"])
                self._hold(event, now + 2 * delivery.hold_seconds)
            self._wakeup.notify_all()

    # --- what tests look at ----------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """Every event, every delivery attempt, what was dropped or abandoned, what waits."""
        with self._wakeup:
            return {
                "url": self._url,
                "hook_uuid": self.hook_uuid,
                "delivery": self._delivery.to_dict(),
                "pending": self._pending(),
                **self._history.snapshot(),
            }

    def wait_until_delivered(self, timeout: float) -> bool:
        """True once nothing is queued, held, waiting to be retried or in flight."""
        with self._wakeup:
            return self._wakeup.wait_for(lambda: self._pending() == 0, timeout=timeout)

    # --- the delivery thread ---------------------------------------------------------------

    def _run(self) -> None:
        while (post := self._next_post()) is not None:
            self._attempt(post)

    def _next_post(self) -> _Post | None:
        """Wait for the next POST to make: a retry that is due, or a batch of ready events
        once the batch is full or its window has passed. None once stopped."""
        with self._wakeup:
            while True:
                if self._stopped:
                    return None
                now = time.monotonic()
                self._release_held(now)
                wake_at = [due for due, _, _ in self._held[:1] + self._retries[:1]]
                if self._retries and self._retries[0][0] <= now:
                    _, _, post = heapq.heappop(self._retries)
                    self._in_flight += 1
                    return post
                if self._ready:
                    batch_due = self._ready[0][0] + self._delivery.batch_window
                    if len(self._ready) >= self._delivery.max_batch or batch_due <= now:
                        self._in_flight += 1
                        return self._new_post()
                    wake_at.append(batch_due)
                self._wakeup.wait(max(0.0, min(wake_at) - now) if wake_at else None)

    def _new_post(self) -> _Post:
        count = min(len(self._ready), self._delivery.max_batch)
        events = [self._ready.popleft()[1] for _ in range(count)]
        body = json.dumps({"hook": {"uuid": self.hook_uuid}, "events": events}).encode()
        return _Post(id=next(self._post_ids), events=events, body=body)

    def _attempt(self, post: _Post) -> None:
        with self._wakeup:
            url, secret, delivery = self._url, self._secret, self._delivery
        post.attempts += 1
        status, error = None, None
        if url is None or secret is None:
            error = "webhooks turned off"
        else:
            status, error = self._post(url, secret, post.body, delivery.timeout)
        delivered = status is not None and 200 <= status < 300
        with self._wakeup:
            self._in_flight -= 1
            self._history.attempts.append(
                {
                    "post": post.id,
                    "attempt": post.attempts,
                    "at": time.time(),
                    "events": [_event_summary(e) for e in post.events],
                    "status": status,
                    "error": error,
                }
            )
            if delivered:
                pass
            elif post.attempts < delivery.max_attempts and self._url is not None:
                due = time.monotonic() + delivery.retry_wait(post.attempts)
                heapq.heappush(self._retries, (due, next(self._order), post))
            else:
                self._history.abandon(post, error or f"HTTP {status}")
            self._wakeup.notify_all()

    def _post(
        self, url: str, secret: str, body: bytes, timeout: float
    ) -> tuple[int | None, str | None]:
        target, host_header = route_localhost_names(url)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: signature(body, secret),
            **host_header,
        }
        try:
            response = self._http.request(
                "POST",
                target,
                body=body,
                headers=headers,
                redirect=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError) as failure:
            logger.info("webhook POST to %s failed: %s", url, failure)
            return None, f"{type(failure).__name__}: {failure}"
        logger.info("webhook POST -> %s", response.status)
        return response.status, None

    # --- internals (lock held) -------------------------------------------------------------

    def _hold(self, event: dict[str, Any], due: float) -> None:
        heapq.heappush(self._held, (due, next(self._order), event))

    def _release_held(self, now: float) -> None:
        while self._held and self._held[0][0] <= now:
            _, _, event = heapq.heappop(self._held)
            self._ready.append((now, event))

    def _pending(self) -> int:
        return len(self._ready) + len(self._held) + len(self._retries) + self._in_flight

    def _abandon_queued(self, reason: str) -> None:
        events = [e for _, e in self._ready] + [e for _, _, e in self._held]
        if events:
            self._history.abandon(_Post(id=0, events=events, body=b""), reason)
        for _, _, post in self._retries:
            self._history.abandon(post, reason)
        self._ready.clear()
        self._held.clear()
        self._retries.clear()


class _History:
    """What the sender did, for tests (its lock guards it)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.dropped: list[dict[str, Any]] = []
        self.abandoned: list[dict[str, Any]] = []
        self.duplicated: list[str] = []
        self.reordered: list[str] = []

    def abandon(self, post: _Post, reason: str) -> None:
        self.abandoned.append(
            {
                "post": post.id,
                "attempts": post.attempts,
                "reason": reason,
                "events": [_event_summary(e) for e in post.events],
            }
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "events": [json.loads(json.dumps(e)) for e in self.events],
            "attempts": [dict(a) for a in self.attempts],
            "dropped": [dict(d) for d in self.dropped],
            "abandoned": [dict(a) for a in self.abandoned],
            "duplicated": list(self.duplicated),
            "reordered": list(self.reordered),
        }
