"""The backfill at volume: S3 Batch Operations over a bucket of existing objects, against the
emulator's rate limit, with invocations killed mid-flight; then reconcile over it.

    PYTHONPATH=tests python -m reliability --only backfill [--backfill-objects N]

1. Objects go into the bucket of a fresh copy of template.yaml's stack: sizes from 0 bytes to
   50 MB (a media header and zeros, quick to make), awkward keys (spaces, '+', '%', unicode,
   parentheses), 2% naming a Wistia project that does not exist (Wistia refuses them: 400).
   5% are imported by their S3 events first, through the import function's own path.
2. The emulator's rate limit is switched on. A job over the bucket runs in a process of its own
   (reliability.backfill_runner): the stand-in invokes the real backfill function in as many
   execution environments as its reserved concurrency, each keeping its turn at the backfill's
   share of the limit. 1% of the invocations are killed mid-flight; a burst of 429s is
   injected on top of the limit's own.
3. The operator runs the failed tasks again once the killed invocations' claims have lapsed:
   `s3-to-wistia backfill --local --retry-failed JOB`.
4. `s3-to-wistia reconcile --local` reports on all of it (timed, with its request count).

Then, per object: it ends SUBMITTED (exactly one media at Wistia, its own), SKIPPED with the
reason, or FAILED with its dead letter (reliability.invariants.check, as every scenario), and
its last line in the completion reports says the same. The figures: requests at Wistia
against the limit, the share answered 429, the job runner's peak memory, reconcile's time.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3

from local_stack.aws import SECRET_ACCESS_KEY, LocalAws, patched_environ
from local_stack.batch_report import ReportRow, read_completion_report
from local_stack.events import Uploaded, s3_notification
from local_stack.harness import CapturedLogger, LambdaContext, all_records, make_importer
from local_stack.template import ROOT, Stack, provision
from reliability.invariants import Verdict, check, drain_dead_letters
from reliability.workload import (
    IMPORTABLE_EXTENSIONS,
    MISSING_PROJECT,
    WORDS,
    ObjectPlan,
    PlacedObject,
    s3_client,
)
from s3_to_wistia.cli.main import main as cli
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from wistia_emulator import EmulatorControl, Fault
from wistia_emulator.testing import EmulatorProcess

TOKEN = "reliability-backfill-token-1"
HEAD = b"\x00\x00\x00\x18ftypmp42"
MIB = 1024 * 1024
FOLDERS = ("plain", "with space", "a+b", "100% done", "ünï cødé", "日本 語", "(2026) [final]")
PREFIX = "existing/"
UPLOAD_THREADS = 8
EVENT_THREADS = 4


@dataclass(frozen=True)
class BackfillSpec:
    objects: int = 10_000
    rate_limit: int = 900  # requests per window, upload and Data API together
    rate_window: float = 60.0
    share: float = 0.95  # the backfill's pace, of the limit
    environments: int = 8  # the function's reserved concurrency; S3 runs as many at once
    kill_share: float = 0.01
    preimported_share: float = 0.05
    refused_share: float = 0.02
    zero_share: float = 0.01
    large_share: float = 0.02  # 1 to 10 MB
    largest_share: float = 0.003  # 50 MB
    storm: int = 20  # 429s injected on top of the limit's own
    function_timeout: float = 10.0
    seed: int = 15

    @property
    def requests_per_minute(self) -> int:
        return math.floor(self.share * self.rate_limit * 60 / self.rate_window)


@dataclass
class BackfillResult:
    spec: BackfillSpec
    verdict: Verdict | None = None
    sizes: Counter[str] = field(default_factory=Counter)
    bytes_total: int = 0
    job: dict[str, Any] = field(default_factory=dict)  # the runner's answer
    retry: dict[str, Any] = field(default_factory=dict)  # backfill --retry-failed, as JSON
    reconcile: dict[str, Any] = field(default_factory=dict)  # reconcile --json
    reconcile_seconds: float = 0.0
    requests: int = 0  # Wistia requests during the job
    admitted: int = 0
    throttled: int = 0
    injected: int = 0
    request_seconds: float = 0.0
    lines: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)  # invariants broken
    misses: list[str] = field(default_factory=list)  # figures short of the goals
    phases: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def admitted_rate(self) -> float:
        return self.admitted / self.request_seconds if self.request_seconds else 0.0

    @property
    def utilisation(self) -> float:
        return self.admitted_rate / (self.spec.rate_limit / self.spec.rate_window)

    @property
    def throttled_share(self) -> float:
        return self.throttled / self.requests if self.requests else 0.0


# --- the objects -------------------------------------------------------------------------------


def size_for(index: int, rng: random.Random, spec: BackfillSpec, count: int) -> int:
    """0 bytes, 50 MB, 1 to 10 MB (log-uniform) or 1 to 64 KiB, in the spec's shares."""
    zero = round(count * spec.zero_share)
    largest = max(1, round(count * spec.largest_share)) if spec.largest_share else 0
    large = round(count * spec.large_share)
    if index < zero:
        return 0
    if index < zero + largest:
        return 50 * MIB
    if index < zero + largest + large:
        return int(math.exp(rng.uniform(math.log(MIB), math.log(10 * MIB))))
    return rng.randrange(1024, 64 * 1024)


