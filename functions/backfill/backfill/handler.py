"""Lambda entry point for S3 Batch Operations (LambdaInvoke, schema 1.0 or 2.0). Configuration
and clients are made once per execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.data_classes import S3BatchOperationEvent, event_source

from s3_to_wistia.adapters.tracing import lambda_tracer, traced_handler
from s3_to_wistia.backfill import BackfillSettings, handle_batch_event
from s3_to_wistia.config import Settings
from s3_to_wistia.redact import scrubbed_json, scrubbing_errors
from s3_to_wistia.wiring import LockedMetrics, build_backfill_function

settings = Settings.from_env()
backfill = BackfillSettings.from_env()
# Every line is scrubbed of signed-URL credentials and secrets, whatever it quotes.
logger = Logger(json_serializer=scrubbed_json)
# None unless the template's Tracing is Active: then not even the X-Ray SDK is imported.
tracer = lambda_tracer(settings)
metrics = Metrics()
function = build_backfill_function(
    settings, backfill, logger, LockedMetrics(metrics), tracer=tracer
)


@logger.inject_lambda_context(clear_state=True)
@traced_handler(tracer)
@metrics.log_metrics
@scrubbing_errors
@event_source(data_class=S3BatchOperationEvent)
def lambda_handler(event: S3BatchOperationEvent, context: Any) -> dict[str, Any]:
    return handle_batch_event(event, context, function.importer, logger)
