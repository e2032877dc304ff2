"""Scrubbing credentials out of every text that comes from outside or goes to a log.

Two kinds of credential can reach a text the function did not write itself: a presigned
URL's signature (Wistia or a proxy may quote the URL it was given, even percent-encoded),
and a secret the function read (an exception may quote the header that carried it). Every
such text passes through `redact` before it is logged, recorded or sent; the secrets are
registered here as they are read.
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

F = TypeVar("F", bound=Callable[..., Any])

REDACTED = "REDACTED"
# A query parameter that is (part of) a credential, raw or percent-encoded once or twice:
# SigV4's signature, credential scope and session token, and SigV2's signature and key id.
# Name and value go together, so nothing in a scrubbed text even looks like a signed URL.
_SIGNED_PARAMETER = re.compile(
    r"(?i)(?:X-Amz-(?:Signature|Credential|Security-Token)|Signature|AWSAccessKeyId)"
    r"(?:=|%3D|%253D)[^&\s\"'<>\\]+"
)
# Shorter values would match ordinary words: a secret is never that short.
MIN_SECRET_CHARS = 8

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str) -> None:
    """From now on, `value` (and its URL-encoded forms) never appears in a scrubbed text."""
    value = value.strip()
    if len(value) < MIN_SECRET_CHARS:
        return
    with _secrets_lock:
        _secrets.update({value, quote(value, safe=""), quote_plus(value)})


def redact(text: str) -> str:
    """`text` with every signed-URL credential and every registered secret replaced."""
    if not text:
        return text
    text = _SIGNED_PARAMETER.sub(REDACTED, text)
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any) -> Any:
    """A JSON-like value with every string in it redacted (keys too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


def scrub_exception(error: BaseException) -> BaseException:
    """The same exception, its message redacted and its chain cut: what Lambda reports
    (errorMessage, the on-failure record) then holds no credential."""
    text = str(error)
    clean = redact(text)
    if clean != text:
        error.args = (clean,)
    error.__cause__ = None
    error.__suppress_context__ = True
    return error


def scrubbed_json(log: dict[str, Any]) -> str:
    """Powertools Logger's json_serializer: every log line, redacted as a whole, whatever
    a key or an exception in it quotes."""
    return redact(json.dumps(log, default=str, separators=(",", ":"), ensure_ascii=False))


def scrubbing_errors(handler: F) -> F:
    """A Lambda handler whose exceptions reach Lambda (its error message, the on-failure
    record in the dead-letter queue) scrubbed of every credential."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except Exception as error:
            raise scrub_exception(error) from None

    return wrapper  # type: ignore[return-value]
