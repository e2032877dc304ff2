"""`python -m reliability.backfill_runner SPEC.json RESULT.json`: one S3 Batch Operations job
run by the local stand-in, in a process of its own so its peak memory is its own.

The job invokes the real backfill function (template.yaml's BackfillFunction) in its own
Lambda execution environments (local_stack.functions.ExecutionEnvironments), configured by
this process's environment as Lambda configures a function. A share of the invocations is
killed mid-flight: the environment dies (a BaseException no code of the function catches, as
a crash or an out-of-memory kill ends a Lambda) at one of three moments, after the claim on
the record, after Wistia accepted the import, or after the record was written; the task ends
with a function error and the environment is replaced by a cold start, as Lambda does.

RESULT.json: the job's result, how many invocations were killed where, cold starts, and the
process's peak resident memory (the runner and its environments together).
"""

from __future__ import annotations

import json
import random
import resource
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

from local_stack.batch_manifest import ObjectFilter
from local_stack.batch_operations import GeneratedManifest, LambdaInvoke, RunnerSettings, run_job
from local_stack.batch_report import CompletionReport
from local_stack.functions import ExecutionEnvironments

KILL_POINTS = ("after the claim", "after Wistia accepted", "after the record was written")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:s3-to-wistia-backfill"


class Killed(BaseException):
    """The execution environment died mid-invocation; nothing in the function catches it."""


class Killer:
    """Decides, per invocation, whether and where its environment dies."""

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self._rng = random.Random(seed)  # noqa: S311 (a test's choice, not a secret)
        self._lock = threading.Lock()
        self._local = threading.local()
        self.killed: dict[str, int] = dict.fromkeys(KILL_POINTS, 0)

    def choose(self) -> None:
        with self._lock:
            doomed = self._rng.random() < self.share
            point = self._rng.choice(KILL_POINTS) if doomed else None
        self._local.point = point

    def maybe_die(self, point: str) -> None:
        if getattr(self._local, "point", None) == point:
            self._local.point = None
            with self._lock:
                self.killed[point] += 1
            raise Killed(f"the execution environment died {point}")

    def arm(self, module: ModuleType) -> None:
        """At an environment's cold start: the moments its invocations may die at."""
        importer = module.function.importer
        records, wistia = importer.records, importer.wistia
        claim, finish, import_url = records.claim, records.finish, wistia.import_url

        def claim_then_die(*args: Any, **kwargs: Any) -> Any:
            claimed = claim(*args, **kwargs)
            self.maybe_die(KILL_POINTS[0])
            return claimed

        def import_then_die(*args: Any, **kwargs: Any) -> Any:
            answer = import_url(*args, **kwargs)
            if answer.status == 200:
                self.maybe_die(KILL_POINTS[1])
            return answer

        def finish_then_die(obj: Any, claim: Any, status: Any, fields: Any) -> None:
            finish(obj, claim, status, fields)
            if status.value != "PENDING_RETRY":
                self.maybe_die(KILL_POINTS[2])

        records.claim = claim_then_die
        records.finish = finish_then_die
        wistia.import_url = import_then_die


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started running Python. Not
    getrusage's ru_maxrss: Linux keeps it across exec, so it would be the high-water mark
    of the parent it was forked from (moto with every object in memory)."""
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    killer = Killer(spec["kill_share"], spec["seed"])
    environments = ExecutionEnvironments(
        "BackfillFunction", limit=spec["environments"], on_cold_start=killer.arm
    )

    def handler(event: dict[str, Any], context: Any) -> Any:
        killer.choose()
        return environments(event, context)

    started = time.time()
    result = run_job(
        handler,
        LambdaInvoke(FUNCTION_ARN, "2.0", {"low_priority": "true"}),
        GeneratedManifest(spec["bucket"], ObjectFilter(prefixes=(spec["prefix"],))),
        CompletionReport(spec["reports_bucket"], "reports"),
        RunnerSettings(
            concurrency=spec["environments"],
            function_timeout=spec["function_timeout"],
            retry_delay=1.0,
            max_retry_delay=8.0,
        ),
    )
    ended = time.time()
    peak_mib = peak_rss_mib()
    answer = {
        "result": asdict(result),
        "started": started,
        "ended": ended,
        "killed": killer.killed,
        "cold_starts": environments.cold_starts,
        "crashes": environments.crashes,
        "peak_rss_mib": peak_mib,
    }
    Path(argv[1]).write_text(json.dumps(answer, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
