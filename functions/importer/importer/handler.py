"""Lambda entry point. Configuration and clients are made once per execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.redact import scrubbed_json, scrubbing_errors
from s3_to_wistia.wiring import LockedMetrics, build_import_function

settings = Settings.from_env()
# Every line is scrubbed of signed-URL credentials and secrets, whatever it quotes.
logger = Logger(json_serializer=scrubbed_json)
# Patch only what the function calls through: botocore. patch_all would import sqlite3 and a
# dozen patchers, and its httplib patch does not see urllib3 2's requests anyway.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
function = build_import_function(settings, logger, LockedMetrics(metrics))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@scrubbing_errors
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_event(
        event, context, function.importer, function.dead_letters, logger, function.removals
    )
