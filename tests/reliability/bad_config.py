"""Bad configuration: a deployment that cannot start, and a token secret left empty.

1. Cold start fails (a required variable missing; an http URL to a host that is not
   loopback): every invocation fails with a ConfigError naming the variable, so Lambda keeps
   each event and, after its retries, sends it to the dead-letter queue.
2. The same checks on a table of bad environments, without the pipeline.
3. The configuration is fixed (new instances) and the operator runs `make redrive` (the
   project's tool): every object is imported, once.
4. The token secret is empty: each object fails for good with a reason naming the secret.
5. The secret is fixed and the operator runs `make redrive` at once, while the instances that
   cached the empty secret are still warm: how many are imported is reported.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import boto3

from local_stack.aws import LocalAws
from reliability.invariants import DeadLetter, check
from reliability.rig import TOKEN, Rig
from reliability.suite import (
    Redrive,
    Scenario,
    ScenarioResult,
    add_common_checks,
    follow,
    merged,
)
from reliability.workload import PlacedObject, at_least_once, standard_objects, upload_all
from s3_to_wistia.config import ConfigError, Settings

BAD_ENVIRONMENTS: list[tuple[str, dict[str, str | None]]] = [
    ("WISTIA_TOKEN_SECRET", {"WISTIA_TOKEN_SECRET": None}),
    ("IMPORTS_TABLE_NAME", {"IMPORTS_TABLE_NAME": "  "}),
    ("DEAD_LETTER_QUEUE_URL", {"DEAD_LETTER_QUEUE_URL": None}),
    ("WISTIA_UPLOAD_URL", {"WISTIA_UPLOAD_URL": "http://upload.wistia.com/"}),
    ("WISTIA_API_URL", {"WISTIA_API_URL": "http://api.wistia.example/"}),
    ("WISTIA_UPLOAD_URL", {"WISTIA_UPLOAD_URL": "ftp://127.0.0.1/"}),
    ("PRESIGNED_URL_EXPIRES", {"PRESIGNED_URL_EXPIRES": "0"}),
    ("PRESIGNED_URL_EXPIRES", {"PRESIGNED_URL_EXPIRES": "a week"}),
    ("WISTIA_READ_TIMEOUT", {"WISTIA_READ_TIMEOUT": "-1"}),
    ("WISTIA_MAX_ATTEMPTS", {"WISTIA_MAX_ATTEMPTS": "100"}),
    ("WISTIA_CONTACT_ID", {"WISTIA_CONTACT_ID": "owner"}),
    ("IMPORT_EXTENSIONS", {"IMPORT_EXTENSIONS": "mp4,,mov"}),
    ("WISTIA_LOOKUP_BEFORE_RESUBMIT", {"WISTIA_LOOKUP_BEFORE_RESUBMIT": "maybe"}),
]


def altered(base: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    environment = dict(base)
    for name, value in changes.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def run_bad_config(aws: LocalAws, scenario: Scenario, log_dir: Path | None) -> ScenarioResult:
    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    rig = Rig.start(aws, processing_delay=0.01)
    try:
        per_phase = max(3, scenario.objects // 3)
        plans = standard_objects(per_phase * 3, rng, "config")
        placed = upload_all(rig.stack.bucket, plans)
        broken_start, broken_url, empty_secret = (
            placed[:per_phase],
            placed[per_phase : 2 * per_phase],
            placed[2 * per_phase :],
        )
        good = rig.stack.environment_for(rig.emulator.url)
        letters: list[DeadLetter] = []
        result_notes: list[str] = []
        checks: list[str] = []

        # 1. Cold starts that fail, each with its own broken deployment.
        cases = [
            ("IMPORTS_TABLE_NAME", altered(good, {"IMPORTS_TABLE_NAME": None}), broken_start),
            (
                "WISTIA_UPLOAD_URL",
                altered(good, {"WISTIA_UPLOAD_URL": "http://upload.wistia.example/"}),
                broken_url,
            ),
        ]
        config_letters = 0
        for variable, environment, objects in cases:
            driver = rig.lambda_async(
                rig.failing_instances(scenario.instances, environment),
                scenario.lambda_timeout,
                scenario.retry_delays,
            ).start()
            deliveries = at_least_once(objects, 0.0, rng)
            for delivery in deliveries:
                driver.invoke(delivery.event, delivery.label)
            follow(driver, len(deliveries), [], scenario.timeout)
            driver.stop()
            drained = rig.collect().dead_letters
            letters += drained
            named = [
                x
                for x in drained
                if x.kind == "lambda"
                and x.reason.startswith("ConfigError")
                and variable in x.reason
            ]
            config_letters += len(named)
            if len(named) != len(objects):
                checks.append(
                    f"bad configuration: {len(named)} of {len(objects)} events dead-lettered "
                    f"with a ConfigError naming {variable}"
                )

        # 2. The same validation over a table of bad environments.
        clear = 0
        for variable, changes in BAD_ENVIRONMENTS:
            try:
                Settings.from_env(altered(good, changes))
            except ConfigError as error:
                if variable in str(error):
                    clear += 1
                else:
                    checks.append(f"bad configuration: {changes} -> {error} (names no {variable})")
            else:
                checks.append(f"bad configuration: {changes} was accepted")
        result_notes.append(
            f"cold start refused with a ConfigError naming the variable: {clear} of "
            f"{len(BAD_ENVIRONMENTS)} bad environments; {config_letters} events from 2 broken "
            "deployments dead-lettered by Lambda with that error"
        )

        # 3. Fixed and redeployed (new instances); the operator runs `make redrive`.
        fixed = rig.instances(scenario.instances, rig.settings())
        rig.requeue(letters)
        summary = rig.redrive(fixed[0][1], scenario.lambda_timeout)

        # 4. The token secret is empty (instances that start now cache it).
        secrets = boto3.client("secretsmanager")
        secrets.put_secret_value(SecretId=rig.stack.secret_id, SecretString=" ")
        warm = rig.instances(2, rig.settings())
        fresh = rig.lambda_async(warm, scenario.lambda_timeout, scenario.retry_delays).start()
        deliveries = at_least_once(empty_secret, 0.0, rng)
        for delivery in deliveries:
            fresh.invoke(delivery.event, delivery.label)
        follow(fresh, len(deliveries), [], scenario.timeout)
        fresh.stop()
        secret_letters = rig.collect().dead_letters
        named = [
            x
            for x in secret_letters
            if x.kind == "function" and "is empty" in str(x.body.get("reason"))
        ]
        if len(named) != len(empty_secret):
            checks.append(
                f"empty secret: {len(named)} of {len(empty_secret)} objects dead-lettered "
                "with a reason naming the secret"
            )

        # 5. The secret is fixed and the operator runs `make redrive` at once: the function's
        # instances are warm, within the token cache's 5 minutes.
        secrets.put_secret_value(SecretId=rig.stack.secret_id, SecretString=TOKEN)
        rig.requeue(secret_letters)
        summary += rig.redrive(warm[0][1], scenario.lambda_timeout)

        end = rig.collect()
        everything: list[PlacedObject] = [*broken_start, *broken_url, *empty_secret]
        verdict = check(
            everything,
            end.records,
            end.dead_letters,
            end.medias,
            end.texts,
            rig.tokens,
            rig.aws_secret,
        )
        finals = {o.identity: o.final for o in verdict.outcomes}
        config_ids = {p.identity for p in [*broken_start, *broken_url]}
        secret_ids = {p.identity for p in empty_secret}
        imported_config = sum(1 for i in config_ids if finals.get(i) == "SUBMITTED")
        imported_secret = sum(1 for i in secret_ids if finals.get(i) == "SUBMITTED")
        if imported_config != len(config_ids):
            checks.append(
                f"after the fix, {imported_config} of {len(config_ids)} redriven events imported"
            )
        findings = []
        if imported_secret != len(secret_ids):
            findings.append(
                f"redriven right after the secret was fixed: {imported_secret} of "
                f"{len(secret_ids)} imported; the others failed again with the cached empty "
                "secret (an unusable secret is not read again before the object fails for "
                "good, unlike a 401)"
            )
        result = ScenarioResult(
            scenario=scenario,
            objects=len(everything),
            deliveries=len(everything),
            repeats=0,
            faults=Counter({"broken deployment": 2, "empty secret": 1}),
            verdict=verdict,
            redrive=Redrive(
                messages=config_letters + len(secret_letters),
                objects=len(config_ids) + len(secret_ids),
                imported=imported_config + imported_secret,
                still_dead=len(everything) - imported_config - imported_secret,
                verdict=verdict,
                summary=summary,
            ),
            driver=merged([d.stats for d in rig.drivers]),
            metrics=rig.metrics.counts,
            seconds=time.monotonic() - started,
        )
        result.notes += result_notes
        result.checks += checks
        result.findings += findings
        add_common_checks(result, scenario)
        if log_dir is not None:
            rig.write_logs(log_dir / "bad-configuration.log")
        return result
    finally:
        rig.stop()
