"""Bad input: odd keys and objects, malformed and foreign events, and answers from Wistia that
are not what a client expects. Each must end with a clear reason, lose nothing and import
nothing twice."""

from __future__ import annotations

import copy
import json
import random
import time
import unicodedata
from pathlib import Path
from typing import Any

import boto3

from local_stack.aws import LocalAws
from local_stack.events import Uploaded, eventbridge_event, s3_notification, s3_record, sqs_batch
from local_stack.harness import LambdaContext
from reliability.driver import LambdaAsync
from reliability.invariants import DeadLetter, check
from reliability.rig import Rig
from reliability.suite import (
    Scenario,
    ScenarioResult,
    add_common_checks,
    follow,
    redrive_dead,
    wistia_fault_counts,
)
from reliability.workload import (
    MISSING_PROJECT,
    Delivery,
    ObjectPlan,
    PlacedObject,
    at_least_once,
    body_for,
    upload_all,
)
from wistia_emulator import Fault

ASCII_PUNCTUATION = " !\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}~"
MEGABYTE = 1024 * 1024


def key_of_bytes(prefix: str, unit: str, total: int, suffix: str = ".mp4") -> str:
    """A key of exactly `total` UTF-8 bytes: prefix, `unit` repeated, suffix."""
    room = total - len(prefix.encode()) - len(suffix.encode())
    body = unit * (room // len(unit.encode()))
    body += "x" * (room - len(body.encode()))
    key = prefix + body + suffix
    assert len(key.encode()) == total, len(key.encode())
    return key


def odd_objects() -> list[ObjectPlan]:
    """Keys that need care everywhere, and objects the function must skip or refuse."""
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    to_import = [
        f"odd/every ascii{ASCII_PUNCTUATION}.mp4",
        "odd/percent %20 %2B %25 %zz literal.mp4",
        "odd/plus+plus++.mp4",
        "odd/  leading and trailing spaces  .mp4",
        "odd/tab\there.mp4",
        "odd/control \x01\x1f\x7f chars.mp4",
        f"odd/{nfc} composed.mp4",
        f"odd/{nfd} decomposed.mp4",
        "odd/emoji 🎬🎥 clip.mp4",
        "odd/rtl \u202eevil\u202c and zero\u200bwidth.mp4",
        # full-width letters and an ideographic space
        "odd/\uff46\uff55\uff4c\uff4c\u3000\uff57\uff49\uff44\uff54\uff48.mp4",
        "odd/日本語のビデオ 한국어 عربي.mov",
        "odd/\ufeffbyte order mark.mp4",
        "odd/UPPER CASE.MOV",
        "odd/" + "n" * 300 + ".mp4",  # a file name over Wistia's 255 characters
        key_of_bytes("long/", "a", 1024),
        key_of_bytes("long/", "é", 1024),
        key_of_bytes("long/", "+ %", 1024),
        key_of_bytes("long/", "日", 1024, ".mov"),
        "//double//slashes.mp4",
        "/leading slash.mp4",
    ]
    plans = [ObjectPlan(key, body_for(n), "import") for n, key in enumerate(to_import)]
    plans += [
        ObjectPlan("folder/", b"", "skip", note="folder marker"),
        ObjectPlan("folder with bytes/", b"not empty", "skip", note="folder marker with bytes"),
        ObjectPlan("empty/zero.mp4", b"", "skip", note="zero-byte"),
        ObjectPlan("docs/readme.txt", b"text", "skip", note="filtered extension"),
        ObjectPlan("docs/no extension", b"bytes", "skip", note="no extension"),
        ObjectPlan("docs/archive.mp4.zip", b"zip", "skip", note="filtered extension"),
        ObjectPlan("docs/trailing space.mp4 ", b"bytes", "skip", note="extension 'mp4 '"),
        ObjectPlan("..", b"dots", "skip", note="no extension"),
        # A fetcher resolves . and .. in a URL's path and asks S3 for another key: refused,
        # with the reason, before Wistia is asked.
        ObjectPlan("dots/./dot segment.mp4", body_for(97), "fail", note="dot segment"),
        ObjectPlan("dots/sub/../dot-dot segment.mp4", body_for(98), "fail", note="dot segments"),
        ObjectPlan(
            "refused/bad project.mp4",
            body_for(99),
            "fail",
            metadata={"wistia-project-id": MISSING_PROJECT},
            note="Wistia 400",
        ),
    ]
    return plans


def bad_events(bucket: str, sample: Uploaded) -> list[tuple[str, Any, bool]]:
    """(label, event, must fail): events the function must refuse loudly or ignore."""
    record = s3_record(sample)
    no_object = copy.deepcopy(record)
    del no_object["s3"]["object"]
    empty_key = copy.deepcopy(record)
    empty_key["s3"]["object"]["key"] = ""
    number_key = copy.deepcopy(record)
    number_key["s3"]["object"]["key"] = 123
    big_size = copy.deepcopy(record)
    big_size["s3"]["object"]["size"] = "big"
    truncated = {"eventSource": "aws:s3", "eventName": "ObjectCrea"}
    removed = copy.deepcopy(record)
    removed["eventName"] = "ObjectRemoved:Delete"
    deleted_eb = eventbridge_event(sample)
    deleted_eb["detail-type"] = "Object Deleted"
    return [
        ("empty object", {}, True),
        ("a list", ["Records"], True),
        ("a string", "s3:ObjectCreated:Put", True),
        ("null", None, True),
        ("no records", {"Records": []}, True),
        ("SNS message", {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "{}"}}]}, True),
        ("DynamoDB stream", {"Records": [{"eventSource": "aws:dynamodb", "dynamodb": {}}]}, True),
        ("EventBridge from EC2", {"source": "aws.ec2", "detail-type": "x", "detail": {}}, True),
        ("S3 record without object", {"Records": [no_object]}, True),
        ("S3 record with an empty key", {"Records": [empty_key]}, True),
        ("S3 record with a numeric key", {"Records": [number_key]}, True),
        ("S3 record with size 'big'", {"Records": [big_size]}, True),
        ("S3 record cut short", {"Records": [truncated]}, True),
        ("ObjectRemoved", {"Records": [removed]}, False),
        ("EventBridge Object Deleted", deleted_eb, False),
    ]


