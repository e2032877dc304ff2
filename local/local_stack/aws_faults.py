"""Injected AWS failures for the local stack: what a bad day at DynamoDB, SQS, Secrets Manager
or S3 looks like to a client.

LocalAws checks its `faults` attribute on every request; None (the default) lets every
request through untouched. Armed, each AwsFault answers a share (or a count) of the
matching requests with the error AWS would send, before moto sees them:

    aws.faults = AwsFaults([AwsFault("dynamodb", probability=0.3, seed=7)])
    ...
    aws.faults.injected()  # Counter({"dynamodb.UpdateItem 500 InternalServerError": 41, ...})
    aws.faults = None

A request is matched by the service in its SigV4 credential scope, its operation
(`X-Amz-Target` for the JSON protocols, `Action` for the query protocol, the HTTP method for
S3) and, optionally, a substring of its body (a queue URL, a status value).
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[..., Iterable[bytes]]
_SCOPE = re.compile(r"Credential=[^/,&\s]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
_SCOPE_QUERY = re.compile(
    r"X-Amz-Credential=[^&]*?(?:%2F|/)\d{8}(?:%2F|/)[^&%/]+(?:%2F|/)([a-z0-9-]+)"
)
# How each JSON-protocol service names its errors' types.
_JSON_TYPE_PREFIX = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810#",
    "sqs": "com.amazonaws.sqs#",
    "secretsmanager": "",
}
_JSON_CONTENT_TYPE = {"secretsmanager": "application/x-amz-json-1.1"}
MAX_MATCHED_BODY = 2 * 1024 * 1024


@dataclass(frozen=True)
class AwsFault:
    """One kind of failure: which requests it hits, how often, and what AWS answers.

    `probability` hits each matching request with that chance (reproducible with `seed`);
    `count` hits the next `count` matching requests; neither hits every matching request.
    """

    service: str  # "dynamodb", "sqs", "secretsmanager", "s3"
    operation: str = "*"  # "UpdateItem", "SendMessage", "HEAD", ... or "*"
    probability: float | None = None
    count: int | None = None
    seed: int | None = None
    status: int = 500
    code: str = "InternalServerError"
    message: str = "We encountered an internal error. Please try again."
    # Only requests whose body holds this text (a queue URL, a status value such as SUBMITTED).
    body_contains: str | None = None
    # Let AWS carry the request out, then answer the error anyway: the client cannot tell
    # whether its write happened (as when DynamoDB times out after committing).
    after_applying: bool = False

    def __post_init__(self) -> None:
        if self.count is not None and self.probability is not None:
            raise ValueError("give an AwsFault a count or a probability, not both")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("an AwsFault's probability must be between 0 and 1")
        if self.count is not None and self.count < 1:
            raise ValueError("an AwsFault's count must be at least 1")
        if not 400 <= self.status <= 599:
            raise ValueError("an AwsFault answers with a 4xx or 5xx status")

    @classmethod
    def throttling(cls, service: str, **options: Any) -> AwsFault:
        """The throttling error each service sends (a 400 that SDKs retry)."""
        code = {
            "dynamodb": "ThrottlingException",
            "sqs": "ThrottlingException",
            "secretsmanager": "ThrottlingException",
            "s3": "SlowDown",
        }[service]
        status = 503 if service == "s3" else 400
        return cls(service, status=status, code=code, message="Rate exceeded", **options)

    @classmethod
    def unavailable(cls, service: str, **options: Any) -> AwsFault:
        """A 503: the service (or the resource's partition) cannot be reached right now."""
        return cls(
            service,
            status=503,
            code="ServiceUnavailable",
            message="The service is unavailable. Please try again later.",
            **options,
        )


@dataclass
class _Armed:
    fault: AwsFault
    remaining: int | None
    rng: random.Random = field(repr=False)

    def fires(self) -> bool:
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            return True
        if self.fault.probability is not None:
            return self.rng.random() < self.fault.probability
        return True


@dataclass(frozen=True)
class _Call:
    service: str
    operation: str
    body: bytes | None


class AwsFaults:
    """A set of armed AwsFaults, safe to use from moto's request threads."""

    def __init__(self, faults: Sequence[AwsFault] = ()) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._injected: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        for fault in faults:
            self.add(fault)

    def add(self, fault: AwsFault) -> None:
        rng = random.Random(fault.seed)  # noqa: S311 - fault injection, not crypto
        with self._lock:
            self._armed.append(_Armed(fault, fault.count, rng))

    def remove(self, fault: AwsFault) -> None:
        """Disarm a fault added earlier (the first one equal to it)."""
        with self._lock:
            for armed in self._armed:
                if armed.fault == fault:
                    self._armed.remove(armed)
                    return

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def injected(self) -> Counter[str]:
        """Errors answered so far, by "service.operation status code"."""
        with self._lock:
            return Counter(self._injected)

    def seen(self) -> Counter[str]:
        """Requests a fault could have hit, by "service.operation", hit or not."""
        with self._lock:
            return Counter(self._seen)

    def interest(self, service: str, operation: str) -> tuple[bool, bool]:
        """Whether a fault may hit this kind of request, and whether it must see the body."""
        with self._lock:
            matching = [
                armed.fault
                for armed in self._armed
                if armed.fault.service == service and armed.fault.operation in ("*", operation)
            ]
        return bool(matching), any(fault.body_contains is not None for fault in matching)

    def choose(self, call: _Call) -> AwsFault | None:
        """The fault this request gets, if any (the first armed one that fires)."""
        text = call.body.decode("utf-8", "replace") if call.body is not None else ""
        with self._lock:
            self._seen[f"{call.service}.{call.operation}"] += 1
            for armed in self._armed:
                fault = armed.fault
                if fault.service != call.service or fault.operation not in ("*", call.operation):
                    continue
                if fault.body_contains is not None and fault.body_contains not in text:
                    continue
                if armed.fires():
                    applied = " (applied)" if fault.after_applying else ""
                    key = f"{call.service}.{call.operation} {fault.status} {fault.code}{applied}"
                    self._injected[key] += 1
                    return fault
        return None


class FaultInjection:
    """WSGI middleware: answers a request with an AWS error when the current AwsFaults say so.

    `faults` is read on every request, so faults can be armed and cleared while the server
    runs; when it returns None the request passes straight through."""

    def __init__(self, app: WsgiApp, faults: Callable[[], AwsFaults | None]) -> None:
        self._app = app
        self._faults = faults

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        faults = self._faults()
        if faults is None:
            return self._app(environ, start_response)
        service, operation = _service_and_operation(environ)
        wanted, needs_body = faults.interest(service, operation)
        if not wanted:
            return self._app(environ, start_response)
        body = _read_body(environ) if needs_body else None
        fault = faults.choose(_Call(service, operation, body))
        if fault is None:
            return self._app(environ, start_response)
        if fault.after_applying:
            answer = self._app(environ, _discard_response)
            try:
                for _ in answer:  # the write happens while the answer is produced
                    pass
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()
        return _error_response(fault, service, environ, start_response)


def _discard_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return lambda data: None


def _service_and_operation(environ: dict[str, Any]) -> tuple[str, str]:
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    match = _SCOPE.search(authorization) or _SCOPE_QUERY.search(environ.get("QUERY_STRING", ""))
    service = match.group(1) if match else ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if service == "s3":
        return service, str(environ.get("REQUEST_METHOD", "")).upper()
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    return service, action[0] if action else str(environ.get("REQUEST_METHOD", "")).upper()


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """The request body, put back so the application can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0 or length > MAX_MATCHED_BODY:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _error_response(
    fault: AwsFault, service: str, environ: dict[str, Any], start_response: Callable[..., Any]
) -> list[bytes]:
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}
    status_line = f"{fault.status} {reason.get(fault.status, 'Error')}"
    if service == "s3":
        body = b""
        if environ.get("REQUEST_METHOD", "").upper() != "HEAD":
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
            ).encode()
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        start_response(status_line, headers)
        return [body]
    payload = {
        "__type": _JSON_TYPE_PREFIX.get(service, "") + fault.code,
        "message": fault.message,
    }
    body = json.dumps(payload).encode()
    headers = [
        ("Content-Type", _JSON_CONTENT_TYPE.get(service, "application/x-amz-json-1.0")),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", "fault-injected"),
    ]
    if service == "sqs":
        # SQS's JSON protocol also names the query-protocol error code in this header.
        sender = "Sender" if fault.status < 500 else "Receiver"
        headers.append(("x-amzn-query-error", f"{fault.code};{sender}"))
    start_response(status_line, headers)
    return [body]
