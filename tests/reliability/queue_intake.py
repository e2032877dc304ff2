"""The bulk sync through the intake queue (Intake=Queue): S3's events wait in the queue and
the event source mapping hands them to the function ten at a time, `instances` batches at
most at once; the same objects, limit and checks as the direct bulk sync."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import boto3

from local_stack.aws import LocalAws
from reliability.driver import DriverStats
from reliability.invariants import check
from reliability.rig import Rig
from reliability.suite import (
    SETTLE_LIMIT,
    Scenario,
    ScenarioResult,
    add_common_checks,
    add_rate,
    budget_is_free,
    redrive_dead,
    wistia_fault_counts,
)
from reliability.workload import at_least_once, standard_objects, upload_all

POLL_SECONDS = 0.5


def run_queue(aws: LocalAws, scenario: Scenario, log_dir: Path | None = None) -> ScenarioResult:
    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    rig = Rig.start(
        aws,
        rate_limit=scenario.rate_limit,
        rate_window=scenario.rate_window,
        processing_delay=scenario.processing_delay,
    )
    try:
        plans = standard_objects(scenario.objects, rng, scenario.name, scenario.failing_share)
        clock = time.monotonic()
        placed = upload_all(rig.stack.bucket, plans)
        phases = {"upload": time.monotonic() - clock}
        deliveries = at_least_once(placed, scenario.duplicate_share, rng)
        settings = rig.settings(read_timeout=scenario.read_timeout)
        source = rig.sqs_source(scenario.instances, settings, scenario.lambda_timeout)
        # S3's notifications, as the bucket sends them to the queue.
        queue_url = rig.stack.resources["IntakeQueue"]
        sqs = boto3.client("sqs")
        for first in range(0, len(deliveries), 10):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps(delivery.event)}
                for n, delivery in enumerate(deliveries[first : first + 10])
            ]
            sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        import_started = time.monotonic()
        source.start()
        deadline = import_started + scenario.timeout
        while time.monotonic() < deadline and not source.idle():
            time.sleep(POLL_SECONDS)
        finished = source.idle()
        import_seconds = time.monotonic() - import_started
        phases["deliveries"] = import_seconds
        clock = time.monotonic()
        fetching = scenario.processing_delay < SETTLE_LIMIT
        end = rig.collect(settle=fetching)
        verdict = check(
            placed, end.records, end.dead_letters, end.medias, end.texts, rig.tokens, rig.aws_secret
        )
        phases["checks"] = time.monotonic() - clock
        handler = rig.instances(1, settings)[0][1]
        redrive = redrive_dead(rig, handler, placed, end, scenario.lambda_timeout, fetching)
        stats = source.stats
        driver = DriverStats(
            invocations=stats.batches, failed=stats.failed_batches, retries=stats.item_failures
        )
        result = ScenarioResult(
            scenario=scenario,
            objects=len(placed),
            deliveries=len(deliveries),
            repeats=sum(d.repeat for d in deliveries),
            faults=wistia_fault_counts(end.requests),
            verdict=verdict,
            redrive=redrive,
            driver=driver,
            metrics=rig.metrics.counts,
            seconds=time.monotonic() - started,
            phases=phases,
        )
        result.notes.append(
            f"intake queue: {stats.batches} batches of up to 10 ({stats.messages} messages, "
            f"largest {stats.largest_batch}), {stats.item_failures} records reported failed, "
            f"{stats.failed_batches} batches failed whole"
        )
        if not finished:
            result.checks.append(f"the intake queue did not drain within {scenario.timeout:.0f} s")
        if not budget_is_free(settings):
            result.checks.append("the request budget was still held after the run")
        add_rate(result, scenario, end.requests, import_seconds)
        add_common_checks(result, scenario)
        if log_dir is not None:
            rig.write_logs(log_dir / f"{scenario.name}.log")
        return result
    finally:
        rig.stop()
