"""X-Ray, only when the function's tracing is Active (TRACING_MODE, the template's Tracing).

Off, nothing of the X-Ray SDK is imported: Powertools' Tracer builds the SDK's recorder
and its sampling clients when it is constructed (about 20 ms of cold start) and costs
about 1.2 ms of CPU per object, so it is constructed only when traces are wanted. On,
botocore is patched (S3, DynamoDB, SQS, Secrets Manager) and every call to Wistia gets a
subsegment of its own, its status annotated; the form, the token and the signed URL never
reach a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from s3_to_wistia.model import WistiaAnswer

if TYPE_CHECKING:
    from s3_to_wistia.adapters.multipart import MultipartFile
    from s3_to_wistia.adapters.wistia import WistiaClient

Handler = TypeVar("Handler", bound=Callable[..., Any])


class TracingChoice(Protocol):
    """Any function's settings (Settings, PollerSettings, WebhookSettings): TRACING_MODE."""

    @property
    def tracing(self) -> bool: ...


def lambda_tracer(settings: TracingChoice) -> Any:
    """Powertools' Tracer when tracing is on, else None (and the X-Ray SDK stays unloaded)."""
    if not settings.tracing:
        return None
    from aws_lambda_powertools import Tracer

    # Only botocore: patch_all would import sqlite3 and a dozen patchers, and its httplib
    # patch does not see urllib3 2's requests anyway (TracedWistia covers Wistia's).
    return Tracer(patch_modules=("botocore",))


def traced_handler(tracer: Any) -> Callable[[Handler], Handler]:
    """The handler's tracing decorator: Tracer.capture_lambda_handler, or nothing."""
    if tracer is None:
        return lambda handler: handler
    decorate: Callable[[Handler], Handler] = tracer.capture_lambda_handler(capture_response=False)
    return decorate


class TracedWistia:
    """WistiaApi with a subsegment around every call (the host and path, never the query)."""

    def __init__(self, wistia: WistiaClient, tracer: Any) -> None:
        self._wistia = wistia
        self._recorder = tracer.provider

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        with self._call("POST", self._wistia.upload_url) as done:
            return done(self._wistia.import_url(form, token, deadline))

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        with self._call("GET", self._wistia.medias_url) as done:
            return done(self._wistia.list_medias(name, project_id, token, deadline))

    def upload_file(self, body: MultipartFile, token: str, **options: Any) -> WistiaAnswer:
        with self._call("POST", self._wistia.upload_url) as done:
            return done(self._wistia.upload_file(body, token, **options))

    @contextmanager
    def _call(self, method: str, url: str) -> Iterator[Callable[[WistiaAnswer], WistiaAnswer]]:
        parts = urlsplit(url)
        with self._recorder.in_subsegment(f"Wistia {method} {parts.path or '/'}") as segment:
            segment.namespace = "remote"
            segment.put_http_meta("url", f"{parts.scheme}://{parts.netloc}{parts.path}")
            segment.put_http_meta("method", method)

            def done(answer: WistiaAnswer) -> WistiaAnswer:
                segment.put_http_meta("status", answer.status)
                segment.put_annotation("wistia_status", answer.status)
                if answer.status == 429:
                    segment.add_throttle_flag()
                elif answer.status >= 500:
                    segment.add_fault_flag()
                elif answer.status >= 400:
                    segment.add_error_flag()
                return answer

            yield done
