"""Running a scenario: upload, deliver at least once through the Lambda stand-in while faults
fire, check the invariants, redrive what Lambda dead-lettered, check again."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from local_stack.aws import LocalAws
from local_stack.aws_faults import AwsFault, AwsFaults
from local_stack.harness import all_records
from reliability.driver import DriverStats, Handler, LambdaAsync
from reliability.invariants import Verdict, check
from reliability.rig import EndState, Killer, Rig
from reliability.workload import PlacedObject, at_least_once, standard_objects, upload_all
from s3_to_wistia.budget import IMPORTS
from s3_to_wistia.config import Settings
from s3_to_wistia.wiring import build_rate_budget
from wistia_emulator import Fault

Kind = Literal[
    "standard",
    "bad-input",
    "bad-config",
    "queue",
    "budget",
    "unservable",
    "hostile",
    "webhooks",
    "follow",
]
POLL_SECONDS = 0.02
SETTLE_LIMIT = 60.0  # a processing delay longer than this: Wistia fetches nothing in the run
LEASE_WAIT_LIMIT = 30.0
FAULT_NAMES = {
    "drop": "dropped",
    "drop_after_create": "lost answer",
    "latency": "slow",
    "rate_limit": "429 storm",
}


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    objects: int
    kind: Kind = "standard"
    seed: int = 1
    duplicate_share: float = 0.3
    repeats_close_behind: bool = False  # each repeat right after its first delivery
    failing_share: float = 0.0  # objects Wistia refuses for good (a project that does not exist)
    wistia_faults: tuple[Fault, ...] = ()
    aws_faults: tuple[AwsFault, ...] = ()
    rate_limit: int | None = None
    rate_window: float = 60.0
    storms_at: tuple[float, ...] = ()  # progress at which the next `storm_size` requests get 429
    storm_size: int = 40
    storm_retry_after: int = 2
    rotate_token_at: float | None = None
    dlq_outage: tuple[float, float] | None = None  # from, to (progress of first deliveries)
    read_timeout: float = 2.0
    lookup: bool = True
    max_attempts: int = 5
    instances: int = 8
    lambda_timeout: float = 10.0
    retry_delays: tuple[float, ...] = (1.0, 2.0)
    processing_delay: float = 0.01
    # Measured, not asserted: duplicates are the point of the measurement (lookup off, or a
    # known gap), or dead letters caused by 429s are tolerated.
    duplicates_measured: bool = False
    no_rate_limit_dead_letters: bool = False
    report_rate: bool = False
    # Invocations killed right after their request's slot came (Killer), and the most of
    # Wistia's answers that may be 429s from the account's limit.
    kill_share: float = 0.0
    max_throttled_share: float | None = None
    timeout: float = 300.0
    # Include the inputs that trip the bugs this suite found (off in the `make test` subset,
    # where each has its own test).
    known_gaps: bool = True
    # Wistia's webhooks (kind "webhooks"): shares of events duplicated, held back behind later
    # ones, never sent; and the status poller's request budget per run.
    webhook_duplicate_share: float = 0.0
    webhook_reorder_share: float = 0.0
    webhook_drop_share: float = 0.0
    poll_max_requests: int = 10
    # Following changes (kind "follow"): each key overwritten 0 to `max_overwrites` times, a
    # share of the keys deleted after their last write.
    max_overwrites: int = 0
    delete_share: float = 0.0


@dataclass
class Redrive:
    messages: int  # in the dead-letter queue when the redrive began
    objects: int  # object versions they name
    imported: int  # of those, SUBMITTED after the redrive
    still_dead: int  # of those, still in the queue (failed again for good, or still failing)
    verdict: Verdict  # the invariants, checked again after the redrive
    summary: list[str] = field(default_factory=list)  # the tool's own summary


@dataclass
class ScenarioResult:
    scenario: Scenario
    objects: int
    deliveries: int
    repeats: int
    faults: Counter[str]
    verdict: Verdict
    redrive: Redrive | None
    driver: DriverStats
    metrics: Counter[str]
    seconds: float
    rate: float | None = None
    limit_rate: float | None = None
    # Every request Wistia admitted per second (imports and lookups), over the same span.
    request_rate: float | None = None
    # Accepted imports per second while first deliveries were still being handled: what
    # the budget sustains, without the tail of Lambda's retries.
    steady_rate: float | None = None
    requests: int = 0  # requests Wistia received
    throttled: int = 0  # of them, answered 429 for the account's limit (not injected)
    killed: int = 0  # invocations killed holding their slot
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    # Contract gaps found (a promise of the README the function does not keep).
    findings: list[str] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def lost(self) -> int:
        after = self.redrive.verdict if self.redrive else None
        return max(len(self.verdict.lost), len(after.lost) if after else 0)

    @property
    def duplicated(self) -> int:
        after = self.redrive.verdict.duplicated if self.redrive else 0
        return max(self.verdict.duplicated, after)

    @property
    def problems(self) -> list[str]:
        problems: list[str] = []
        verdicts = [(self.verdict, "")]
        if self.redrive is not None:
            verdicts.append((self.redrive.verdict, "after the redrive: "))
        for verdict, when in verdicts:
            for problem in verdict.problems:
                if self.scenario.duplicates_measured and problem.startswith("duplicated"):
                    continue
                if problem not in problems and when + problem not in problems:
                    problems.append(when + problem)
        if self.driver.abandoned:
            problems.append(f"events Lambda could not place anywhere: {len(self.driver.abandoned)}")
        if self.driver.overruns:
            problems.append(f"invocations past their timeout: {self.driver.overruns}")
        return problems + self.checks

    @property
    def ok(self) -> bool:
        return not self.problems and not self.findings


# --- faults ------------------------------------------------------------------------------------


def wistia_fault_counts(requests: Sequence[dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for request in requests:
        fault = request.get("fault")
        if fault:
            for kind in str(fault).split("+"):
                if kind == "status":
                    status = request.get("status")
                    counts[f"{status}" if status and status >= 500 else f"bad {status}"] += 1
                else:
                    counts[FAULT_NAMES.get(kind, kind)] += 1
        elif request.get("status") == 429:
            counts["429 limit"] += 1
    return counts


def aws_fault_counts(faults: AwsFaults | None) -> Counter[str]:
    counts: Counter[str] = Counter()
    if faults is None:
        return counts
    for key, count in faults.injected().items():
        target, status, code = key.split(" ", 2)
        service = target.split(".", 1)[0].replace("dynamodb", "ddb")
        kind = "throttled" if "Throttl" in code or code.startswith("SlowDown") else status
        applied = " after applying" if code.endswith("(applied)") else ""
        counts[f"{service} {kind}{applied}"] += count
    return counts


# --- running -----------------------------------------------------------------------------------


@dataclass
class Action:
    at: float
    name: str
    run: Callable[[], None]
    done: bool = False


def follow(driver: LambdaAsync, total: int, actions: Sequence[Action], timeout: float) -> bool:
    """Wait for every event to end, firing each action once progress reaches it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = driver.first_attempts_done / max(1, total)
        for action in actions:
            if not action.done and progress >= action.at:
                action.run()
                action.done = True
        if all(action.done for action in actions) and driver.pending() == 0:
            return True
        time.sleep(POLL_SECONDS)
    return False