def plan_objects(spec: BackfillSpec, rng: random.Random) -> tuple[list[ObjectPlan], list[int]]:
    """The objects (bodies made at upload time, from each plan's size) and their sizes."""
    count = spec.objects
    order = list(range(count))
    rng.shuffle(order)  # sizes and refusals land anywhere in the key order
    refused = set(rng.sample(range(count), round(count * spec.refused_share)))
    plans, sizes = [], []
    for position, index in enumerate(order):
        word = WORDS[index % len(WORDS)]
        folder = FOLDERS[index % len(FOLDERS)]
        extension = IMPORTABLE_EXTENSIONS[index % len(IMPORTABLE_EXTENSIONS)]
        key = f"{PREFIX}{folder}/{index:05d} {word}.{extension}"
        size = size_for(position, rng, spec, count)
        if size == 0:
            plans.append(ObjectPlan(key, b"", "skip", note="zero-byte object"))
        elif index in refused:
            metadata = {"wistia-project-id": MISSING_PROJECT}
            plans.append(ObjectPlan(key, b"", "fail", metadata, "Wistia refuses it (400)"))
        else:
            plans.append(ObjectPlan(key, b"", "import"))
        sizes.append(size)
    return plans, sizes


def body_of(size: int) -> bytes:
    return b"" if size == 0 else (HEAD + bytes(max(0, size - len(HEAD))))[:size]


def upload_objects(bucket: str, plans: list[ObjectPlan], sizes: list[int]) -> list[PlacedObject]:
    client = s3_client()

    def put(item: tuple[ObjectPlan, int]) -> PlacedObject:
        plan, size = item
        answer = client.put_object(
            Bucket=bucket, Key=plan.key, Body=body_of(size), Metadata=plan.metadata
        )
        etag = str(answer["ETag"]).strip('"')
        return PlacedObject(plan, Uploaded(bucket, plan.key, answer.get("VersionId"), etag, size))

    with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        return list(pool.map(put, zip(plans, sizes, strict=True)))


def import_by_events(settings: Settings, placed: Sequence[PlacedObject]) -> CapturedLogger:
    """What the import function does with these objects' S3 events."""
    log = CapturedLogger.create()
    importers = [make_importer(settings, log.logger) for _ in range(EVENT_THREADS)]

    def deliver(item: tuple[int, PlacedObject]) -> None:
        number, obj = item
        importer = importers[number % EVENT_THREADS]
        event = s3_notification(obj.uploaded)
        handle_event(event, LambdaContext(), importer, importer.dead_letters, log.logger)

    with concurrent.futures.ThreadPoolExecutor(EVENT_THREADS) as pool:
        list(pool.map(deliver, enumerate(placed)))
    return log


# --- the run -----------------------------------------------------------------------------------


