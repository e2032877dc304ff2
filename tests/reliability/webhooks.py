"""Following every media to its final status at volume: imports through the Lambda stand-in,
Wistia's signed webhooks (a share duplicated, a share held back behind later ones, a share
never sent) through the Function URL stand-in to the receiver, then the status poller for
what the webhooks never said.

Checked at the end: every record holds the status Wistia holds for its media; no applied
change ever moved a media back (each write of a status is watched: none may lower its
place in a media's life); every media Wistia failed has exactly one dead letter; the poller
never sent more requests in a run than its budget; and the import invariants of
reliability.invariants, the webhook key among the secrets searched for.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from local_stack.aws import LocalAws
from local_stack.function_url import FunctionUrl
from local_stack.harness import CapturedLogger, CountingMetrics, all_records
from local_stack.template import provision
from reliability.invariants import check
from reliability.rig import TOKEN, Rig
from reliability.suite import SETTLE_LIMIT, Scenario, ScenarioResult, follow
from reliability.workload import ObjectPlan, at_least_once, standard_objects, upload_all
from s3_to_wistia.contracts import MEDIA_FAILED_REASON, MediaStatusChange, StatusWrite
from s3_to_wistia.media_events import STATUS_RANK
from s3_to_wistia.model import RecordKey
from s3_to_wistia.polling import PollerSettings
from s3_to_wistia.ports import MediaRecords
from s3_to_wistia.webhooks import WebhookSettings
from s3_to_wistia.wiring import build_status_poller, build_webhook_receiver
from wistia_emulator import WebhookDelivery, WistiaEmulator

WEBHOOK_KEY = "reliability-webhook-key-0001"
NOT_MEDIA = b"<html><body>Access denied: a page, not a video.</body></html>\n"
# Webhooks still on their way after this long are left to arrive while the poller runs
# (they must not undo what it wrote); all must have arrived by the final check.
WEBHOOK_HEAD_START_SECONDS = 120.0
WEBHOOK_SETTLE_SECONDS = 900.0
MAX_POLLER_RUNS = 10


@dataclass
class Watched:
    """A MediaRecords that keeps every status write applied, to look for regressions."""

    records: MediaRecords
    applied: list[tuple[str, str | None, str]] = field(default_factory=list)

    def apply_media_status(
        self, key: RecordKey, hashed_id: str, change: MediaStatusChange
    ) -> StatusWrite:
        write = self.records.apply_media_status(key, hashed_id, change)
        if write.applied and write.before is not None:
            self.applied.append((hashed_id, write.before.media_status, change.status))
        return write

    def __getattr__(self, name: str) -> Any:
        return getattr(self.records, name)


def regressions(applied: list[tuple[str, str | None, str]]) -> list[str]:
    """Applied changes that moved a media back in its life (ready -> processing, ...)."""
    return [
        f"{hashed_id}: {before} -> {after}"
        for hashed_id, before, after in applied
        if before is not None and STATUS_RANK[after] < STATUS_RANK[before]
    ]


def plans_for(scenario: Scenario, rng: random.Random) -> list[ObjectPlan]:
    """Media objects, a share of them a page named like a video: Wistia accepts the import
    and then fails it."""
    plans = standard_objects(scenario.objects, rng, scenario.name)
    broken = set(rng.sample(range(len(plans)), round(len(plans) * scenario.failing_share)))
    return [
        replace(plan, body=NOT_MEDIA + plan.body, note="not media: Wistia fails it")
        if index in broken
        else plan
        for index, plan in enumerate(plans)
    ]


def run_webhooks(aws: LocalAws, scenario: Scenario, log_dir: Path | None = None) -> ScenarioResult:
    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    stack = provision(token=TOKEN, secrets={"WistiaWebhookSecret": WEBHOOK_KEY})
    log = CapturedLogger.create()
    metrics = CountingMetrics()
    receiver = build_webhook_receiver(
        WebhookSettings.from_env(stack.environments["WebhookFunction"]), log.logger, metrics
    )
    watched = Watched(receiver.updater.records)
    receiver.updater.records = watched
    url = FunctionUrl(lambda event, context: receiver.handle(event)).start()
    delivery = WebhookDelivery(
        duplicate_share=scenario.webhook_duplicate_share,
        reorder_share=scenario.webhook_reorder_share,
        drop_share=scenario.webhook_drop_share,
        seed=scenario.seed,
    )
    emulator = WistiaEmulator(
        tokens=(TOKEN,),
        rate_limit=scenario.rate_limit,
        rate_window=scenario.rate_window,
        processing_delay=scenario.processing_delay,
        webhook_url=url.url,
        webhook_secret=WEBHOOK_KEY,
        webhook_delivery=delivery,
    ).start()
    rig = Rig(aws, emulator, stack, tokens=[TOKEN, WEBHOOK_KEY], metrics=metrics)
    rig.logs.append(log)
    try:
        return _run(rig, scenario, rng, watched, url, log, started, log_dir)
    finally:
        rig.stop()
        url.stop()


def _run(
    rig: Rig,
    scenario: Scenario,
    rng: random.Random,
    watched: Watched,
    url: FunctionUrl,
    log: CapturedLogger,
    started: float,
    log_dir: Path | None,
) -> ScenarioResult:
    phases: dict[str, float] = {}
    clock = time.monotonic()
    placed = upload_all(rig.stack.bucket, plans_for(scenario, rng))
    phases["upload"] = time.monotonic() - clock
    deliveries = at_least_once(placed, scenario.duplicate_share, rng)
    instances = rig.instances(scenario.instances, rig.settings())
    driver = rig.lambda_async(instances, scenario.lambda_timeout, scenario.retry_delays)
    driver.start()
    clock = time.monotonic()
    for item in deliveries:
        driver.invoke(item.event, item.label, item.delay)
    finished = follow(driver, len(deliveries), [], scenario.timeout)
    phases["imports"] = time.monotonic() - clock
    clock = time.monotonic()
    settled = rig.emulator.wait_until_settled(timeout=SETTLE_LIMIT * 5)
    early = rig.emulator.wait_until_webhooks_delivered(timeout=WEBHOOK_HEAD_START_SECONDS)
    phases["processing and webhooks"] = time.monotonic() - clock
    waiting = _waiting(rig)
    in_flight = int(rig.emulator.webhooks()["pending"]) if not early else 0

    clock = time.monotonic()
    polls, poll_requests = _poll_until_done(rig, scenario, watched, log)
    phases["poller"] = time.monotonic() - clock
    clock = time.monotonic()
    delivered = rig.emulator.wait_until_webhooks_delivered(timeout=WEBHOOK_SETTLE_SECONDS)
    phases["late webhooks"] = time.monotonic() - clock

    end = rig.collect(settle=False)
    verdict = check(
        placed, end.records, end.dead_letters, end.medias, end.texts, rig.tokens, rig.aws_secret
    )
    webhooks = rig.emulator.webhooks()
    faults: Counter[str] = Counter(
        {
            "webhook events duplicated": len(webhooks["duplicated"]),
            "webhook events reordered": len(webhooks["reordered"]),
            "webhook events never sent": len(webhooks["dropped"]),
        }
    )
    result = ScenarioResult(
        scenario=scenario,
        objects=len(placed),
        deliveries=len(deliveries),
        repeats=sum(d.repeat for d in deliveries),
        faults=+faults,
        verdict=verdict,
        redrive=None,
        driver=driver.stats,
        metrics=rig.metrics.counts,
        seconds=time.monotonic() - started,
        phases=phases,
    )
    if not finished:
        result.checks.append(f"not every import ended within {scenario.timeout:.0f} s")
    if not (settled and delivered):
        result.checks.append("Wistia did not finish processing or sending its webhooks in time")
    _check_statuses(result, end.records, end.medias, end.dead_letters, watched)
    _check_poller(result, scenario, polls, poll_requests, end.requests)
    answered = Counter(invocation.status for invocation in url.invocations)
    shown = ", ".join(f"{n}x {status}" for status, n in sorted(answered.items()))
    result.notes.append(
        f"receiver: {len(url.invocations)} POSTs ({shown}); when the poller started, "
        f"{len(waiting)} records had no final status yet and {in_flight} webhook events were "
        "still on their way"
    )
    if log_dir is not None:
        rig.write_logs(log_dir / f"{scenario.name}.log")
    return result


def _waiting(rig: Rig) -> list[dict[str, Any]]:
    return [
        record
        for record in all_records(rig.stack.table_name)
        if record.get("wistia_hashed_id") and "media_watch" in record
    ]


def _poll_until_done(
    rig: Rig, scenario: Scenario, watched: Watched, log: CapturedLogger
) -> tuple[list[dict[str, Any]], int]:
    """The poller's scheduled runs, until a run finds nothing waiting (bounded)."""
    environment = {
        **rig.stack.environments["PollerFunction"],
        "WISTIA_API_URL": rig.emulator.url,
        "STATUS_POLL_AFTER_SECONDS": "0",
        "STATUS_POLL_MAX_REQUESTS": str(scenario.poll_max_requests),
    }
    function = build_status_poller(PollerSettings.from_env(environment), log.logger, rig.metrics)
    poll_watch = Watched(function.poller.records)
    function.poller.records = poll_watch
    function.poller.updater.records = poll_watch
    reports = []
    for _ in range(MAX_POLLER_RUNS):
        report = function.poller.run(time.time() + 60, function.budget()).as_dict()
        reports.append(report)
        if report["pending"] == 0:
            break
    watched.applied += poll_watch.applied
    return reports, sum(int(str(r["requests"])) for r in reports)