def run_scenario(aws: LocalAws, scenario: Scenario, log_dir: Path | None = None) -> ScenarioResult:
    if scenario.kind == "bad-input":
        from reliability.bad_input import run_bad_input

        return run_bad_input(aws, scenario, log_dir)
    if scenario.kind == "bad-config":
        from reliability.bad_config import run_bad_config

        return run_bad_config(aws, scenario, log_dir)
    if scenario.kind == "queue":
        from reliability.queue_intake import run_queue

        return run_queue(aws, scenario, log_dir)
    if scenario.kind == "budget":
        from reliability.budget_alone import run_budget_alone

        return run_budget_alone(aws, scenario, log_dir)
    if scenario.kind == "unservable":
        from reliability.classes import run_unservable

        return run_unservable(aws, scenario, log_dir)
    if scenario.kind == "hostile":
        from reliability.classes import run_hostile

        return run_hostile(aws, scenario, log_dir)
    if scenario.kind == "webhooks":
        from reliability.webhooks import run_webhooks

        return run_webhooks(aws, scenario, log_dir)
    if scenario.kind == "follow":
        from reliability.follow import run_follow

        return run_follow(aws, scenario, log_dir)
    return run_standard(aws, scenario, log_dir)


def run_standard(aws: LocalAws, scenario: Scenario, log_dir: Path | None = None) -> ScenarioResult:
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
        deliveries = at_least_once(
            placed, scenario.duplicate_share, rng, scenario.repeats_close_behind
        )
        settings = rig.settings(
            read_timeout=scenario.read_timeout,
            lookup_before_resubmit=scenario.lookup,
            max_attempts=scenario.max_attempts,
        )
        killer = Killer(scenario.kill_share, scenario.seed) if scenario.kill_share else None
        instances = rig.instances(scenario.instances, settings, killer)
        driver = rig.lambda_async(instances, scenario.lambda_timeout, scenario.retry_delays)
        aws_faults = AwsFaults(scenario.aws_faults)
        actions = scenario_actions(rig, scenario, aws_faults)
        for fault in scenario.wistia_faults:
            rig.emulator.add_fault(fault)
        rig.arm_aws(aws_faults)
        driver.start()
        import_started = time.monotonic()
        for delivery in deliveries:
            driver.invoke(delivery.event, delivery.label, delivery.delay)
        finished = follow(driver, len(deliveries), actions, scenario.timeout)
        import_seconds = time.monotonic() - import_started
        phases["deliveries"] = import_seconds
        rig.emulator.clear_faults()
        rig.arm_aws(None)
        clock = time.monotonic()
        fetching = scenario.processing_delay < SETTLE_LIMIT
        end = rig.collect(settle=fetching)
        verdict = check(
            placed, end.records, end.dead_letters, end.medias, end.texts, rig.tokens, rig.aws_secret
        )
        phases["checks"] = time.monotonic() - clock
        clock = time.monotonic()
        # The operator's redrive runs after the incident: on an instance nobody kills.
        operator = instances[0][1] if killer is None else rig.instances(1, settings)[0][1]
        redrive = redrive_dead(rig, operator, placed, end, scenario.lambda_timeout, fetching)
        if redrive is not None:
            phases["redrive"] = time.monotonic() - clock
        driver.stop()
        faults = wistia_fault_counts(end.requests) + aws_fault_counts(aws_faults)
        if scenario.rotate_token_at is not None:
            faults["token rotated"] += 1
        result = ScenarioResult(
            scenario=scenario,
            objects=len(placed),
            deliveries=len(deliveries),
            repeats=sum(d.repeat for d in deliveries),
            faults=faults,
            verdict=verdict,
            redrive=redrive,
            driver=driver.stats,
            metrics=rig.metrics.counts,
            seconds=time.monotonic() - started,
            phases=phases,
        )
        if not finished:
            result.checks.append(f"not every event ended within {scenario.timeout:.0f} s")
        result.killed = killer.killed if killer is not None else 0
        if scenario.report_rate and not budget_is_free(settings):
            result.checks.append("the request budget was still held after the run")
        add_rate(result, scenario, end.requests, import_seconds, driver.last_first_attempt_at)
        add_common_checks(result, scenario)
        if log_dir is not None:
            rig.write_logs(log_dir / f"{scenario.name}.log")
        return result
    finally:
        rig.stop()