def run_backfill(aws: LocalAws, spec: BackfillSpec, log_dir: Path | None = None) -> BackfillResult:
    """The whole measurement on the shared moto server (boto3 set up to reach it)."""
    started = time.monotonic()
    result = BackfillResult(spec)
    rng = random.Random(spec.seed)  # noqa: S311 (test data, not a secret)
    work = (log_dir or ROOT / ".local" / "reliability") / "backfill"
    work.mkdir(parents=True, exist_ok=True)
    with EmulatorProcess(
        "--host", "127.0.0.1", "--port", "0", "--token", TOKEN, "--quiet",
        "--processing-delay", "0.01", "--rate-limit", "1000000000", "--rate-window", "1",
    ) as emulator:  # fmt: skip
        control = EmulatorControl(emulator.url, timeout=120.0)
        stack = provision(token=TOKEN)
        clock = time.monotonic()
        plans, sizes = plan_objects(spec, rng)
        placed = upload_objects(stack.bucket, plans, sizes)
        result.sizes = Counter(size_band(size) for size in sizes)
        result.bytes_total = sum(sizes)
        result.phases["upload"] = time.monotonic() - clock
        clock = time.monotonic()
        importable = [p for p in placed if p.plan.expect == "import"]
        early = rng.sample(importable, round(spec.objects * spec.preimported_share))
        settings = Settings.from_env(stack.environment_for(emulator.url))
        event_log = import_by_events(settings, early)
        result.phases["events first"] = time.monotonic() - clock
        # The limit from now on, in a window of its own.
        control.set_rate_limit(spec.rate_limit, spec.rate_window)
        time.sleep(spec.rate_window)
        clock = time.monotonic()
        result.job = run_job_apart(aws, stack, emulator.url, spec, work, control)
        result.phases["job"] = time.monotonic() - clock
        requests = control.requests()
        measure_rate(result, requests, result.job["started"], result.job["ended"])
        clock = time.monotonic()
        wait_for_leases(stack, spec.function_timeout + 5)
        with local_cli(stack, emulator.url, spec):
            result.retry = cli_json(
                "backfill", "--local", "--retry-failed", job_id(result), "--yes"
            )
            result.phases["retry failed"] = time.monotonic() - clock
            settle(control)
            clock = time.monotonic()
            result.reconcile = cli_json("reconcile", "--local", "--show", "0")
            result.reconcile_seconds = time.monotonic() - clock
        records = all_records(stack.table_name)
        letters = drain_dead_letters(stack.queue_url)
        medias = control.medias()
        texts = {
            "function log": read_text(work / "function.log") + event_log.text(),
            "records": json.dumps(records, default=str, ensure_ascii=False),
            "dead letters": "\n".join(letter.raw for letter in letters),
        }
        result.verdict = check(placed, records, letters, medias, texts, [TOKEN], SECRET_ACCESS_KEY)
        check_reports(result, stack, placed, records)
    result.problems[:0] = list(result.verdict.problems) if result.verdict else ["no verdict"]
    add_figure_checks(result)
    result.seconds = time.monotonic() - started
    return result


