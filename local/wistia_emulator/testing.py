"""Helpers for tests that use the emulator: a loopback file server for imports to fetch,
and one-line calls to the Upload API.

    with SourceServer() as source:
        source.add("/clip.mp4", b"...")
        answer = import_url(emu.url, source.url("/clip.mp4"))
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3

DEFAULT_TOKEN = "test-token"
# No retries: a test must see exactly what the emulator did to each request.
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))


def bearer(token: str = DEFAULT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def import_url(
    base_url: str,
    source_url: str,
    token: str | None = DEFAULT_TOKEN,
    **params: str,
) -> urllib3.BaseHTTPResponse:
    """POST an import (form-urlencoded `url`), with Bearer auth unless token is None."""
    return HTTP.request(
        "POST",
        base_url,
        body=urlencode({"url": source_url, **params}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **(bearer(token) if token else {}),
        },
    )


def upload_bytes(
    base_url: str,
    filename: str,
    data: bytes,
    token: str | None = DEFAULT_TOKEN,
    content_type: str = "application/octet-stream",
    **params: str,
) -> urllib3.BaseHTTPResponse:
    """POST a multipart upload of `data` as the `file` part, with Bearer auth."""
    fields: dict[str, Any] = {**params, "file": (filename, data, content_type)}
    return HTTP.request("POST", base_url, fields=fields, headers=bearer(token) if token else None)


@dataclass
class SourceFile:
    body: bytes
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)


class SourceServer:
    """A loopback HTTP server answering GETs from a table of paths (raw, as requested).

    `hold()` makes every GET wait until `release()`, to observe a media while it fetches;
    `max_concurrent` tells how many GETs were ever in flight at once."""

    def __init__(self) -> None:
        self.files: dict[str, SourceFile] = {}
        self.hits: list[str] = []
        self.max_concurrent = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def add(
        self,
        path: str,
        body: bytes,
        status: int = 200,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve `body` at `path` (raw, percent-encoded as clients send it); its URL."""
        self.files[path] = SourceFile(body, status, content_type, headers or {})
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.add(path, b"", status, "text/plain", {"Location": location})

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def hold(self) -> None:
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def start(self) -> SourceServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SourceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.hits.append(handler.path)
            self._in_flight += 1
            self.max_concurrent = max(self.max_concurrent, self._in_flight)
        try:
            self._gate.wait(timeout=30)
            path = handler.path.split("?", 1)[0]
            found = self.files.get(path, SourceFile(b"Not Found", 404, "text/plain"))
            handler.send_response(found.status)
            handler.send_header("Content-Type", found.content_type)
            handler.send_header("Content-Length", str(len(found.body)))
            for name, value in found.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(found.body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                source._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def json_of(response: urllib3.BaseHTTPResponse) -> Any:
    """The JSON body, after checking the answer says it is JSON."""
    content_type = response.headers.get("Content-Type", "")
    assert content_type.startswith("application/json"), content_type
    return response.json()


def cli_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "wistia_emulator", *arguments]


def cli_environment() -> dict[str, str]:
    """The environment with this package importable (it lives in local/; the .venv has it
    installed)."""
    package_parent = str(Path(__file__).resolve().parents[1])
    inherited = os.environ.get("PYTHONPATH")
    path = package_parent if not inherited else os.pathsep.join([package_parent, inherited])
    return {**os.environ, "PYTHONPATH": path}


class EmulatorProcess:
    """`python -m wistia_emulator` in a subprocess (a client in another process, the CLI).

    with EmulatorProcess("--port", "0", "--token", "t") as emulator:
        EmulatorControl(emulator.url).medias()
    """

    def __init__(self, *arguments: str) -> None:
        self.arguments = arguments
        self.url = ""
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - read back in stderr_text()
        self._process: subprocess.Popen[str] | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        if self._process is None:
            raise RuntimeError("start the emulator process first")
        return self._process

    def start(self, timeout: float = 10.0) -> EmulatorProcess:
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cli_command(*self.arguments),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=cli_environment(),
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline() if ready else ""
        prefix = "Wistia emulator listening on "
        if not line.startswith(prefix):
            self.stop(timeout=2)
            raise RuntimeError(f"the emulator did not start: {line!r} {self.stderr_text()}")
        self.url = line[len(prefix) :].strip()
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send `sig` and wait; the exit code (the process is killed if it hangs)."""
        process = self.process
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._stderr.close()
