"""Wistia's Upload API: one form-encoded URL import per call, token in a header."""

from __future__ import annotations

from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from importer.model import WistiaAnswer

# Wistia's answers are small JSON objects; a larger body is not one we can use.
MAX_ANSWER_BYTES = 1 << 20


class WistiaUnreachable(Exception):
    """No answer from Wistia.

    `maybe_received` is True when the request may have reached Wistia (the connection
    dropped or timed out after sending): Wistia may have created the media anyway.
    """

    def __init__(self, reason: str, maybe_received: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_received = maybe_received


class WistiaClient:
    def __init__(
        self, http: urllib3.PoolManager, upload_url: str, timeout: urllib3.Timeout
    ) -> None:
        self._http = http
        self._upload_url = upload_url
        self._timeout = timeout

    def import_url(self, form: dict[str, str], token: str) -> WistiaAnswer:
        """POST the import. Never logs or returns the form: it holds a signed URL."""
        try:
            response = self._http.request(
                "POST",
                self._upload_url,
                fields=form,
                encode_multipart=False,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                body = response.read(MAX_ANSWER_BYTES + 1)
            finally:
                response.release_conn()
        except (ConnectTimeoutError, NewConnectionError) as error:
            raise WistiaUnreachable(
                f"could not connect to Wistia: {_reason(error)}", False
            ) from error
        except ReadTimeoutError as error:
            raise WistiaUnreachable("Wistia did not answer in time", True) from error
        except (ProtocolError, HTTPError) as error:
            raise WistiaUnreachable(
                f"connection to Wistia dropped: {_reason(error)}", True
            ) from error
        if len(body) > MAX_ANSWER_BYTES:
            body = body[:MAX_ANSWER_BYTES]
        return WistiaAnswer(
            status=response.status,
            body=body,
            content_type=response.headers.get("Content-Type", ""),
            retry_after=response.headers.get("Retry-After"),
        )


def _reason(error: Any) -> str:
    # urllib3's messages name host and port only; never the body, which holds the URL.
    return type(error).__name__