def scenario_actions(rig: Rig, scenario: Scenario, aws_faults: AwsFaults) -> list[Action]:
    actions: list[Action] = []
    if scenario.rotate_token_at is not None:
        actions.append(Action(scenario.rotate_token_at, "rotate the token", rig.rotate_token))
    for at in scenario.storms_at:

        def storm() -> None:
            rig.emulator.add_fault(
                Fault(
                    kind="rate_limit",
                    count=scenario.storm_size,
                    retry_after=scenario.storm_retry_after,
                    match_method="*",
                    match_path="/*",
                )
            )

        actions.append(Action(at, "429 storm", storm))
    if scenario.dlq_outage is not None:
        begin, end = scenario.dlq_outage
        outage = AwsFault.unavailable(
            "sqs", operation="SendMessage", body_contains=rig.stack.queue_url
        )
        actions.append(Action(begin, "dead-letter queue down", lambda: aws_faults.add(outage)))
        actions.append(Action(end, "dead-letter queue back", lambda: aws_faults.remove(outage)))
    return actions


def redrive_dead(
    rig: Rig,
    handler: Handler,
    objects: Sequence[PlacedObject],
    end: EndState,
    timeout: float,
    settle: bool = True,
) -> Redrive | None:
    """What the operator does once the incident is over: `make redrive` (the project's tool
    resubmits every dead letter, reopening FAILED records), then look again. Claims an
    invocation left behind must have expired first (a lease ends with its invocation)."""
    named = {identity for letter in end.dead_letters for identity in letter.identities}
    if not named:
        return None
    rig.requeue(end.dead_letters)
    wait_for_leases(rig)
    summary = rig.redrive(handler, timeout)
    after = rig.collect(settle=settle)
    verdict = check(
        objects,
        after.records,
        after.dead_letters,
        after.medias,
        after.texts,
        rig.tokens,
        rig.aws_secret,
    )
    finals = {o.identity: o.final for o in verdict.outcomes}
    return Redrive(
        messages=len(end.dead_letters),
        objects=len(named),
        imported=sum(1 for i in named if finals.get(i) == "SUBMITTED"),
        still_dead=sum(1 for i in named if finals.get(i) in ("DEAD", "FAILED")),
        verdict=verdict,
        summary=summary,
    )


def wait_for_leases(rig: Rig) -> None:
    """Sleep until every IN_PROGRESS claim's lease has ended (bounded)."""
    leases = [
        float(record["lease_expires_at"])
        for record in all_records(rig.stack.table_name)
        if record.get("status") == "IN_PROGRESS" and record.get("lease_expires_at")
    ]
    if leases:
        time.sleep(min(LEASE_WAIT_LIMIT, max(0.0, max(leases) - time.time() + 0.2)))


