"""SQS: the dead-letter queue that keeps every object the function could not import."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from s3_to_wistia.errors import RetryableError

# SQS takes 256 KiB by default; Wistia's HTML error pages must not crowd out the rest.
MAX_ERROR_CHARS = 4000


class DeadLetters:
    def __init__(self, sqs_client_factory: Callable[[], Any], queue_url: str) -> None:
        # Only failures send here, so the client is created on first use, not at cold start.
        self._client_factory = sqs_client_factory
        self._queue_url = queue_url

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(_bounded(message), default=_json_default, ensure_ascii=False)
        try:
            self._client_factory().send_message(QueueUrl=self._queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as error:
            # The queue is the last place an object can go: if it is unreachable the
            # invocation must fail so Lambda keeps the event.
            raise RetryableError(f"could not write to the dead-letter queue: {error}") from error


def _bounded(message: dict[str, Any]) -> dict[str, Any]:
    error = message.get("wistia_error")
    if isinstance(error, str) and len(error) > MAX_ERROR_CHARS:
        message = {**message, "wistia_error": error[:MAX_ERROR_CHARS] + "... (truncated)"}
    elif error is not None and not isinstance(error, str):
        text = json.dumps(error, default=_json_default)
        if len(text) > MAX_ERROR_CHARS:
            message = {**message, "wistia_error": text[:MAX_ERROR_CHARS] + "... (truncated)"}
    return message


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")
