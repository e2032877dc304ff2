"""Lambda entry point. Configuration and clients are made once per execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from s3_to_wistia.adapters.tracing import lambda_tracer, traced_handler
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.redact import scrubbed_json, scrubbing_errors
from s3_to_wistia.wiring import LockedMetrics, build_import_function

settings = Settings.from_env()
# Every line is scrubbed of signed-URL credentials and secrets, whatever it quotes.
logger = Logger(json_serializer=scrubbed_json)
# None unless the template's Tracing is Active: then not even the X-Ray SDK is imported.
tracer = lambda_tracer(settings)
metrics = Metrics()
function = build_import_function(settings, logger, LockedMetrics(metrics), tracer=tracer)


@logger.inject_lambda_context(clear_state=True)
@traced_handler(tracer)
@metrics.log_metrics
@scrubbing_errors
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_event(
        event, context, function.importer, function.dead_letters, logger, function.removals
    )
