"""X-Ray, only when the function's tracing is Active (TRACING_MODE, the template's Tracing).

Off, nothing of the X-Ray SDK is imported: Powertools' Tracer builds the SDK's recorder
and its sampling clients when it is constructed (about 20 ms of cold start) and costs
about 1.2 ms of CPU per object, so it is constructed only when traces are wanted. On,
botocore is patched (S3, DynamoDB, SQS, Secrets Manager) and every call to Wistia, from
every function, gets a subsegment of its own, its status annotated; the form, the token
and the signed URL never reach a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from s3_to_wistia.adapters.wistia import CallTrace
    from s3_to_wistia.model import WistiaAnswer

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
    # patch does not see urllib3 2's requests anyway (wistia_calls covers Wistia's).
    return Tracer(patch_modules=("botocore",))


def traced_handler(tracer: Any) -> Callable[[Handler], Handler]:
    """The handler's tracing decorator: Tracer.capture_lambda_handler, or nothing."""
    if tracer is None:
        return lambda handler: handler
    decorate: Callable[[Handler], Handler] = tracer.capture_lambda_handler(capture_response=False)
    return decorate


def wistia_calls(tracer: Any) -> CallTrace:
    """What WistiaClient traces each call with: a subsegment named for its method and route
    (`/v1/medias/{hashed_id}.json`, so the service map has one node a route, not one a
    media), the URL without its query, Wistia's status annotated and flagged (429
    throttle, 5xx fault, 4xx error)."""
    recorder = tracer.provider

    @contextmanager
    def call(method: str, url: str, route: str) -> Iterator[Callable[[WistiaAnswer], None]]:
        parts = urlsplit(url)
        with recorder.in_subsegment(f"Wistia {method} {route}") as segment:
            segment.namespace = "remote"
            segment.put_http_meta("url", f"{parts.scheme}://{parts.netloc}{parts.path}")
            segment.put_http_meta("method", method)

            def answered(answer: WistiaAnswer) -> None:
                segment.put_http_meta("status", answer.status)
                segment.put_annotation("wistia_status", answer.status)
                if answer.status == 429:
                    segment.add_throttle_flag()
                elif answer.status >= 500:
                    segment.add_fault_flag()
                elif answer.status >= 400:
                    segment.add_error_flag()

            yield answered

    return call
