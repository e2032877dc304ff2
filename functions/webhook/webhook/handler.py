"""Lambda entry point of the webhook receiver (a Function URL, payload version 2.0).
Configuration and clients are made once per execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from s3_to_wistia.config import WebhookSettings
from s3_to_wistia.redact import scrubbed_json, scrubbing_errors
from s3_to_wistia.wiring import build_webhook_receiver

settings = WebhookSettings.from_env()
logger = Logger(json_serializer=scrubbed_json)
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
receiver = build_webhook_receiver(settings, logger, metrics)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@scrubbing_errors
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receiver.handle(event)
