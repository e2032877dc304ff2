"""EmulatorControl: drive an emulator running in another process through `/_emulator/`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import urllib3

from wistia_emulator.faults import Fault
from wistia_emulator.webhooks import WebhookDelivery


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

    def jobs(self) -> list[dict[str, Any]]:
        return self._call("GET", "jobs")

    def swaps(self) -> list[dict[str, Any]]:
        return self._call("GET", "swaps")

    def webhooks(self) -> dict[str, Any]:
        return self._call("GET", "webhooks")

    def set_tokens(self, *tokens: str, rights: Mapping[str, str] | None = None) -> None:
        """Replace the accepted tokens: `tokens` get full rights, `rights` maps more tokens
        to "upload", "read" or "full"."""
        table = {**dict.fromkeys(tokens, "full"), **(rights or {})}
        self._call("POST", "config", {"tokens": table})

    def set_sniff_media(self, enabled: bool) -> None:
        self._call("POST", "config", {"sniff_media": enabled})

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Webhooks to `url`, signed with `secret` (None: keep the current one); url None
        turns them off."""
        config: dict[str, Any] = {"webhook_url": url}
        if secret is not None:
            config["webhook_secret"] = secret
        self._call("POST", "config", config)

    def set_webhook_delivery(self, delivery: WebhookDelivery) -> None:
        self._call("POST", "config", {"webhook_delivery": delivery.to_dict()})

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

    def wait_until_webhooks_delivered(self, timeout: float = 10.0) -> bool:
        answer = self._call(
            "GET", f"webhooks/delivered?timeout={timeout}", read_timeout=timeout + 5
        )
        return bool(answer["delivered"])

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
