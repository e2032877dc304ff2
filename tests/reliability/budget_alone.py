"""The request budget alone at the account's limit: `instances` callers, each with its own
view of the shared budget (its own DynamoDB client and lent slots, as separate Lambda
environments have), send Data API requests as fast as the budget lets them. No record, no
S3: what the budget itself sustains, apart from how fast this one process can import."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import urllib3

from local_stack.aws import LocalAws
from reliability.driver import DriverStats
from reliability.invariants import check
from reliability.rig import TOKEN, Rig
from reliability.suite import Scenario, ScenarioResult, add_rate, budget_is_free
from s3_to_wistia.budget import IMPORTS
from s3_to_wistia.rules import parse_retry_after
from s3_to_wistia.wiring import build_rate_budget

WAIT_SECONDS = 10.0


def run_budget_alone(
    aws: LocalAws, scenario: Scenario, log_dir: Path | None = None
) -> ScenarioResult:
    started = time.monotonic()
    rig = Rig.start(aws, rate_limit=scenario.rate_limit, rate_window=scenario.rate_window)
    try:
        settings = rig.settings()
        left = [scenario.objects]
        lock = threading.Lock()
        statuses: Counter[int] = Counter()
        url = rig.emulator.url.rstrip("/") + "/v1/medias.json?per_page=1"

        def caller() -> None:
            budget = build_rate_budget(settings)
            http = urllib3.PoolManager(retries=False)
            while True:
                with lock:
                    if left[0] <= 0:
                        return
                    left[0] -= 1
                if not budget.take(IMPORTS, time.time() + WAIT_SECONDS):
                    with lock:
                        statuses[0] += 1  # no slot in time
                    continue
                answer = http.request("GET", url, headers={"Authorization": f"Bearer {TOKEN}"})
                seconds = parse_retry_after(answer.headers.get("Retry-After"), time.time())
                if answer.status == 429 and seconds is not None:
                    budget.pause(seconds)
                with lock:
                    statuses[answer.status] += 1

        threads = [threading.Thread(target=caller) for _ in range(scenario.instances)]
        clock = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(scenario.timeout)
        seconds = time.monotonic() - clock
        end = rig.collect(settle=False)
        verdict = check(
            [], end.records, end.dead_letters, [], end.texts, rig.tokens, rig.aws_secret
        )
        result = ScenarioResult(
            scenario=scenario,
            objects=scenario.objects,
            deliveries=0,
            repeats=0,
            faults=Counter(),
            verdict=verdict,
            redrive=None,
            driver=DriverStats(),
            metrics=Counter(),
            seconds=time.monotonic() - started,
            phases={"requests": seconds},
        )
        # The rate is of admitted requests here: each stands for an import's one request.
        requests = [
            {**r, "method": "POST", "path": "/"} if r.get("status") == 200 else r
            for r in end.requests
        ]
        add_rate(result, scenario, requests, seconds)
        result.notes.append(
            "answers: "
            + ", ".join(
                f"{status or 'no slot in time'} x{n}" for status, n in sorted(statuses.items())
            )
        )
        if not budget_is_free(settings):
            result.checks.append("the request budget was still held after the run")
        return result
    finally:
        rig.stop()