def add_rate(
    result: ScenarioResult,
    scenario: Scenario,
    requests: Sequence[dict[str, Any]],
    seconds: float,
    first_deliveries_ended: float = 0.0,
) -> None:
    accepted = sorted(
        float(r["at"])
        for r in requests
        if r.get("method") == "POST" and r.get("path") == "/" and r.get("status") == 200
    )
    if len(accepted) >= 2 and accepted[-1] > accepted[0]:
        result.rate = (len(accepted) - 1) / (accepted[-1] - accepted[0])
        admitted = [
            r
            for r in requests
            if r.get("status") not in (None, 429) and accepted[0] <= float(r["at"]) <= accepted[-1]
        ]
        result.request_rate = (len(admitted) - 1) / (accepted[-1] - accepted[0])
        steady = [at for at in accepted if at <= first_deliveries_ended]
        if len(steady) >= 2 and steady[-1] > steady[0]:
            result.steady_rate = (len(steady) - 1) / (steady[-1] - steady[0])
    elif seconds > 0:
        result.rate = len(accepted) / seconds
    if scenario.rate_limit is not None:
        result.limit_rate = scenario.rate_limit / scenario.rate_window
    result.requests = len(requests)
    result.throttled = sum(1 for r in requests if r.get("status") == 429 and not r.get("fault"))
    share = result.throttled / max(1, result.requests)
    if scenario.max_throttled_share is not None and share > scenario.max_throttled_share:
        result.checks.append(
            f"{result.throttled} of {result.requests} requests ({share:.1%}) answered 429, "
            f"more than {scenario.max_throttled_share:.0%}"
        )


def add_common_checks(result: ScenarioResult, scenario: Scenario) -> None:
    verdict = result.verdict
    claims = verdict.unsettled_records.get("IN_PROGRESS", 0)
    dynamodb_faults = any(f.service == "dynamodb" for f in scenario.aws_faults)
    if claims and scenario.kill_share and _redrive_settled_them(result):
        # Killed three times, Lambda gave up: their claims were left as a dead runtime
        # leaves them, the dead-letter queue kept the events and the redrive imported them.
        result.notes.append(
            f"{claims} object(s) killed on every delivery: left IN_PROGRESS by the dead "
            "invocation, dead-lettered by Lambda, imported by the redrive"
        )
    elif claims and not dynamodb_faults:
        left = [o.identity[1] for o in verdict.outcomes if o.record_status == "IN_PROGRESS"]
        result.findings.append(
            f"{claims} claim(s) left IN_PROGRESS although DynamoDB never failed: the function "
            f"could not finish the record, so every retry was refused as 'another invocation "
            f"is importing this object version': {left[:5]}"
        )
    if scenario.no_rate_limit_dead_letters:
        throttled = sum(
            count
            for reason, count in verdict.dead_letter_reasons.items()
            if "rate limit" in reason.lower() or "429" in reason
        )
        if throttled:
            result.checks.append(f"dead-lettered because of 429s: {throttled}")
    if verdict.dead_but_imported:
        result.notes.append(
            f"{verdict.dead_but_imported} dead-lettered object(s) were imported at Wistia all "
            "the same (their record could not be finished)"
        )
    if verdict.spurious_dead_letters:
        result.notes.append(
            f"{verdict.spurious_dead_letters} on-failure record(s) for objects that were "
            "imported anyway (a repeat delivery kept finding the claim held)"
        )
    if verdict.unsettled_records:
        states = ", ".join(f"{n} {s}" for s, n in sorted(verdict.unsettled_records.items()))
        result.notes.append(f"records left unfinished at the end: {states}")


def budget_is_free(settings: Settings) -> bool:
    """Nothing stuck: once the run is over, a new caller gets a slot within a second."""
    budget = build_rate_budget(settings)
    return budget.take(IMPORTS, deadline=time.time() + 1.0)


def _redrive_settled_them(result: ScenarioResult) -> bool:
    after = result.redrive.verdict if result.redrive is not None else None
    return after is not None and not after.unsettled_records.get("IN_PROGRESS", 0)


def merged(stats: Sequence[DriverStats]) -> DriverStats:
    """The counts of several Lambda stand-ins added up."""
    total = DriverStats()
    for one in stats:
        total.invocations += one.invocations
        total.failed += one.failed
        total.retries += one.retries
        total.on_failure_records += one.on_failure_records
        total.destination_failures += one.destination_failures
        total.overruns += one.overruns
        total.errors.update(one.errors)
        total.abandoned += one.abandoned
    return total
