"""The webhook receiver: a Lambda Function URL request (payload version 2.0) in, its answer
out. The signature is the authentication (the URL's auth type is NONE).

    401  X-Wistia-Signature missing or wrong: nothing changes
    400  a body over the size limit, or a signed body that is not a webhook body: nothing
         changes
    200  signed correctly: every event applied (or acknowledged and ignored)
    500  the secret or the records could not be read or written: Wistia delivers again,
         and applying twice changes nothing

No call to Wistia is made: events are applied inline, each with one index query and one
conditional write, so the answer comes in milliseconds.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from s3_to_wistia import config
from s3_to_wistia.errors import NotAWebhook, PermanentError, RetryableError
from s3_to_wistia.media_events import parse_webhook_body
from s3_to_wistia.media_status import StatusUpdater, Tally
from s3_to_wistia.ports import Log, MetricSink, SigningSecret
from s3_to_wistia.signatures import SIGNATURE_HEADER, signed_by

# After a signature that does not match, the secret is read again (it may have been
# rotated) at most this often: forged requests cannot make every request a Secrets
# Manager call.
SECRET_REFRESH_SECONDS = 30.0

# Wistia's webhook bodies are a few KiB (at most a few dozen events); a Function URL takes
# up to 6 MB. Anything over the limit is refused before it is read.
DEFAULT_WEBHOOK_MAX_BODY_BYTES = 256 * 1024
FUNCTION_URL_MAX_BODY_BYTES = 6 * 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook receiver's configuration (../shared/CONTRACT.md, "Processing status")."""

    webhook_secret_id: str
    imports_table_name: str
    dead_letter_queue_url: str
    # Powertools caches the secret this long: a rotated key works within it, without a
    # redeploy (sooner: a signature that does not match reads the secret again).
    secret_cache_seconds: int = 300
    max_body_bytes: int = DEFAULT_WEBHOOK_MAX_BODY_BYTES
    aws_region: str | None = None
    tracing: bool = False  # as Settings.tracing

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if env is None else env
        return cls(
            webhook_secret_id=config.required(env, "WISTIA_WEBHOOK_SECRET"),
            imports_table_name=config.required(env, "IMPORTS_TABLE_NAME"),
            dead_letter_queue_url=config.required(env, "DEAD_LETTER_QUEUE_URL"),
            secret_cache_seconds=config.integer(
                env, "WISTIA_WEBHOOK_SECRET_CACHE_SECONDS", cls.secret_cache_seconds, minimum=0
            ),
            max_body_bytes=config.integer(
                env,
                "WEBHOOK_MAX_BODY_BYTES",
                cls.max_body_bytes,
                minimum=1024,
                maximum=FUNCTION_URL_MAX_BODY_BYTES,
            ),
            aws_region=config.region(env),
            tracing=config.tracing(env),
        )


@dataclass(frozen=True)
class WebhookRequest:
    """What the receiver needs of a Function URL request."""

    signature: str | None
    body: bytes | None  # None when over the size limit or not decodable
    problem: str | None = None  # why `body` is None
    source_ip: str = ""


def read_request(event: Mapping[str, Any], max_body_bytes: int) -> WebhookRequest:
    """A payload-2.0 event as a WebhookRequest: headers are lower-case there; the body is
    text, base64 when `isBase64Encoded` (then it is decoded: the signature is over the raw
    bytes Wistia sent)."""
    signature = _header(event, SIGNATURE_HEADER)
    body, problem = _body(event, max_body_bytes)
    return WebhookRequest(signature, body, problem, _source_ip(event))


def _body(event: Mapping[str, Any], limit: int) -> tuple[bytes | None, str | None]:
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        return None, "the body is not text"
    encoded = bool(event.get("isBase64Encoded"))
    # Checked before decoding or hashing anything: a huge body costs nothing.
    if len(raw) > (math.ceil(limit / 3) * 4 + 4 if encoded else limit):
        return None, _too_large(limit)
    try:
        body = base64.b64decode(raw, validate=True) if encoded else raw.encode("utf-8")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None, "the body is not valid base64"
    if len(body) > limit:
        return None, _too_large(limit)
    return body, None


