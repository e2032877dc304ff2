"""The emulator's HTTP server: the Upload API, the Data API subset and the control plane,
on one loopback port.

    with WistiaEmulator(tokens=("test-token",)) as emu:
        urllib3.request(
            "POST", emu.url, body="url=http%3A%2F%2F127.0.0.1%3A8000%2Fclip.mp4",
            headers={"Authorization": "Bearer test-token",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )
        emu.wait_until_settled()
        emu.medias()  # [{"name": "clip.mp4", "status": "ready", ...}]

With `webhook_url` and `webhook_secret` it POSTs signed webhooks about every media's
changes to that (loopback) URL; `wait_until_webhooks_delivered()` waits for them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wistia_emulator.api import ERROR_STYLES, Request, Response, WistiaApi, parse_params
from wistia_emulator.faults import Fault
from wistia_emulator.multipart import BadRequestBody, BodyReader, ClientDisconnected
from wistia_emulator.processing import MediaProcessor, is_loopback_host
from wistia_emulator.state import Account, token_rights
from wistia_emulator.webhooks import WebhookDelivery, WebhookSender

logger = logging.getLogger("wistia_emulator")

CONTROL_PREFIX = "/_emulator/"
MAX_CONTROL_BODY = 1024 * 1024
MAX_SETTLE_WAIT = 300.0
CONFIG_KEYS = frozenset(
    {
        *("tokens", "video_limit", "rate_limit", "rate_window", "sniff_media"),
        *("webhook_url", "webhook_secret", "webhook_delivery"),
    }
)
IDLE_CONNECTION_TIMEOUT = 30.0
# How often the accept loop checks for stop(): a test suite starts one emulator per test.
SHUTDOWN_POLL_SECONDS = 0.01


class WistiaEmulator:
    """A local Wistia: Upload API on `POST /`, Data API under `/v1/`, control under
    `/_emulator/`. Serves from daemon threads once started; a context manager too."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Iterable[str] | Mapping[str, str] = ("test-token",),
        video_limit: int | None = None,
        rate_limit: int | None = 600,
        rate_window: float = 60.0,
        processing_delay: float = 0.05,
        data_dir: str | None = None,
        error_style: str = "legacy",
        import_workers: int = 4,
        sniff_media: bool = True,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_delivery: WebhookDelivery | None = None,
    ) -> None:
        """`tokens`: plain strings are full-rights tokens; a mapping gives each token its
        rights, "upload", "read" or "full". `sniff_media`: fail files that are not audio or
        video (on, as Wistia). `webhook_url`/`webhook_secret`: where signed webhooks go
        (loopback only) and their key; `webhook_delivery`: batching, retries, chaos."""
        if not is_loopback_host(host):
            raise ValueError(f"the emulator binds to loopback only, not {host!r}")
        if processing_delay < 0:
            raise ValueError("processing_delay cannot be negative")
        if error_style not in ERROR_STYLES:
            raise ValueError(f"error_style must be one of {ERROR_STYLES}, not {error_style!r}")
        self._host = host
        self._port = port
        self._processing_delay = processing_delay
        self._parent_data_dir = data_dir
        self._error_style = error_style
        self._import_workers = import_workers
        self._account = Account(
            tokens, video_limit, rate_limit, rate_window, sniff_media=sniff_media
        )
        self._webhooks = WebhookSender(webhook_url, webhook_secret, webhook_delivery)
        self._account.set_event_sink(self._webhooks.enqueue)
        self._server: _EmulatorHTTPServer | None = None
        self._processor: MediaProcessor | None = None
        self._data_dir: str | None = None
        self._serve_thread: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> WistiaEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already started")
        # Our own directory, even inside a given data_dir, so stop() can remove it whole.
        self._data_dir = tempfile.mkdtemp(prefix="wistia-emulator-", dir=self._parent_data_dir)
        self._processor = MediaProcessor(
            self._account, self._data_dir, self._processing_delay, self._import_workers
        )
        api = WistiaApi(self._account, self._processor, self._data_dir, self._error_style)
        server_class = _EmulatorHTTPServer6 if ":" in self._host else _EmulatorHTTPServer
        try:
            self._server = server_class(
                (self._host, self._port), api, _ControlPlane(self, self._account)
            )
        except BaseException:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            raise
        self._account.thumbnail_base = self.url
        self._processor.start()
        self._webhooks.start()
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="wistia-emulator",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Close the socket and open connections, stop the import workers, remove temp files."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
        if self._processor is not None:
            self._processor.stop()
        self._webhooks.stop()
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def __enter__(self) -> WistiaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL: `POST` uploads here, Data API calls go to `<url>v1/...`."""
        if self._server is None:
            raise RuntimeError("start the emulator first")
        port = self._server.server_address[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{port}/"

    # --- what tests look at ----------------------------------------------------------------

    @property
    def error_style(self) -> str:
        """The shape of 400 bodies: legacy (seed) or current (code + detail)."""
        return self._error_style

    def medias(self) -> list[dict[str, Any]]:
        return self._account.medias()

    def projects(self) -> list[dict[str, Any]]:
        return self._account.projects()

    def requests(self) -> list[dict[str, Any]]:
        return self._account.requests()

    @property
    def account_id(self) -> str:
        """The account's id, as webhook events carry it in metadata.account_id."""
        return self._account.account_id

    def jobs(self) -> list[dict[str, Any]]:
        """Every background job (swap, archive): status, media ids, result or error."""
        return self._account.jobs()

    def swaps(self) -> list[dict[str, Any]]:
        """Every finished swap: which hashed id took which replacement's file (sha256)."""
        return self._account.swaps()

    def webhooks(self) -> dict[str, Any]:
        """Webhook events and their deliveries: url, hook_uuid, delivery settings, pending,
        events, attempts, dropped, abandoned, duplicated, reordered."""
        return self._webhooks.report()

    def wait_until_settled(self, timeout: float = 10.0) -> bool:
        """True once no media is queued or processing and no background job is pending."""
        return self._account.wait_until_settled(timeout)

    def wait_until_webhooks_delivered(self, timeout: float = 10.0) -> bool:
        """True once no webhook is queued, held back, waiting for a retry or in flight."""
        return self._webhooks.wait_until_delivered(timeout)

    # --- what tests change -----------------------------------------------------------------

    def set_tokens(self, *tokens: str, rights: Mapping[str, str] | None = None) -> None:
        """Replace the accepted tokens: `tokens` get full rights, `rights` maps more tokens
        to "upload", "read" or "full"."""
        self._account.set_tokens({**token_rights(tokens), **token_rights(rights or {})})

    def set_sniff_media(self, enabled: bool) -> None:
        """Fail files whose bytes are not audio or video (True, the default) or accept any."""
        self._account.set_sniff_media(enabled)

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Send webhooks to `url` (loopback), signed with `secret` (None: keep the current
        secret, to move the URL only); url None turns webhooks off."""
        self._webhooks.configure(url, secret)

    def set_webhook_delivery(self, delivery: WebhookDelivery) -> None:
        self._webhooks.set_delivery(delivery)

    def set_video_limit(self, limit: int | None) -> None:
        self._account.set_video_limit(limit)

    def set_rate_limit(self, limit: int | None, window_seconds: float) -> None:
        self._account.set_rate_limit(limit, window_seconds)

    def add_fault(self, fault: Fault) -> None:
        self._account.add_fault(fault)

    def clear_faults(self) -> None:
        self._account.clear_faults()

    def create_project(self, name: str) -> dict[str, Any]:
        """A project to upload into with an explicit project_id."""
        return self._account.create_project(name)

    def reset(self) -> None:
        """Forget medias, projects, jobs, requests, webhooks sent, faults and rate-limit
        history; keep config."""
        self._account.reset()
        self._webhooks.reset()


class _ControlPlane:
    """`/_emulator/...`: JSON, no auth, never rate-limited, faulted or recorded."""

    def __init__(self, emulator: WistiaEmulator, account: Account) -> None:
        self._emulator = emulator
        self._account = account

    def handle(self, request: Request) -> Response:
        try:
            return self._route(request)
        except (ValueError, TypeError, KeyError) as error:
            return Response.json(400, {"error": str(error)})

    def _route(self, request: Request) -> Response:
        emulator = self._emulator
        route = (request.method, request.path[len(CONTROL_PREFIX) :].strip("/"))
        if route == ("GET", "medias"):
            return Response.json(200, emulator.medias())
        if route == ("GET", "projects"):
            return Response.json(200, emulator.projects())
        if route == ("POST", "projects"):
            return Response.json(200, emulator.create_project(str(_json_body(request)["name"])))
        if route == ("GET", "requests"):
            return Response.json(200, emulator.requests())
        if route == ("POST", "faults"):
            emulator.add_fault(Fault.from_dict(_json_body(request)))
            return Response.json(200, {"ok": True})
        if route == ("DELETE", "faults"):
            emulator.clear_faults()
            return Response.json(200, {"ok": True})
        if route == ("POST", "config"):
            self._configure(_json_body(request))
            return Response.json(200, {"ok": True})
        if route == ("POST", "reset"):
            emulator.reset()
            return Response.json(200, {"ok": True})
        if route == ("GET", "settled"):
            return Response.json(200, {"settled": emulator.wait_until_settled(_timeout(request))})
        if route == ("GET", "jobs"):
            return Response.json(200, emulator.jobs())
        if route == ("GET", "swaps"):
            return Response.json(200, emulator.swaps())
        if route == ("GET", "webhooks"):
            return Response.json(200, emulator.webhooks())
        if route == ("GET", "webhooks/delivered"):
            delivered = emulator.wait_until_webhooks_delivered(_timeout(request))
            return Response.json(200, {"delivered": delivered})
        return Response.json(404, {"error": f"no control endpoint {route[0]} {request.path}"})

    def _configure(self, config: dict[str, Any]) -> None:
        unknown = set(config) - CONFIG_KEYS
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        emulator = self._emulator
        if "tokens" in config:
            emulator.set_tokens(rights=_token_table(config["tokens"]))
        if "sniff_media" in config:
            if not isinstance(config["sniff_media"], bool):
                raise ValueError("sniff_media must be true or false")
            emulator.set_sniff_media(config["sniff_media"])
        if "webhook_url" in config or "webhook_secret" in config:
            url = config.get("webhook_url", self._emulator.webhooks()["url"])
            secret = config.get("webhook_secret")
            if not all(v is None or isinstance(v, str) for v in (url, secret)):
                raise ValueError("webhook_url and webhook_secret must be strings or null")
            emulator.set_webhook(url, secret)
        if "webhook_delivery" in config:
            delivery = config["webhook_delivery"]
            if not isinstance(delivery, dict):
                raise ValueError("webhook_delivery must be an object")
            emulator.set_webhook_delivery(WebhookDelivery.from_dict(delivery))
        if "video_limit" in config:
            emulator.set_video_limit(_optional_int(config["video_limit"], "video_limit"))
        if "rate_limit" in config or "rate_window" in config:
            limit, window = self._account.rate_limit_config()
            if "rate_limit" in config:
                limit = _optional_int(config["rate_limit"], "rate_limit")
            emulator.set_rate_limit(limit, float(config.get("rate_window", window)))


def _token_table(tokens: Any) -> dict[str, str]:
    """`tokens` in a config call: a list of tokens (full rights) or {token: rights}."""
    if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
        return token_rights(tokens)
    if isinstance(tokens, dict) and all(isinstance(r, str) for r in tokens.values()):
        return token_rights(tokens)
    raise ValueError('tokens must be a list of strings or an object {"token": "rights"}')


def _timeout(request: Request) -> float:
    return min(float(request.query.get("timeout", "10")), MAX_SETTLE_WAIT)


def _optional_int(value: Any, name: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{name} must be an integer or null")
    return value


def _json_body(request: Request) -> dict[str, Any]:
    data = json.loads(request.body.read_all(MAX_CONTROL_BODY) or b"{}")
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


class _RequestHandler(BaseHTTPRequestHandler):
    """Turns one HTTP exchange into a Request and writes back the Response (or drops it)."""

    server: _EmulatorHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, like Wistia's front end
    server_version = "WistiaEmulator/1.0"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and
        # the client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._exchange()

    do_POST = do_GET
    do_PUT = do_GET
    do_PATCH = do_GET
    do_DELETE = do_GET

    def _exchange(self) -> None:
        target = urlsplit(self.path)
        try:
            body = BodyReader.from_headers(self.rfile, self.headers)
        except BadRequestBody as error:
            self.close_connection = True
            self._send(Response.text(400, str(error)))
            return
        request = Request(
            method=self.command,
            path=target.path,
            query=parse_params(target.query),
            headers=self.headers,
            body=body,
            query_pairs=parse_qsl(target.query, keep_blank_values=True),
        )
        try:
            if target.path.startswith(CONTROL_PREFIX):
                response = self.server.control.handle(request)
            else:
                response = self.server.api.handle(request)
            body.drain()  # so the connection is ready for the next request
        except BadRequestBody as error:  # a client gone or a broken framing: stop here
            logger.info("%s %s: %s", self.command, target.path, error)
            self.close_connection = True
            if not isinstance(error, ClientDisconnected):
                self._send(Response.text(400, str(error)))
            return
        except Exception:
            # An emulator bug: say so loudly rather than look like a network failure.
            logger.exception("the emulator failed on %s %s", self.command, target.path)
            self.close_connection = True
            self._send(Response.json(500, {"error": "emulator bug, see its log"}))
            return
        if response.dropped:
            logger.info("%s %s -> connection dropped", self.command, target.path)
            self.close_connection = True
            return
        if not target.path.startswith(CONTROL_PREFIX):
            logger.info("%s %s -> %s", self.command, target.path, response.status)
        self._send(response)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            if response.trickle_seconds and response.trickle_headers:
                # What end_headers() would send at once: the status line and the headers.
                buffered: list[bytes] = getattr(self, "_headers_buffer", [])
                head = b"".join(buffered) + b"\r\n"
                buffered.clear()
                self._trickle(head, response.trickle_seconds)
            else:
                self.end_headers()
            if response.trickle_seconds:
                self._trickle(response.body, response.trickle_seconds)
            else:
                self.wfile.write(response.body)
        except OSError as error:  # the client left before reading its answer
            logger.info("could not answer %s %s: %s", self.command, self.path, error)
            self.close_connection = True

    def _trickle(self, data: bytes, seconds: float) -> None:
        """One byte at a time, `seconds` apart: an answer that never times out a read."""
        self.wfile.flush()
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            self.wfile.flush()
            time.sleep(seconds)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class _EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: WistiaApi, control: _ControlPlane) -> None:
        self.api = api
        self.control = control
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        # Track live connections: stop() must cut keep-alive ones, or a client's pooled
        # connection would keep talking to a "stopped" emulator.
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def close_open_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _EmulatorHTTPServer6(_EmulatorHTTPServer):
    address_family = socket.AF_INET6