def _check_statuses(
    result: ScenarioResult,
    records: list[dict[str, Any]],
    medias: list[dict[str, Any]],
    letters: list[Any],
    watched: Watched,
) -> None:
    at_wistia = {str(m["hashed_id"]): str(m["status"]) for m in medias}
    wrong = []
    for record in records:
        if not record.get("wistia_hashed_id"):
            continue
        wistia = at_wistia.get(str(record["wistia_hashed_id"]))
        if record.get("media_status") != wistia:
            wrong.append(f"{record['object_key']}: {record.get('media_status')}, Wistia: {wistia}")
    result.checks += [f"status differs: {text}" for text in wrong[:20]]
    result.checks += [f"regressed: {text}" for text in regressions(watched.applied)[:20]]
    failed_media = sum(1 for status in at_wistia.values() if status == "failed")
    media_letters = Counter(
        letter.identities
        for letter in letters
        if letter.kind == "function" and letter.body.get("reason") == MEDIA_FAILED_REASON
    )
    if sum(media_letters.values()) != failed_media or any(n > 1 for n in media_letters.values()):
        result.checks.append(
            f"{failed_media} media failed at Wistia, {sum(media_letters.values())} dead letters "
            f"for {len(media_letters)} objects"
        )
    final = Counter(str(r.get("media_status")) for r in records if r.get("wistia_hashed_id"))
    letters_sent = sum(media_letters.values())
    result.notes.append(
        "records' final status: "
        + ", ".join(f"{status} {n}" for status, n in sorted(final.items()))
        + f"; {len(watched.applied)} status changes applied, {len(regressions(watched.applied))} "
        f"moved a media back; {failed_media} failed media, {letters_sent} dead letters"
    )


def _check_poller(
    result: ScenarioResult,
    scenario: Scenario,
    reports: list[dict[str, Any]],
    requests: int,
    seen: list[dict[str, Any]],
) -> None:
    lookups = sum(1 for r in seen if r.get("path") == "/v1/medias.json")
    over = [r for r in reports if int(r["requests"]) > scenario.poll_max_requests]
    if over:
        result.checks.append(
            f"the poller went over its budget of {scenario.poll_max_requests}: {over}"
        )
    if lookups != requests:
        result.checks.append(f"the poller reported {requests} requests, Wistia saw {lookups}")
    if reports and reports[-1]["pending"]:
        result.checks.append(f"still waiting after {len(reports)} poller runs: {reports[-1]}")
    result.notes.append(
        f"poller: {len(reports)} runs, requests per run {[r['requests'] for r in reports]} "
        f"(budget {scenario.poll_max_requests}), media asked {[r['asked'] for r in reports]}, "
        f"statuses applied {[r['applied'] for r in reports]}"
    )
