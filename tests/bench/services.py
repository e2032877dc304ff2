"""moto's server and the Wistia emulator, each in its own process on loopback."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from types import TracebackType

from bench.environment import CORE_DIR, DROPPED_VARIABLES, FUNCTION_DIR, LOCAL_SOURCES, TESTS_DIR

TOKEN = "bench-token"
READY = re.compile(r"listening on (http://\S+)")


class ServerProcess:
    """A child process that prints `listening on <url>` when ready; stopped with SIGTERM."""

    def __init__(self, name: str, arguments: list[str]) -> None:
        self.name = name
        self._arguments = arguments
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(FUNCTION_DIR), str(CORE_DIR), str(TESTS_DIR), str(LOCAL_SOURCES)]
        )
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, *self._arguments],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self._process.returncode}")
            ready, _, _ = select.select([self._process.stdout], [], [], 0.2)
            if ready:
                match = READY.search(self._process.stdout.readline())
                if match:
                    self.url = match.group(1)
                    return self
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def moto() -> ServerProcess:
    return ServerProcess("moto", ["-m", "bench.moto_process", "--port", "0"])


def emulator() -> ServerProcess:
    """The emulator without a rate limit, and slow to fetch: imports it accepts are fetched
    an hour later, so its fetches from moto do not load the machine while we measure. The
    bench fetches a few presigned URLs itself to check them."""
    return ServerProcess(
        "Wistia emulator",
        [
            "-m",
            "wistia_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--quiet",
            "--rate-limit",
            "1000000000",
            "--processing-delay",
            "3600",
        ],
    )