def wistia_bad_answers(known_gaps: bool) -> list[Fault]:
    """Answers a client must survive: not JSON, far too large, a 200 without a media, and
    (known_gaps) a 400 whose error message is 600 kB."""
    huge_json = '{"hashed_id": "' + "h" * (3 * MEGABYTE) + '"}'
    faults = [
        Fault(
            kind="status",
            status=200,
            count=2,
            body="<html><body>OK</body></html>",
            content_type="text/html",
        ),
        Fault(kind="status", status=200, count=1, body=huge_json, content_type="application/json"),
        Fault(
            kind="status",
            status=200,
            count=1,
            body='{"id": 1, "name": "no hashed id"}',
            content_type="application/json",
        ),
        Fault(
            kind="status",
            status=502,
            count=1,
            body="<html>" + "x" * (2 * MEGABYTE),
            content_type="text/html",
        ),
    ]
    if known_gaps:
        faults.append(
            Fault(
                kind="status",
                status=400,
                count=1,
                body=json.dumps({"error": "y" * 600_000}),
                content_type="application/json",
            )
        )
    return faults


def run_bad_input(aws: LocalAws, scenario: Scenario, log_dir: Path | None) -> ScenarioResult:
    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    rig = Rig.start(aws, processing_delay=0.01)
    s3 = boto3.client("s3")
    try:
        bucket = rig.stack.bucket
        placed = upload_all(bucket, odd_objects())
        by_key = {p.key: p for p in placed}
        # An object deleted before its event is handled, and one that never existed.
        gone = upload_all(bucket, [ObjectPlan("gone/deleted.mp4", body_for(1), "skip")])[0]
        s3.delete_object(Bucket=bucket, Key=gone.key, VersionId=gone.uploaded.version_id)
        never = PlacedObject(
            ObjectPlan("gone/never uploaded.mp4", b"", "skip"),
            Uploaded(
                bucket,
                "gone/never uploaded.mp4",
                "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
                "0" * 32,
                2048,
            ),
        )
        # An object whose event does not say its size (HEAD finds it empty).
        sizeless = upload_all(bucket, [ObjectPlan("empty/sizeless.mp4", b"", "skip")])[0]
        # Objects that only arrive in unusual envelopes.
        via_eventbridge = upload_all(
            bucket, [ObjectPlan("eb/bridge é+.mp4", body_for(7), "import")]
        )[0]
        via_sqs = upload_all(bucket, [ObjectPlan("sqs/queued é+.mp4", body_for(8), "import")])[0]
        beside_broken = upload_all(
            bucket, [ObjectPlan("broken/beside a broken record.mp4", body_for(9), "import")]
        )[0]
        objects = [*placed, gone, never, sizeless, via_eventbridge, via_sqs, beside_broken]

        deliveries = at_least_once([*placed, gone, never], scenario.duplicate_share, rng)
        sizeless_event = s3_notification(sizeless.uploaded)
        del sizeless_event["Records"][0]["s3"]["object"]["size"]
        deliveries.append(Delivery(sizeless_event, sizeless.key))
        deliveries.append(Delivery(eventbridge_event(via_eventbridge.uploaded), "eventbridge"))
        broken = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}
        mixed = {"Records": [s3_record(beside_broken.uploaded), broken]}
        deliveries.append(Delivery(mixed, "valid record beside a broken one"))
        events = bad_events(bucket, by_key["odd/UPPER CASE.MOV"].uploaded)
        deliveries += [Delivery(event, label) for label, event, _ in events]
        rng.shuffle(deliveries)

        settings = rig.settings(read_timeout=scenario.read_timeout, max_attempts=5)
        instances = rig.instances(scenario.instances, settings)
        driver = rig.lambda_async(instances, scenario.lambda_timeout, scenario.retry_delays)
        for fault in wistia_bad_answers(scenario.known_gaps):
            rig.emulator.add_fault(fault)
        driver.start()
        for delivery in deliveries:
            driver.invoke(delivery.event, delivery.label)
        finished = follow(driver, len(deliveries), [], scenario.timeout)

        # An SQS batch, handled by one instance: its answer names the messages to redeliver.
        batch = sqs_batch(
            "this is not JSON",
            '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCrea',
            json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
            json.dumps(s3_notification(via_sqs.uploaded)),
        )
        sqs_answer = instances[0][1](batch, LambdaContext(timeout_seconds=scenario.lambda_timeout))
        rig.emulator.clear_faults()

        end = rig.collect()
        verdict = check(
            objects,
            end.records,
            end.dead_letters,
            end.medias,
            end.texts,
            rig.tokens,
            rig.aws_secret,
        )
        redrive = redrive_dead(rig, instances[0][1], objects, end, scenario.lambda_timeout)
        driver.stop()
        result = ScenarioResult(
            scenario=scenario,
            objects=len(objects),
            deliveries=len(deliveries) + len(batch["Records"]),
            repeats=sum(d.repeat for d in deliveries),
            faults=wistia_fault_counts(end.requests),
            verdict=verdict,
            redrive=redrive,
            driver=driver.stats,
            metrics=rig.metrics.counts,
            seconds=time.monotonic() - started,
        )
        result.faults["malformed or foreign events"] = len(events) + 1
        result.faults["bad SQS bodies"] = 3
        if not finished:
            result.checks.append(f"not every event ended within {scenario.timeout:.0f} s")
        check_bad_events(result, events, end.dead_letters, driver)
        check_sqs_answer(result, sqs_answer, end.dead_letters)
        note_fetches(result, end.medias)
        add_common_checks(result, scenario)
        if log_dir is not None:
            rig.write_logs(log_dir / "bad-input.log")
        return result
    finally:
        rig.stop()


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def check_bad_events(
    result: ScenarioResult,
    events: list[tuple[str, Any, bool]],
    letters: list[DeadLetter],
    driver: LambdaAsync,
) -> None:
    """Each malformed event fails every attempt and ends in the queue with its reason; each
    foreign-but-valid one is ignored (the invocation succeeds, nothing is imported)."""
    on_failure = [x for x in letters if x.kind == "lambda"]
    failed_labels = {a.label for a in driver.attempts if a.error_type}
    clear = 0
    for label, event, must_fail in events:
        mine = [x for x in on_failure if _same(x.body.get("requestPayload"), event)]
        if not must_fail:
            if label in failed_labels or mine:
                result.checks.append(f"bad input: {label!r} should be ignored, but it failed")
            continue
        if len(mine) != 1:
            result.checks.append(f"bad input: {label!r}: {len(mine)} on-failure records, not 1")
            continue
        response = mine[0].body.get("responsePayload") or {}
        if response.get("errorType") == "UnsupportedEvent" and response.get("errorMessage"):
            clear += 1
        else:
            result.checks.append(f"bad input: {label!r} failed with {response.get('errorType')}")
    refused = sum(1 for _, _, must_fail in events if must_fail)
    result.notes.append(
        f"{clear} of {refused} malformed or foreign events refused with UnsupportedEvent and "
        f"kept in the dead-letter queue by Lambda; {len(events) - refused} ignored"
    )


def check_sqs_answer(result: ScenarioResult, answer: Any, letters: list[DeadLetter]) -> None:
    if answer != {"batchItemFailures": []}:
        result.checks.append(f"bad input: the SQS batch asked for redelivery: {answer}")
    unreadable = [x for x in letters if x.kind == "function" and x.body.get("bucket") is None]
    if len(unreadable) != 2:
        result.checks.append(
            f"bad input: {len(unreadable)} unreadable SQS messages dead-lettered, not 2"
        )
    else:
        result.notes.append(
            "the SQS batch: 2 unreadable bodies dead-lettered with their reason, "
            "the test event ignored, the S3 event imported, nothing redelivered"
        )


def note_fetches(result: ScenarioResult, medias: list[dict[str, Any]]) -> None:
    """Medias Wistia could not fetch: the import was submitted, but the URL did not work."""
    failed = [m for m in medias if m.get("status") == "failed"]
    for media in failed:
        result.notes.append(
            f"Wistia could not fetch {media.get('name')!r}: {str(media.get('error'))[:80]}"
        )
