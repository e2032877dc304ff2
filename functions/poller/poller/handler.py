"""Lambda entry point of the status poller (an EventBridge schedule). Configuration and
clients are made once per execution environment."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from s3_to_wistia.adapters.tracing import lambda_tracer, traced_handler
from s3_to_wistia.polling import PollerSettings
from s3_to_wistia.redact import scrubbed_json, scrubbing_errors
from s3_to_wistia.wiring import build_status_poller

settings = PollerSettings.from_env()
logger = Logger(json_serializer=scrubbed_json)
# None unless the template's Tracing is Active: then not even the X-Ray SDK is imported.
tracer = lambda_tracer(settings)
metrics = Metrics()
function = build_status_poller(settings, logger, metrics, tracer=tracer)


@logger.inject_lambda_context(clear_state=True)
@traced_handler(tracer)
@metrics.log_metrics
@scrubbing_errors
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000
    return function.poller.run(deadline, function.budget()).as_dict()
