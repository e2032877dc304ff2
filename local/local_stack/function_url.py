"""A Lambda Function URL on loopback: each HTTP request becomes a payload-2.0 event for a
handler, and the handler's result becomes the HTTP answer, as Lambda does it
(docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html).

    with FunctionUrl(load_handler("WebhookFunction")) as url:
        url.url  # http://127.0.0.1:<port>/

What Lambda does and this does too: header names in lower case (repeated headers joined
with commas); a text body (text/*, JSON, XML, form) passed as text, any other body base64
with `isBase64Encoded`; a request over 6 MB refused with 413 before the function runs; a
result with `statusCode` answered as it says (its body base64-decoded when it says so), any
other result answered 200 as JSON; a function error answered 502. One execution
environment: invocations run one at a time, as they would in one Lambda instance.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local_stack.harness import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
# Lambda's limit for a synchronous invocation's request payload.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)
READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class Invocation:
    """One request the URL answered."""

    method: str
    path: str
    status: int
    seconds: float  # the handler's own time (0 when it was not invoked)
    invoked: bool


class FunctionUrl:
    def __init__(
        self,
        handler: Handler,
        timeout_seconds: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
        always_base64: bool = False,
    ) -> None:
        self._handler = handler
        self._timeout_seconds = timeout_seconds
        self._always_base64 = always_base64
        self._environment = threading.Lock()  # one invocation at a time
        self._log_lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.url_id = uuid.uuid4().hex[:32]
        self._server = _Server((host, port), self._request_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> FunctionUrl:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FunctionUrl:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one request -----------------------------------------------------------------------

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        """Run the handler on `event`; the HTTP answer Lambda would give, and its time."""
        context = LambdaContext(timeout_seconds=self._timeout_seconds)
        with self._environment:
            started = time.perf_counter()
            try:
                result = self._handler(event, context)
            except Exception:
                seconds = time.perf_counter() - started
                body = json.dumps({"Message": "Internal Server Error"}).encode()
                return 502, {"content-type": "application/json"}, body, seconds
            seconds = time.perf_counter() - started
        return (*http_answer(result), seconds)

    def event_for(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source: str
    ) -> dict[str, Any]:
        """The payload-2.0 event Lambda builds for this request."""
        parts = urlsplit(target)
        joined: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        content_type = joined.get("content-type", "").lower()
        text = not self._always_base64 and content_type.startswith(TEXT_TYPES)
        try:
            body_text = body.decode("utf-8") if text else None
        except UnicodeDecodeError:
            body_text = None
        now = time.time()
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": parts.path or "/",
            "rawQueryString": parts.query,
            "headers": joined,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": self.url_id,
                "domainName": f"{self.url_id}.lambda-url.us-east-1.on.aws",
                "domainPrefix": self.url_id,
                "http": {
                    "method": method,
                    "path": parts.path or "/",
                    "protocol": "HTTP/1.1",
                    "sourceIp": source,
                    "userAgent": joined.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": "$default",
                "stage": "$default",
                "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": body_text is None and bool(body),
        }
        if parts.query:
            event["queryStringParameters"] = dict(parse_qsl(parts.query, keep_blank_values=True))
        if body:
            event["body"] = body_text if body_text is not None else base64.b64encode(body).decode()
        return event

    def _record(self, invocation: Invocation) -> None:
        with self._log_lock:
            self.invocations.append(invocation)

    def _request_class(self) -> type[BaseHTTPRequestHandler]:
        url = self

        class Request(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the caller reports what it needs

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    _discard(self, length)
                    message = (
                        f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the "
                        "InvokeFunction operation"
                    )
                    self._answer(
                        413,
                        {"content-type": "application/json"},
                        json.dumps({"Message": message}).encode(),
                    )
                    url._record(Invocation(self.command, self.path, 413, 0.0, False))
                    return
                body = self.rfile.read(length) if length else b""
                event = url.event_for(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                status, headers, answer, seconds = url.invoke(event)
                self._answer(status, headers, answer)
                url._record(Invocation(self.command, self.path, status, seconds, True))

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the caller gave up waiting: nobody to tell

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        return Request


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A caller that closed its keep-alive connection (or gave up waiting) is no error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def http_answer(result: Any) -> tuple[int, dict[str, str], bytes]:
    """A function's result as Lambda's Function URL answers it."""
    if isinstance(result, dict) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        if isinstance(body, str):
            data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        else:
            data = json.dumps(body).encode()
        return int(result["statusCode"]), headers, data
    return 200, {"content-type": "application/json"}, json.dumps(result).encode()


def _discard(request: BaseHTTPRequestHandler, length: int) -> None:
    """Read a body the function will not see, so the client gets its answer."""
    left = length
    while left > 0:
        chunk = request.rfile.read(min(READ_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