def _header(event: Mapping[str, Any], name: str) -> str | None:
    headers = event.get("headers")
    if not isinstance(headers, dict):
        return None
    found = {str(key).lower(): str(value) for key, value in headers.items()}
    return found.get(name) or None


def _source_ip(event: Mapping[str, Any]) -> str:
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    return str(http.get("sourceIp", "")) if isinstance(http, dict) else ""


def _too_large(limit: int) -> str:
    return f"the body is larger than {limit} bytes"


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    message: str
    tally: Tally | None = None

    def response(self) -> dict[str, Any]:
        """The Function URL's answer (payload 2.0)."""
        body: dict[str, Any] = {"message": self.message}
        if self.tally is not None:
            body.update(
                applied=self.tally.applied,
                unchanged=self.tally.stale,
                ignored=self.tally.unknown + self.tally.ignored,
            )
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(body),
        }


@dataclass
class WebhookReceiver:
    secret: SigningSecret
    updater: StatusUpdater
    metrics: MetricSink
    log: Log
    max_body_bytes: int
    clock: Callable[[], float] = time.monotonic
    _refreshed_at: float = field(default=-math.inf, init=False)

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return self.receive(event).response()

    def receive(self, event: Mapping[str, Any]) -> WebhookAnswer:
        request = read_request(event, self.max_body_bytes)
        if request.signature is None:
            return self._refused(request, "X-Wistia-Signature is missing")
        if request.body is None:
            return self._bad(request, str(request.problem))
        try:
            if not self._verified(request.body, request.signature):
                return self._refused(request, "X-Wistia-Signature is wrong")
            events = parse_webhook_body(request.body)
        except NotAWebhook as error:
            return self._bad(request, str(error))
        except PermanentError as error:
            self.log.error("cannot check webhook signatures", reason=error.reason)
            return WebhookAnswer(500, "the webhook receiver is not configured")
        try:
            tally = self.updater.apply_events(events)
        except RetryableError as error:
            # Wistia delivers the body again; what was applied already stays as it is.
            self.log.warning("webhook not applied; Wistia will deliver it again", reason=str(error))
            return WebhookAnswer(500, "try again later")
        self._count(tally, len(events))
        return WebhookAnswer(200, "ok", tally)

    def _verified(self, body: bytes, header: str) -> bool:
        secret = self.secret.get()
        if signed_by(body, header, secret):
            return True
        now = self.clock()
        if now - self._refreshed_at < SECRET_REFRESH_SECONDS:
            return False
        # The key may have been rotated since it was cached: read it once more.
        self._refreshed_at = now
        fresh = self.secret.get(refresh=True)
        return fresh != secret and signed_by(body, header, fresh)

    def _refused(self, request: WebhookRequest, why: str) -> WebhookAnswer:
        self.metrics.add_metric(name="WebhookRejected", unit="Count", value=1)
        self.log.warning("webhook refused", reason=why, source_ip=request.source_ip)
        return WebhookAnswer(401, why)

    def _bad(self, request: WebhookRequest, why: str) -> WebhookAnswer:
        self.metrics.add_metric(name="WebhookBadBody", unit="Count", value=1)
        self.log.warning("webhook body refused", reason=why, source_ip=request.source_ip)
        return WebhookAnswer(400, why)

    def _count(self, tally: Tally, received: int) -> None:
        self.metrics.add_metric(name="WebhookEvents", unit="Count", value=received)
        self.metrics.add_metric(name="WebhookEventsApplied", unit="Count", value=tally.applied)
        self.log.info(
            "webhook applied",
            events=received,
            applied=tally.applied,
            unchanged=tally.stale,
            unknown_media=tally.unknown,
            ignored=tally.ignored,
        )
