"""Wistia: the Upload API (one form-encoded URL import per call, or one file streamed as
multipart/form-data) and the Data API's media list, token in a header. Each call of the
function's ends by its deadline: the smaller of the configured timeout and what the
invocation has left, however slowly an answer trickles in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from s3_to_wistia.adapters.http import deadline as call_deadline
from s3_to_wistia.errors import PermanentError, WistiaUnreachable
from s3_to_wistia.model import WistiaAnswer

if TYPE_CHECKING:
    from s3_to_wistia.adapters.multipart import MultipartFile

# Wistia's answers are small JSON objects; a larger body is not one we can use.
MAX_ANSWER_BYTES = 1 << 20
# The Data API's most medias per list request (`per_page`, `hashed_ids[]`).
MAX_LOOKUP_IDS = 100

# Traces one call, given its method, URL and route (the path with any media id left out):
# a scope whose value is handed the answer (adapters.tracing.wistia_calls, tracing Active).
CallTrace = Callable[[str, str, str], AbstractContextManager[Callable[[WistiaAnswer], Any]]]


class WistiaClient:
    def __init__(
        self,
        http: urllib3.PoolManager,
        upload_url: str,
        timeout: urllib3.Timeout,
        api_url: str = "https://api.wistia.com/",
        trace: CallTrace | None = None,
    ) -> None:
        self._http = http
        self._trace = trace
        self._upload_url = upload_url
        self._timeout = timeout
        # The whole call, answer included, takes at most this long.
        self._call_seconds = _seconds(timeout.connect_timeout) + _seconds(timeout.read_timeout)
        self._api_url = api_url.rstrip("/")
        self._medias_url = self._api_url + "/v1/medias.json"

    @property
    def upload_url(self) -> str:
        return self._upload_url

    @property
    def medias_url(self) -> str:
        return self._medias_url

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """POST the import. Never logs or returns the form: it holds a signed URL."""
        return self._call("POST", self._upload_url, form, token, deadline)

    def upload_file(
        self,
        body: MultipartFile,
        token: str,
        on_progress: Callable[[int], None] | None = None,
        timeout: urllib3.Timeout | None = None,
    ) -> WistiaAnswer:
        """POST one file, streamed from disk with a known Content-Length (one try; the caller
        decides on retries: Wistia has no idempotency key). No deadline: sending a large file
        takes as long as it takes, each read bounded by `timeout`."""
        headers = {"Content-Type": body.content_type, "Content-Length": str(body.content_length)}
        return self._send(
            "POST", self._upload_url, body.chunks(on_progress), headers, token, timeout=timeout
        )

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """The newest medias with this exact name (Data API), to find a lost import."""
        query = {"name": name, "sort_by": "created", "sort_direction": "0", "per_page": "10"}
        if project_id:
            query["project_id"] = project_id
        return self._call("GET", f"{self._medias_url}?{urlencode(query)}", None, token, deadline)

    def check_data_api(self, token: str, deadline: float | None = None) -> WistiaAnswer:
        """The cheapest authenticated Data API call (the newest media, if any): 200 when
        Wistia lets the token read, 401 when it refuses the token or its rights."""
        return self._call("GET", f"{self._medias_url}?per_page=1", None, token, deadline)

    def check_upload_api(self, token: str, deadline: float | None = None) -> WistiaAnswer:
        """A POST to the Upload API with neither a url nor a file: Wistia checks the token
        first (401 when it refuses it), then refuses the empty request (400) without
        creating anything."""
        return self._call("POST", self._upload_url, {}, token, deadline)

    def medias_by_hashed_ids(
        self, hashed_ids: list[str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """Up to 100 given medias in one request (Data API `hashed_ids[]`); deleted ones are
        left out of the answer."""
        if not 1 <= len(hashed_ids) <= MAX_LOOKUP_IDS:
            raise ValueError(f"look up 1 to {MAX_LOOKUP_IDS} medias at a time")
        query = [("hashed_ids[]", hashed_id) for hashed_id in hashed_ids]
        query.append(("per_page", str(MAX_LOOKUP_IDS)))
        return self._call("GET", f"{self._medias_url}?{urlencode(query)}", None, token, deadline)

    def delete_media(
        self, hashed_id: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """Delete one media for good (Data API; a token with delete rights)."""
        url = f"{self._api_url}/v1/medias/{quote(hashed_id, safe='')}.json"
        return self._call("DELETE", url, None, token, deadline, "/v1/medias/{hashed_id}.json")

    def archive_media(
        self, hashed_id: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """Archive one media (a background job at Wistia; an archived media can be restored)."""
        form = {"hashed_ids[]": hashed_id}
        return self._call("PUT", f"{self._api_url}/modern/medias/archive", form, token, deadline)

    def swap_media(
        self, hashed_id: str, replacement: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """Swap `replacement`'s file into `hashed_id` (a background job at Wistia)."""
        url = f"{self._api_url}/modern/medias/{quote(hashed_id, safe='')}/swap"
        form = {"replacement_media_id": replacement}
        return self._call("PUT", url, form, token, deadline, "/modern/medias/{hashed_id}/swap")

    def background_job(
        self, job_id: str, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        """A background job's status (queued, started, finished, failed)."""
        url = f"{self._api_url}/modern/background_job_status/{quote(job_id, safe='')}"
        route = "/modern/background_job_status/{job_id}"
        return self._call("GET", url, None, token, deadline, route)

    def _call(
        self,
        method: str,
        url: str,
        form: dict[str, str] | None,
        token: str,
        deadline: float | None,
        route: str | None = None,
    ) -> WistiaAnswer:
        headers = {}
        body = None
        if form is not None:
            # Encoded once, here; the signed URL inside is percent-encoded as a form value,
            # which the server decodes back to the exact URL.
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        ends = time.time() + self._call_seconds
        with call_deadline(ends if deadline is None else min(ends, deadline)):
            return self._send(method, url, body, headers, token, route=route)

    def _send(
        self,
        method: str,
        url: str,
        body: str | Iterable[bytes] | None,
        headers: dict[str, str],
        token: str,
        timeout: urllib3.Timeout | None = None,
        route: str | None = None,
    ) -> WistiaAnswer:
        """Every call to Wistia passes here, so with tracing on every one is traced."""
        if self._trace is None:
            return self._request(method, url, body, headers, token, timeout)
        with self._trace(method, url, route or urlsplit(url).path or "/") as traced:
            answer = self._request(method, url, body, headers, token, timeout)
            traced(answer)
            return answer

    def _request(
        self,
        method: str,
        url: str,
        body: str | Iterable[bytes] | None,
        headers: dict[str, str],
        token: str,
        timeout: urllib3.Timeout | None,
    ) -> WistiaAnswer:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **headers}
        try:
            response = self._http.request(
                method,
                url,
                body=body,
                headers=headers,
                timeout=timeout or self._timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                data = response.read(MAX_ANSWER_BYTES + 1)
            finally:
                response.release_conn()
        except (ConnectTimeoutError, NewConnectionError) as error:
            raise WistiaUnreachable(
                f"could not connect to Wistia: {_reason(error)}", False
            ) from error
        except ReadTimeoutError as error:
            raise WistiaUnreachable("Wistia did not answer in time", True, True) from error
        except (ProtocolError, HTTPError) as error:
            raise WistiaUnreachable(
                f"connection to Wistia dropped: {_reason(error)}", True
            ) from error
        except ValueError:
            # http.client refuses a header value it cannot send, quoting the header (and so
            # the token) in its message: never let that message out.
            raise PermanentError(
                "the Wistia token cannot be sent in an HTTP header (it holds a character no "
                "header may carry); check the token secret"
            ) from None
        return WistiaAnswer(
            status=response.status,
            body=data[:MAX_ANSWER_BYTES],
            content_type=response.headers.get("Content-Type", ""),
            retry_after=response.headers.get("Retry-After"),
        )


def _reason(error: Any) -> str:
    # urllib3's messages name host and port only; never the body, which holds the URL.
    return type(error).__name__


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
