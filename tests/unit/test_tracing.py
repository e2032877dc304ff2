"""Tracing on demand: with the template's Tracing at PassThrough (the default) a cold start
does not even import the X-Ray SDK; with Active it patches botocore and traces every call
to Wistia in a subsegment of its own, without the form, token or signed URL."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from s3_to_wistia.adapters.tracing import lambda_tracer, traced_handler, wistia_calls
from s3_to_wistia.model import WistiaAnswer
from unit.cold_starts import FUNCTIONS, cold_start_modules
from unit.fakes import SETTINGS

# What only the webhook receiver, the poller or the Batch Operations function runs.
OTHER_ENTRY_POINTS = {
    f"s3_to_wistia.{name}"
    for name in ("webhooks", "polling", "media_status", "swaps", "backfill", "pacing")
}


@pytest.mark.parametrize("tracing_mode", [None, "PassThrough"])
def test_without_active_tracing_a_cold_start_never_imports_the_xray_sdk(
    tracing_mode: str | None,
) -> None:
    modules = cold_start_modules("ImportFunction", tracing_mode)

    assert not [m for m in modules if m.startswith(("aws_xray_sdk", "wrapt"))]
    # and nothing else the happy path does not need at init: the batch utilities (SQS
    # events only)
    assert not [m for m in modules if m.startswith("aws_lambda_powertools.utilities.batch")]
    # nor the other entry points' code, nor the event classes only the backfill reads
    assert not [m for m in modules if m in OTHER_ENTRY_POINTS]
    assert not [m for m in modules if m.startswith("aws_lambda_powertools.utilities.data_classes")]


# What only the functions that import objects run (the import and Batch Operations functions).
IMPORT_PATH = {
    f"s3_to_wistia.{name}" for name in ("importing", "policy", "deletions", "adapters.storage")
}


@pytest.mark.parametrize("logical_id", ["WebhookFunction", "PollerFunction"])
def test_the_webhook_receiver_and_the_poller_never_load_the_import_path(logical_id: str) -> None:
    modules = cold_start_modules(logical_id, "PassThrough")

    assert not [m for m in modules if m in IMPORT_PATH]
    # and the receiver, which never calls Wistia, not the request budget either
    if logical_id == "WebhookFunction":
        assert not [
            m
            for m in modules
            if m.startswith(("s3_to_wistia.budget", "s3_to_wistia.adapters.budget"))
        ]


@pytest.mark.parametrize("logical_id", [f for f in FUNCTIONS if f != "ImportFunction"])
def test_no_function_imports_the_xray_sdk_unless_tracing_is_active(logical_id: str) -> None:
    assert not [
        m for m in cold_start_modules(logical_id, "PassThrough") if m.startswith("aws_xray_sdk")
    ]
    assert "aws_xray_sdk.core" in cold_start_modules(logical_id, "Active")


def test_with_active_tracing_the_xray_sdk_patches_botocore() -> None:
    modules = cold_start_modules("ImportFunction", "Active")

    assert "aws_xray_sdk.core" in modules
    assert "aws_xray_sdk.ext.botocore.patch" in modules


def test_off_the_handler_is_left_undecorated() -> None:
    def handler(event: Any, context: Any) -> str:
        return "answer"

    assert lambda_tracer(SETTINGS) is None
    assert traced_handler(None)(handler) is handler


class FakeSubsegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.namespace = "local"
        self.http: dict[str, Any] = {}
        self.annotations: dict[str, Any] = {}
        self.flags: list[str] = []

    def put_http_meta(self, key: str, value: Any) -> None:
        self.http[key] = value

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def add_throttle_flag(self) -> None:
        self.flags.append("throttle")

    def add_fault_flag(self) -> None:
        self.flags.append("fault")

    def add_error_flag(self) -> None:
        self.flags.append("error")


class FakeRecorder:
    def __init__(self) -> None:
        self.segments: list[FakeSubsegment] = []

    def in_subsegment(self, name: str) -> Any:
        recorder = self

        class Scope:
            def __enter__(self) -> FakeSubsegment:
                recorder.segments.append(FakeSubsegment(name))
                return recorder.segments[-1]

            def __exit__(self, *exc: object) -> None:
                return None

        return Scope()


class FakeTracer:
    def __init__(self) -> None:
        self.provider = FakeRecorder()


def test_every_wistia_call_gets_a_subsegment_with_its_status_and_no_secret() -> None:
    tracer = FakeTracer()
    call = wistia_calls(tracer)
    signed = "https://upload.wistia.com/?X-Amz-Signature=secret&access_token=the-token"
    throttled = WistiaAnswer(429, b"Rate limit exceeded", "text/plain", "2")

    with call("POST", signed, "/") as answered:
        answered(throttled)
    with call("DELETE", "https://api.wistia.com/v1/medias/abc123.json", "/v1/medias/{id}.json"):
        pass  # no answer: the request raised, and X-Ray records the exception itself

    upload, delete = tracer.provider.segments
    assert (upload.name, upload.namespace) == ("Wistia POST /", "remote")
    assert upload.http == {"url": "https://upload.wistia.com/", "method": "POST", "status": 429}
    assert upload.annotations == {"wistia_status": 429}
    assert upload.flags == ["throttle"]
    # One name a route, not one a media: the service map keeps one node for deletions.
    assert delete.name == "Wistia DELETE /v1/medias/{id}.json"
    assert delete.http == {
        "url": "https://api.wistia.com/v1/medias/abc123.json",
        "method": "DELETE",
    }
    recorded = json.dumps([vars(s) for s in tracer.provider.segments])
    assert "secret" not in recorded
    assert "the-token" not in recorded


@pytest.mark.parametrize(
    ("status", "flags"), [(200, []), (401, ["error"]), (503, ["fault"]), (429, ["throttle"])]
)
def test_wistia_s_status_flags_the_subsegment(status: int, flags: list[str]) -> None:
    tracer = FakeTracer()
    with wistia_calls(tracer)("GET", "https://api.wistia.com/v1/medias.json", "/") as answered:
        answered(WistiaAnswer(status, b"{}", "application/json", None))

    [segment] = tracer.provider.segments
    assert segment.flags == flags


def test_active_tracing_is_read_from_the_template_s_mode() -> None:
    from s3_to_wistia.config import Settings

    base = {"WISTIA_TOKEN_SECRET": "s", "IMPORTS_TABLE_NAME": "t", "DEAD_LETTER_QUEUE_URL": "q"}
    assert Settings.from_env(base).tracing is False
    assert Settings.from_env({**base, "TRACING_MODE": "Active"}).tracing is True
    assert Settings.from_env({**base, "TRACING_MODE": "PassThrough"}).tracing is False
    assert replace(SETTINGS, tracing=True).tracing is True
