"""The deployed entry point, importer.handler.lambda_handler, as Lambda calls it."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from local_stack.aws import LocalAws
from local_stack.events import s3_notification, upload
from local_stack.functions import load_handler
from local_stack.harness import LambdaContext, record_of
from local_stack.template import Stack
from s3_to_wistia.config import ConfigError
from s3_to_wistia.errors import RetryableError
from wistia_emulator import WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 5000


def fresh_handler(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> ModuleType:
    """Import the handler module as a new Lambda execution environment would."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return sys.modules[load_handler("ImportFunction").__module__]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_lambda_handler_imports_logs_with_identity_and_emits_metrics(
    stack: Stack,
    wistia_emulator: WistiaEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    handler = fresh_handler(monkeypatch, stack.environment_for(wistia_emulator.url))
    obj = upload(stack.bucket, "handler/first look.mp4", VIDEO)

    result = handler.lambda_handler(s3_notification(obj), LambdaContext())

    assert result["results"][0]["status"] == "SUBMITTED"
    lines = json_lines(capsys.readouterr().out)
    submitted = next(line for line in lines if line.get("message") == "import submitted")
    assert submitted["bucket"] == stack.bucket
    assert submitted["object_key"] == "handler/first look.mp4"
    assert submitted["function_request_id"]
    metrics = next(line for line in lines if "_aws" in line)
    assert metrics["ImportsSubmitted"] == [1.0] or metrics["ImportsSubmitted"] == 1.0
    assert "test-token" not in json.dumps(lines)


def test_bad_configuration_fails_the_cold_start_naming_the_variable(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {**stack.function_environment, "WISTIA_UPLOAD_URL": "http://upload.wistia.com/"}

    with pytest.raises(ConfigError, match="WISTIA_UPLOAD_URL must use https"):
        fresh_handler(monkeypatch, environment)


def test_url_expiry_is_capped_by_temporary_signing_credentials(
    stack: Stack,
    moto_server: LocalAws,
    wistia_emulator: WistiaEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the function signs with temporary credentials that die in 20 minutes,
    # while it asks for 6-hour URLs
    dies_at = int(time.time()) + 1200
    key, secret, session = "ASIALOCALTEMPORARY01", "temporary-secret", "session-token-1"
    moto_server.trust_temporary_key(key, secret, session, expires_at=dies_at)
    handler = fresh_handler(
        monkeypatch,
        {
            **stack.environment_for(wistia_emulator.url),
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_SESSION_TOKEN": session,
            "AWS_CREDENTIAL_EXPIRATION": datetime.fromtimestamp(dies_at, UTC).isoformat(),
        },
    )
    first = upload(stack.bucket, "temp/first.mp4", VIDEO)

    # When an object is imported
    handler.lambda_handler(s3_notification(first), LambdaContext())

    # Then the record says the URL dies with the credentials, not 6 hours later
    record = record_of(stack.table_name, stack.bucket, first.key, first.version_id or "")
    assert record is not None
    assert record["url_expires_at"] == datetime.fromtimestamp(dies_at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert wistia_emulator.wait_until_settled(timeout=10)
    assert wistia_emulator.medias()[0]["status"] == "ready"
    # And once the credentials have died, S3 refuses the URL: the function's probe sees it
    # before Wistia is asked, and hands the object back instead of a URL Wistia cannot fetch
    moto_server.clock_skew = 1300
    try:
        second = upload(stack.bucket, "temp/second.mp4", VIDEO)
        with pytest.raises(RetryableError, match="expired"):
            handler.lambda_handler(s3_notification(second), LambdaContext())
    finally:
        moto_server.clock_skew = 0
    assert [m["name"] for m in wistia_emulator.medias()] == ["first.mp4"]
    retry = record_of(stack.table_name, stack.bucket, second.key, second.version_id or "")
    assert retry is not None and retry["status"] == "PENDING_RETRY"
    assert "expired" in retry["error"]