def run_job_apart(
    aws: LocalAws,
    stack: Stack,
    wistia_url: str,
    spec: BackfillSpec,
    work: Path,
    control: EmulatorControl,
) -> dict[str, Any]:
    """The job in reliability.backfill_runner, configured as Lambda configures the function."""
    spec_path, result_path = work / "job.json", work / "job-result.json"
    spec_path.write_text(
        json.dumps(
            {
                "bucket": stack.bucket,
                "prefix": PREFIX,
                "reports_bucket": stack.resources["BackfillReportsBucket"],
                "environments": spec.environments,
                "function_timeout": spec.function_timeout,
                "kill_share": spec.kill_share,
                "seed": spec.seed,
            }
        ),
        encoding="utf-8",
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "tests"),
        **aws.environment(),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **stack.environment_of("BackfillFunction", wistia_url),
        "BACKFILL_CONCURRENCY": str(spec.environments),
        "BACKFILL_REQUESTS_PER_MINUTE": str(spec.requests_per_minute),
        **budget_at_pace(spec),
    }
    expected = spec.objects * 60 / spec.requests_per_minute
    fired = threading.Event()

    def burst() -> None:
        if spec.storm:
            burst_of_429s = Fault(
                kind="rate_limit",
                count=spec.storm,
                retry_after=2,
                match_method="*",
                match_path="/*",
            )
            control.add_fault(burst_of_429s)
            fired.set()

    storm = threading.Timer(expected * 0.4, burst)
    with (work / "function.log").open("w", encoding="utf-8") as log:
        storm.start()
        try:
            subprocess.run(  # noqa: S603 (our interpreter, our module)
                [
                    sys.executable,
                    "-m",
                    "reliability.backfill_runner",
                    str(spec_path),
                    str(result_path),
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                cwd=ROOT,
            )
        finally:
            storm.cancel()
    answer: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    answer["storm_fired"] = fired.is_set()
    return answer


def settle(control: EmulatorControl, rounds: int = 60) -> None:
    """Wait (bounded) for Wistia to process what it was given: reconcile reads the result."""
    for _ in range(rounds):
        if control.wait_until_settled(timeout=10):
            return


def job_id(result: BackfillResult) -> str:
    return str(result.job["result"]["job_id"])


def measure_rate(
    result: BackfillResult, requests: Sequence[dict[str, Any]], started: float, ended: float
) -> None:
    during = [r for r in requests if started <= float(r["at"]) <= ended]
    if not during:
        return
    result.requests = len(during)
    result.throttled = sum(1 for r in during if r.get("status") == 429)
    result.injected = sum(1 for r in during if r.get("fault") == "rate_limit")
    result.admitted = result.requests - result.throttled
    times = sorted(float(r["at"]) for r in during)
    result.request_seconds = max(times[-1] - times[0], 1e-9)


def wait_for_leases(stack: Stack, longest: float) -> None:
    """The killed invocations' claims lapse with their lease (their deadline plus a margin)."""
    leases = [
        float(record["lease_expires_at"])
        for record in all_records(stack.table_name)
        if record.get("status") == "IN_PROGRESS" and record.get("lease_expires_at")
    ]
    if leases:
        time.sleep(min(longest, max(0.0, max(leases) - time.time() + 0.5)))


def budget_at_pace(spec: BackfillSpec) -> dict[str, str]:
    """The stack's request budget (which the backfill books on: the template gives it the
    budget table) at the backfill's pace, in the emulator's compressed window."""
    return {
        "WISTIA_REQUESTS_PER_MINUTE": str(spec.requests_per_minute),
        "WISTIA_RATE_WINDOW_SECONDS": f"{spec.rate_window:g}",
    }


@contextmanager
def local_cli(stack: Stack, wistia_url: str, spec: BackfillSpec) -> Iterator[None]:
    """What `s3-to-wistia --local` reads: the functions' variables and the stack's buckets."""
    with patched_environ(
        {
            **stack.environment_of("BackfillFunction", wistia_url),
            "S3_TO_WISTIA_BUCKET": stack.bucket,
            "S3_TO_WISTIA_REPORTS_BUCKET": stack.resources["BackfillReportsBucket"],
            "BACKFILL_CONCURRENCY": str(spec.environments),
            "BACKFILL_REQUESTS_PER_MINUTE": str(spec.requests_per_minute),
            **budget_at_pace(spec),
        }
    ):
        yield


def cli_json(*arguments: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli([*arguments, "--json"])
    try:
        document: dict[str, Any] = json.loads(out.getvalue())
    except ValueError:
        raise RuntimeError(
            f"s3-to-wistia {' '.join(arguments)}: exit {code}: {err.getvalue()}"
        ) from None
    document["exit_code"] = code
    return document


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


# --- the reports -------------------------------------------------------------------------------


def report_rows(stack: Stack, job: str) -> dict[str, ReportRow]:
    bucket = stack.resources["BackfillReportsBucket"]
    report = read_completion_report(boto3.client("s3"), bucket, f"reports/job-{job}/manifest.json")
    return {unquote(row.key): row for row in report.rows}


def check_reports(
    result: BackfillResult,
    stack: Stack,
    placed: Sequence[PlacedObject],
    records: Sequence[dict[str, Any]],
) -> None:
    """Every object's last line in the completion reports says what its record says."""
    first = report_rows(stack, job_id(result))
    retried: dict[str, ReportRow] = {}
    retry_job = (result.retry.get("job") or {}).get("id")
    if retry_job:
        retried = report_rows(stack, str(retry_job))
    by_key = {str(r["object_key"]): r for r in records}
    for obj in placed:
        row = retried.get(obj.key) or first.get(obj.key)
        record = by_key.get(obj.key)
        if row is None:
            result.problems.append(f"no report line: {obj.key!r}")
            continue
        result.lines[line_kind(row.result_message)] += 1
        if record is None or not agrees(row.result_message, record):
            status = record.get("status") if record else None
            result.problems.append(
                f"report line {row.result_message!r} for {obj.key!r}, record {status}"
            )


def line_kind(message: str) -> str:
    for start in ("SUBMITTED:", "SKIPPED:", "FAILED:", "already handled", "Lambda returned"):
        if message.startswith(start):
            return start.rstrip(":")
    return message[:40]


def agrees(message: str, record: dict[str, Any]) -> bool:
    status = str(record.get("status"))
    if message.startswith(f"already handled earlier ({status})"):
        return True
    if status == "SUBMITTED":
        return (
            message == f"SUBMITTED: imported into Wistia as media {record.get('wistia_hashed_id')}"
        )
    if status in ("SKIPPED", "FAILED"):
        return message.startswith(f"{status}: {record.get('error')}")
    return False


def add_figure_checks(result: BackfillResult) -> None:
    """The issue's figures against their goals: measured and shown, not asserted (a shared
    2-core machine decides how fast things go; the invariants are what must hold)."""
    spec = result.spec
    if result.utilisation < 0.90:
        result.misses.append(f"requests at {result.utilisation:.0%} of the limit (goal >= 90%)")
    if result.throttled_share > 0.01:
        result.misses.append(f"{result.throttled_share:.1%} of requests answered 429 (goal <= 1%)")
    if float(result.job.get("peak_rss_mib", 0)) >= 200:
        result.misses.append(
            f"job runner peak RSS {result.job['peak_rss_mib']:.0f} MiB (goal < 200)"
        )
    if result.reconcile_seconds >= 120:
        result.misses.append(f"reconcile took {result.reconcile_seconds:.0f} s (goal < 120)")
    budget = int(result.reconcile.get("request_budget", 0))
    if int(result.reconcile.get("wistia_requests", 0)) > budget:
        result.problems.append("reconcile went over its request budget")
    if spec.kill_share and not sum(result.job.get("killed", {}).values()):
        result.problems.append("no invocation was killed: the measurement did not exercise it")


def size_band(size: int) -> str:
    if size == 0:
        return "0 bytes"
    if size >= 50 * MIB:
        return "50 MiB"
    if size >= MIB:
        return "1-10 MiB"
    return "1-64 KiB"


# --- the report --------------------------------------------------------------------------------


def markdown(result: BackfillResult) -> list[str]:
    """The section RESULTS.md gets."""
    spec, verdict, job = result.spec, result.verdict, result.job
    outcome = job.get("result", {})
    killed = job.get("killed", {})
    retry = result.retry.get("job") or {}
    reconcile = result.reconcile
    counts = {k: v for k, v in (reconcile.get("counts") or {}).items() if v}
    finals = dict(verdict.finals) if verdict else {}
    lines = [
        "## Backfill through S3 Batch Operations",
        "",
        f"**{'OK' if result.ok else 'NOT OK'}: "
        f"{'every invariant held' if result.ok else 'an invariant broke'}"
        f"{'' if not result.misses else f'; {len(result.misses)} figure(s) short of the goal'}.** "
        f"{spec.objects:,} objects "
        f"({result.bytes_total / MIB:,.0f} MiB: "
        + ", ".join(f"{n:,} of {band}" for band, n in sorted(result.sizes.items()))
        + f"), awkward keys in {len(FOLDERS)} folders; {spec.preimported_share:.0%} imported "
        f"by their S3 events first, {spec.refused_share:.0%} refused by Wistia (400); the "
        f"emulator's limit {spec.rate_limit} requests per {spec.rate_window:g} s "
        f"({spec.rate_limit / spec.rate_window:g}/s), the backfill booked on the request "
        "budget at "
        f"{spec.share:.0%} of it ({spec.requests_per_minute:,}/min) over {spec.environments} "
        f"execution environments (its reserved concurrency), {spec.kill_share:.0%} of the "
        f"invocations killed mid-flight, {spec.storm} extra 429s injected. {result.seconds:.0f} s "
        "in all on this shared 2-core machine.",
        "",
        "| figure | measured | goal |",
        "| --- | --- | --- |",
        f"| objects lost | {len(verdict.lost) if verdict else '?'} | 0 |",
        f"| duplicate media | {verdict.duplicated if verdict else '?'} | 0 |",
        f"| end states | {', '.join(f'{k} {v:,}' for k, v in sorted(finals.items()))} | "
        "SUBMITTED / SKIPPED / FAILED with a dead letter |",
        f"| last report line agrees with the record | "
        f"{sum(result.lines.values()):,} of {spec.objects:,} "
        f"({', '.join(f'{k} {v:,}' for k, v in result.lines.most_common())}) | every object |",
        f"| Wistia requests during the job, admitted, per s | {result.admitted:,} in "
        f"{result.request_seconds:.0f} s = {result.admitted_rate:.1f}/s "
        f"of {spec.rate_limit / spec.rate_window:g}/s: **{result.utilisation:.1%}** | >= 90% |",
        f"| answered 429 | {result.throttled} of {result.requests:,} "
        f"(**{result.throttled_share:.2%}**; {result.injected} injected) | <= 1% |",
        f"| job runner's peak RSS (stand-in + {spec.environments} Lambda environments) | "
        f"**{float(job.get('peak_rss_mib', 0)):.0f} MiB** | < 200 MiB |",
        f"| reconcile, full report | **{result.reconcile_seconds:.0f} s**, "
        f"{reconcile.get('wistia_requests', '?')} Data API requests (budget "
        f"{reconcile.get('request_budget', '?')}) | < 2 min, inside the budget |",
        "",
        f"- job: {outcome.get('status')}, {outcome.get('total_tasks', 0):,} tasks, "
        f"{outcome.get('succeeded', 0):,} succeeded, {outcome.get('failed', 0):,} failed, "
        f"{outcome.get('invocations', 0):,} invocations (redrives of TemporaryFailure "
        f"included), {outcome.get('max_in_flight')} at most at once, "
        f"{float(outcome.get('elapsed_seconds', 0)):.0f} s; {job.get('cold_starts')} cold starts",
        "- killed mid-flight: "
        + ", ".join(f"{n} {point}" for point, n in killed.items())
        + f"; their tasks end with a function error, then `s3-to-wistia backfill --local "
        f"--retry-failed JOB` ran {result.retry.get('to_import', 0)} failed tasks again: "
        f"{(retry.get('result') or {}).get('results')}",
        f"- reconcile: {counts}",
        "- phases: "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.phases.items()),
    ]
    if result.problems:
        lines += ["", "Problems:", *[f"- {problem}" for problem in result.problems[:30]]]
    if result.misses:
        lines += ["", "Short of the goals:", *[f"- {miss}" for miss in result.misses]]
    return lines


def console_lines(result: BackfillResult) -> list[str]:
    verdict = result.verdict
    return [
        f"backfill {result.spec.objects:,} objects: {'ok' if result.ok else 'NOT OK'}; "
        f"lost {len(verdict.lost) if verdict else '?'}, duplicated "
        f"{verdict.duplicated if verdict else '?'}; requests {result.utilisation:.1%} of the "
        f"limit, 429 {result.throttled_share:.2%}; runner peak "
        f"{float(result.job.get('peak_rss_mib', 0)):.0f} MiB; reconcile "
        f"{result.reconcile_seconds:.0f} s; {result.seconds:.0f} s",
        *[f"   {problem}" for problem in result.problems[:20]],
        *[f"   short of the goal: {miss}" for miss in result.misses],
    ]


def small(objects: int) -> BackfillSpec:
    """A spec for a quick look (make test): the same mix, a faster limit."""
    return replace(
        BackfillSpec(),
        objects=objects,
        rate_limit=60,
        rate_window=3.0,
        largest_share=0.0,
        large_share=0.02,
        function_timeout=3.0,  # the killed invocations' claims lapse sooner
        environments=3,
        storm=5,
    )
