"""Credentials never survive a scrubbed text, in any encoding an outside system may use."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest

from s3_to_wistia.redact import (
    redact,
    redact_value,
    register_secret,
    scrub_exception,
    scrubbed_json,
)

URL = (
    "https://media.s3.amazonaws.com/clip.mp4?versionId=v1&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=ASIAEXAMPLE%2F20261202%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20261202T000000Z&X-Amz-Expires=21600&X-Amz-SignedHeaders=host"
    "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLETOKEN&X-Amz-Signature=0123456789abcdef"
)
SECRET_PARTS = ("ASIAEXAMPLE", "IQoJb3JpZ2luX2VjEXAMPLETOKEN", "0123456789abcdef")


@pytest.mark.parametrize(
    "text",
    [
        URL,
        quote(URL, safe=""),
        quote_plus(URL),
        quote(quote(URL, safe=""), safe=""),
        json.dumps(URL),
    ],
    ids=["raw", "encoded", "form-encoded", "encoded twice", "json"],
)
def test_a_signed_url_loses_its_credentials_however_it_is_quoted(text: str) -> None:
    scrubbed = redact(f"could not fetch {text}: 403")

    for part in SECRET_PARTS:
        assert part not in scrubbed
    assert "clip.mp4" in scrubbed  # what a person needs to read stays


def test_registered_secrets_are_scrubbed_in_values_keys_and_log_lines() -> None:
    register_secret("tok-123456789")

    assert redact_value({"tok-123456789": ["Bearer tok-123456789"]}) == {
        "REDACTED": ["Bearer REDACTED"]
    }
    assert "tok-123456789" not in scrubbed_json({"message": "header Bearer tok-123456789"})


def test_short_values_are_not_taken_for_secrets() -> None:
    register_secret("abc")

    assert redact("abc abc") == "abc abc"


def test_an_exception_is_scrubbed_and_its_chain_cut() -> None:
    register_secret("hunter2-hunter2")
    try:
        try:
            raise ValueError("Invalid header value b'Bearer hunter2-hunter2\\n'")
        except ValueError as cause:
            raise RuntimeError(f"wrapped: {cause}") from cause
    except RuntimeError as error:
        scrubbed = scrub_exception(error)

    assert "hunter2" not in str(scrubbed)
    assert scrubbed.__cause__ is None and scrubbed.__suppress_context__
