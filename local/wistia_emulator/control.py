"""EmulatorControl: drive an emulator running in another process through `/_emulator/`."""

from __future__ import annotations

import json
from typing import Any

import urllib3

from wistia_emulator.faults import Fault


class EmulatorControlError(Exception):
    """The control plane refused a call."""


class EmulatorControl:
    """The WistiaEmulator's test-facing methods, over HTTP: `EmulatorControl(emu_url)`."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/") + "/_emulator/"
        self._timeout = timeout
        self._http = urllib3.PoolManager(retries=False)

    def medias(self) -> list[dict[str, Any]]:
        return self._call("GET", "medias")

    def projects(self) -> list[dict[str, Any]]:
        return self._call("GET", "projects")

    def create_project(self, name: str) -> dict[str, Any]:
        return self._call("POST", "projects", {"name": name})

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "requests")

    def set_tokens(self, *tokens: str) -> None:
        self._call("POST", "config", {"tokens": list(tokens)})

    def set_video_limit(self, limit: int | None) -> None:
        self._call("POST", "config", {"video_limit": limit})

    def set_rate_limit(self, limit: int | None, window_seconds: float) -> None:
        self._call("POST", "config", {"rate_limit": limit, "rate_window": window_seconds})

    def add_fault(self, fault: Fault) -> None:
        self._call("POST", "faults", fault.to_dict())

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def reset(self) -> None:
        self._call("POST", "reset")

    def wait_until_settled(self, timeout: float = 10.0) -> bool:
        answer = self._call("GET", f"settled?timeout={timeout}", read_timeout=timeout + 5)
        return bool(answer["settled"])

    def _call(
        self,
        method: str,
        endpoint: str,
        payload: dict[str, Any] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        response = self._http.request(
            method,
            self._base + endpoint,
            body=None if payload is None else json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            timeout=urllib3.Timeout(connect=self._timeout, read=read_timeout or self._timeout),
        )
        if response.status != 200:
            raise EmulatorControlError(
                f"{method} {endpoint} answered {response.status}: {response.data[:500]!r}"
            )
        return json.loads(response.data)
