"""Answers and secrets that could leak credentials or hold a record in progress: each is
met with a bounded call, a scrubbed text and a record that never stays IN_PROGRESS.
Against moto's server and the Wistia emulator, over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from local_stack.events import s3_notification, upload
from local_stack.harness import CapturedLogger, LambdaContext, all_records, drain, record_of
from local_stack.template import Stack
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import WistiaAnswer
from s3_to_wistia.ports import WistiaApi
from wistia_emulator import Fault, WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
CREDENTIAL_PARTS = ("X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Signature%3D")


def deliver(event: Any, importer: Importer, log: CapturedLogger, timeout: float = 30) -> Any:
    return handle_event(
        event, LambdaContext(timeout_seconds=timeout), importer, importer.dead_letters, log.logger
    )


def everything_readable(stack: Stack, log: CapturedLogger, *more: str) -> str:
    return "\n".join(
        [
            log.text(),
            json.dumps(all_records(stack.table_name), default=str),
            json.dumps(drain(stack.queue_url)),
            *more,
        ]
    )


@pytest.mark.parametrize("encoded", [False, True], ids=["raw", "percent-encoded"])
def test_a_wistia_error_that_quotes_the_signed_url_is_scrubbed_everywhere(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    encoded: bool,
) -> None:
    # Given Wistia refuses the import with a message that quotes the URL it was given
    placeholder = "{url_quoted}" if encoded else "{url}"
    body = json.dumps({"error": f"Could not fetch {placeholder}: bad file"})
    wistia_emulator.add_fault(
        Fault(kind="status", status=400, body=body, content_type="application/json", count=1)
    )
    obj = upload(stack.bucket, "echo/quoted url.mp4", VIDEO)

    # When the object is imported
    answer = deliver(s3_notification(obj), importer, captured_log)

    # Then it fails with Wistia's words, and no credential of the URL survives anywhere
    assert answer["results"][0]["status"] == "FAILED"
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and "Could not fetch" in record["error"]
    readable = everything_readable(stack, captured_log)
    for part in CREDENTIAL_PARTS:
        assert part not in readable
    assert "AKIALOCALSTACKTEST01%2F" not in readable and "AKIALOCALSTACKTEST01/" not in readable


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "status line and headers"])
def test_an_answer_that_trickles_in_is_cut_off_by_the_deadline_and_remembered(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    headers_too: bool,
) -> None:
    # Given Wistia creates the media but sends its answer a byte every 0.25 s (a minute or
    # more in all), while each read by itself is well inside the 2 s read timeout
    importer = importer_for(settings, read_timeout=2.0, connect_timeout=1.0, max_attempts=1)
    wistia_emulator.add_fault(
        Fault(kind="trickle", seconds=0.25, trickle_headers=headers_too, count=1)
    )
    obj = upload(stack.bucket, "slow/trickle.mp4", VIDEO)

    # When the event is handled, with a whole invocation of 20 s
    with pytest.raises(RetryableError, match="did not answer in time"):
        deliver(s3_notification(obj), importer, captured_log, timeout=20)

    # Then the call was cut off, not waited out: the record is handed back, remembering the
    # submission whose answer never came, so the next delivery looks for its media first
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "PENDING_RETRY"
    assert record["unanswered_submits"] == 1
    assert record["timed_out_at"]
    assert len(wistia_emulator.medias()) == 1


def test_a_token_secret_with_a_line_break_fails_naming_the_secret_never_its_value(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    token = "abcdefgh\nX-Injected: header-value-42"
    boto3.client("secretsmanager").put_secret_value(SecretId=stack.secret_id, SecretString=token)
    obj = upload(stack.bucket, "secret/newline.mp4", VIDEO)

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "FAILED"
    readable = everything_readable(stack, captured_log)
    assert "holds a character no API token has" in readable
    assert stack.secret_id in readable
    assert "abcdefgh" not in readable and "header-value-42" not in readable
    assert wistia_emulator.requests() == []


def test_a_header_urllib3_refuses_never_reaches_an_error_text(
    settings: Settings, importer: Importer
) -> None:
    # The last line of defence, below the token check: http.client quotes the header.
    from s3_to_wistia.errors import PermanentError

    with pytest.raises(PermanentError) as refused:
        importer.wistia.import_url({"url": "https://x/y.mp4", "name": "y"}, "secret-value\nnope")

    assert "secret-value" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_the_stacks_placeholder_token_fails_with_what_to_do(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    from s3_to_wistia.adapters.secrets import PLACEHOLDER_TOKEN

    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.secret_id, SecretString=json.dumps({"token": PLACEHOLDER_TOKEN})
    )
    obj = upload(stack.bucket, "secret/placeholder.mp4", VIDEO)

    deliver(s3_notification(obj), importer, captured_log)

    [letter] = drain(stack.queue_url)
    assert "paste your Wistia API token" in letter["reason"]
    assert stack.secret_id in letter["reason"]
    assert wistia_emulator.requests() == []


def test_numbers_and_texts_dynamodb_cannot_store_are_recorded_as_text(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    odd = (
        '{"id": 12345678901234567890123456789012345678901234567890, "hashed_id": "odd1",'
        ' "duration": NaN, "progress": 1e400, "name": "lone \\ud800 surrogate"}'
    )
    wistia_emulator.add_fault(
        Fault(kind="status", status=200, body=odd, content_type="application/json", count=1)
    )
    obj = upload(stack.bucket, "odd/numbers.mp4", VIDEO)

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "SUBMITTED"
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None
    assert record["wistia_hashed_id"] == "odd1"
    assert record["wistia_response"]["duration"] == "NaN"
    assert record["wistia_response"]["id"] == "12345678901234567890123456789012345678901234567890"


class BrokenWistia:
    """A Wistia client with a bug nobody planned for."""

    def __init__(self, real: WistiaApi) -> None:
        self._real = real

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        raise KeyError(f"boom near {form['url']}")

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        return self._real.list_medias(name, project_id, token, deadline)


def test_an_unexpected_exception_hands_the_record_back_scrubbed(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    real = importer.wistia
    importer.wistia = BrokenWistia(real)
    obj = upload(stack.bucket, "bug/unexpected.mp4", VIDEO)

    with pytest.raises(KeyError) as raised:
        deliver(s3_notification(obj), importer, captured_log)

    # Then the record is not left IN_PROGRESS, and nothing quotes the signed URL
    assert "REDACTED" in str(raised.value) and "X-Amz-Signature" not in str(raised.value)
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "PENDING_RETRY"
    assert "unexpected KeyError" in record["error"]
    assert record["unanswered_submits"] == 1
    # And the next delivery imports it
    importer.wistia = real
    assert deliver(s3_notification(obj), importer, captured_log)["results"][0]["status"] == (
        "SUBMITTED"
    )
    assert "X-Amz-Signature" not in everything_readable(stack, captured_log)


def test_the_percent_encoded_form_of_a_secret_is_scrubbed_too() -> None:
    from s3_to_wistia.redact import redact, register_secret

    register_secret("s3cr3t/with+plus&amp")

    assert redact(f"a {quote('s3cr3t/with+plus&amp', safe='')} b") == "a REDACTED b"
    assert redact("x s3cr3t/with+plus&amp y") == "x REDACTED y"
