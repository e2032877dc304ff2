"""The classes of objects and answers that once ended in a false success, a leak or a record
left in progress (issue 10), at volume:

- "unservable": objects S3 will not serve through a presigned URL (archive storage classes
  and tiers, a KMS key the signer may not use, SSE-C, keys with dot segments) and objects
  deleted before their event is handled, beside ordinary ones. Each must be refused (FAILED
  with its reason in the dead-letter queue) or skipped before Wistia is asked: the figure is
  how many media Wistia failed to fetch (0 when every refusal happened first).
- "hostile": Wistia answers that quote the signed URL (raw and percent-encoded), answers
  that trickle in a byte at a time, and a token secret holding a line break for part of the
  run. No credential may reach a log, record or message; no record may stay IN_PROGRESS;
  no invocation may outlive its timeout.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

from local_stack.aws import ACCESS_KEY_ID, LocalAws
from reliability.invariants import check
from reliability.rig import TOKEN, Rig
from reliability.suite import (
    Scenario,
    ScenarioResult,
    add_common_checks,
    follow,
    redrive_dead,
    wistia_fault_counts,
)
from reliability.workload import (
    Expect,
    ObjectPlan,
    PlacedObject,
    at_least_once,
    body_for,
    upload_all,
)
from wistia_emulator import Fault

GRANTED_KEY = "arn:aws:kms:us-east-1:123456789012:key/aaaaaaaa-0000-4000-8000-000000000001"
REFUSED_KEY = "arn:aws:kms:us-east-1:123456789012:key/bbbbbbbb-0000-4000-8000-000000000002"
SSE_C_KEY = b"c" * 32
# (class, share of the objects, what becomes of them, how they are put in the bucket)
UNSERVABLE_CLASSES: list[tuple[str, float, Expect, dict[str, Any]]] = [
    ("GLACIER", 0.06, "fail", {"StorageClass": "GLACIER"}),
    ("DEEP_ARCHIVE", 0.06, "fail", {"StorageClass": "DEEP_ARCHIVE"}),
    ("GLACIER restored", 0.05, "import", {"StorageClass": "GLACIER"}),
    ("Intelligent-Tiering archive", 0.06, "fail", {"StorageClass": "INTELLIGENT_TIERING"}),
    ("Intelligent-Tiering deep archive", 0.05, "fail", {"StorageClass": "INTELLIGENT_TIERING"}),
    (
        "KMS key not granted",
        0.06,
        "fail",
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": REFUSED_KEY},
    ),
    (
        "KMS key granted",
        0.05,
        "import",
        {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": GRANTED_KEY},
    ),
    ("SSE-C", 0.05, "fail", {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": SSE_C_KEY}),
    ("dot segments", 0.05, "fail", {}),
    ("deleted before its event", 0.06, "skip", {}),
]
REASON_WORDS = {
    "GLACIER": "archived (GLACIER)",
    "DEEP_ARCHIVE": "archived (DEEP_ARCHIVE)",
    "Intelligent-Tiering archive": "ARCHIVE_ACCESS",
    "Intelligent-Tiering deep archive": "DEEP_ARCHIVE_ACCESS",
    "KMS key not granted": "kms:Decrypt",
    "SSE-C": "SSE-C",
    "dot segments": "path segments",
    "deleted before its event": "delete marker",
}


def unservable_objects(
    count: int, rng: random.Random
) -> list[tuple[str, ObjectPlan, dict[str, Any]]]:
    """(class, plan, put arguments) for `count` objects, ordinary ones for the rest."""
    planned: list[tuple[str, ObjectPlan, dict[str, Any]]] = []
    for name, share, expect, extra in UNSERVABLE_CLASSES:
        for n in range(max(1, round(count * share))):
            folder = "dots/./" if name == "dot segments" else f"{name.replace(' ', '-')}/"
            key = f"unservable/{folder}{n:04d} {name}.mp4"
            planned.append(
                (name, ObjectPlan(key, body_for(len(planned)), expect, note=name), extra)
            )
    for n in range(max(0, count - len(planned))):
        planned.append(
            ("ordinary", ObjectPlan(f"unservable/ok/{n:04d}.mp4", body_for(n), "import"), {})
        )
    rng.shuffle(planned)
    return planned


def _put(
    aws: LocalAws, bucket: str, name: str, plan: ObjectPlan, extra: dict[str, Any]
) -> PlacedObject:
    from local_stack.events import Uploaded

    s3 = boto3.client("s3")
    answer = s3.put_object(Bucket=bucket, Key=plan.key, Body=plan.body, **extra)
    placed = PlacedObject(
        plan,
        Uploaded(
            bucket, plan.key, answer.get("VersionId"), answer["ETag"].strip('"'), len(plan.body)
        ),
    )
    version = placed.uploaded.version_id
    if name == "GLACIER restored":
        s3.restore_object(
            Bucket=bucket, Key=plan.key, VersionId=version, RestoreRequest={"Days": 1}
        )
    elif name == "Intelligent-Tiering archive":
        aws.archive(bucket, plan.key, tier="ARCHIVE_ACCESS", version_id=version)
    elif name == "Intelligent-Tiering deep archive":
        aws.archive(bucket, plan.key, tier="DEEP_ARCHIVE_ACCESS", version_id=version)
    elif name == "deleted before its event":
        s3.delete_object(Bucket=bucket, Key=plan.key)
    return placed


def run_unservable(aws: LocalAws, scenario: Scenario, log_dir: Path | None) -> ScenarioResult:
    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    rig = Rig.start(aws, processing_delay=0.01)
    aws.allow_kms_decrypt(ACCESS_KEY_ID, GRANTED_KEY)
    try:
        planned = unservable_objects(scenario.objects, rng)
        placed = [_put(aws, rig.stack.bucket, name, plan, extra) for name, plan, extra in planned]
        classes = {p.key: name for p, (name, _, _) in zip(placed, planned, strict=True)}
        deliveries = at_least_once(placed, scenario.duplicate_share, rng)
        settings = rig.settings(read_timeout=scenario.read_timeout)
        instances = rig.instances(scenario.instances, settings)
        driver = rig.lambda_async(instances, scenario.lambda_timeout, scenario.retry_delays)
        driver.start()
        for delivery in deliveries:
            driver.invoke(delivery.event, delivery.label)
        finished = follow(driver, len(deliveries), [], scenario.timeout)
        end = rig.collect()
        verdict = check(
            placed, end.records, end.dead_letters, end.medias, end.texts, rig.tokens, rig.aws_secret
        )
        driver.stop()
        result = ScenarioResult(
            scenario=scenario,
            objects=len(placed),
            deliveries=len(deliveries),
            repeats=sum(d.repeat for d in deliveries),
            faults=Counter(name for name in classes.values() if name != "ordinary"),
            verdict=verdict,
            redrive=None,
            driver=driver.stats,
            metrics=rig.metrics.counts,
            seconds=time.monotonic() - started,
        )
        if not finished:
            result.checks.append(f"not every event ended within {scenario.timeout:.0f} s")
        _check_reasons(result, placed, classes, end.records)
        fetch_failures = [m for m in end.medias if m.get("status") == "failed"]
        result.notes.append(
            f"media Wistia failed to fetch: {len(fetch_failures)} "
            f"(every unservable object refused before Wistia was asked)"
            if not fetch_failures
            else f"media Wistia failed to fetch: {len(fetch_failures)}"
        )
        if fetch_failures:
            result.checks.append(
                f"{len(fetch_failures)} media Wistia could not fetch were submitted"
            )
        add_common_checks(result, scenario)
        if log_dir is not None:
            rig.write_logs(log_dir / "unservable.log")
        return result
    finally:
        rig.stop()


def _check_reasons(
    result: ScenarioResult,
    placed: list[PlacedObject],
    classes: dict[str, str],
    records: list[dict[str, Any]],
) -> None:
    by_key = {str(r.get("object_key")): r for r in records}
    refused: dict[str, int] = {}
    for obj in placed:
        name = classes[obj.key]
        words = REASON_WORDS.get(name)
        if words is None:
            continue
        record = by_key.get(obj.key) or {}
        if words in str(record.get("error", "")):
            refused[name] = refused.get(name, 0) + 1
        else:
            result.checks.append(
                f"{name}: {obj.key} ended {record.get('status')} ({record.get('error')})"
            )
    result.notes.append(
        "refused or skipped before Wistia was asked, with the reason: "
        + ", ".join(f"{name} {n}" for name, n in sorted(refused.items()))
    )


# --- hostile answers and secrets ------------------------------------------------------------

BROKEN_TOKEN = TOKEN + "\nX-Injected: oops"


def hostile_faults(seed: int) -> tuple[Fault, ...]:
    quoting = json.dumps({"error": "Could not fetch {url}: unsupported"})
    quoting_encoded = json.dumps({"error": "Could not fetch {url_quoted}: unsupported"})
    return (
        Fault(
            kind="status",
            status=400,
            body=quoting,
            content_type="application/json",
            probability=0.08,
            seed=seed + 1,
        ),
        Fault(
            kind="status",
            status=400,
            body=quoting_encoded,
            content_type="application/json",
            probability=0.08,
            seed=seed + 2,
        ),
        Fault(kind="trickle", seconds=0.05, probability=0.08, seed=seed + 3),
        Fault(kind="trickle", seconds=0.05, trickle_headers=True, probability=0.04, seed=seed + 4),
    )


def run_hostile(aws: LocalAws, scenario: Scenario, log_dir: Path | None) -> ScenarioResult:
    from reliability.workload import standard_objects

    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    rig = Rig.start(aws, processing_delay=0.01)
    try:
        plans = standard_objects(scenario.objects, rng, "hostile")
        placed = upload_all(rig.stack.bucket, plans)
        deliveries = at_least_once(placed, scenario.duplicate_share, rng)
        # Short calls: a trickled answer (a byte every 0.05 s) outlasts a 1.5 s call budget.
        settings = rig.settings(read_timeout=1.0, connect_timeout=0.5)
        instances = rig.instances(scenario.instances, settings)
        driver = rig.lambda_async(instances, scenario.lambda_timeout, scenario.retry_delays)
        for fault in hostile_faults(scenario.seed * 10):
            rig.emulator.add_fault(fault)
        secrets = boto3.client("secretsmanager")
        driver.start()
        broken_from, broken_until = len(deliveries) // 4, len(deliveries) // 2
        rig.tokens.append(BROKEN_TOKEN)
        for index, delivery in enumerate(deliveries):
            if index == broken_from:
                secrets.put_secret_value(SecretId=rig.stack.secret_id, SecretString=BROKEN_TOKEN)
            if index == broken_until:
                secrets.put_secret_value(SecretId=rig.stack.secret_id, SecretString=TOKEN)
            driver.invoke(delivery.event, delivery.label)
        finished = follow(driver, len(deliveries), [], scenario.timeout)
        rig.emulator.clear_faults()
        end = rig.collect()
        verdict = check(
            placed, end.records, end.dead_letters, end.medias, end.texts, rig.tokens, rig.aws_secret
        )
        redrive = redrive_dead(rig, instances[0][1], placed, end, scenario.lambda_timeout)
        driver.stop()
        result = ScenarioResult(
            scenario=scenario,
            objects=len(placed),
            deliveries=len(deliveries),
            repeats=sum(d.repeat for d in deliveries),
            faults=wistia_fault_counts(end.requests),
            verdict=verdict,
            redrive=redrive,
            driver=driver.stats,
            metrics=rig.metrics.counts,
            seconds=time.monotonic() - started,
        )
        if not finished:
            result.checks.append(f"not every event ended within {scenario.timeout:.0f} s")
        _check_hostile(result, end.records, end.texts, driver, scenario.lambda_timeout)
        add_common_checks(result, scenario)
        if log_dir is not None:
            rig.write_logs(log_dir / "hostile.log")
        return result
    finally:
        rig.stop()


def _check_hostile(
    result: ScenarioResult,
    records: list[dict[str, Any]],
    texts: dict[str, str],
    driver: Any,
    timeout: float,
) -> None:
    in_progress = [r for r in records if r.get("status") == "IN_PROGRESS"]
    if in_progress:
        result.checks.append(f"{len(in_progress)} records left IN_PROGRESS")
    readable = "\n".join(texts.values())
    leaked = [
        part
        for part in ("X-Amz-Signature=", "X-Amz-Credential=", "X-Amz-Signature%3D", "X-Injected")
        if part in readable
    ]
    if leaked:
        result.checks.append(f"credential parts in logs, records or messages: {leaked}")
    longest = max((a.seconds for a in driver.attempts), default=0.0)
    result.notes.append(
        f"longest invocation {longest:.1f} s of a {timeout:g} s timeout; records left "
        f"IN_PROGRESS {len(in_progress)}; credentials quoted back by Wistia scrubbed everywhere"
    )
    if longest > timeout:
        result.checks.append(f"an invocation ran {longest:.1f} s, past its {timeout:g} s timeout")
