"""Lambda entry point of the webhook receiver (a Function URL, payload version 2.0).
Configuration and clients are made once per execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from s3_to_wistia.adapters.tracing import lambda_tracer, traced_handler
from s3_to_wistia.redact import scrubbed_json, scrubbing_errors
from s3_to_wistia.webhooks import WebhookSettings
from s3_to_wistia.wiring import build_webhook_receiver

settings = WebhookSettings.from_env()
logger = Logger(json_serializer=scrubbed_json)
# None unless the template's Tracing is Active: then not even the X-Ray SDK is imported.
tracer = lambda_tracer(settings)
metrics = Metrics()
receiver = build_webhook_receiver(settings, logger, metrics)


@logger.inject_lambda_context(clear_state=True)
@traced_handler(tracer)
@metrics.log_metrics
@scrubbing_errors
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return receiver.handle(event)
