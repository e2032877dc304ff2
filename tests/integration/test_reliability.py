"""The reliability suite, fast: each family of faults once, 60 objects a scenario, through the
same driver, fault injectors and invariant checks as `make reliability` (tests/reliability).

Every assertion is on counts: objects lost, media duplicated, dead letters and their reasons,
secrets found; none is on timing. The bugs the suite found (all fixed) keep their own tests
at the end.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.aws_faults import AwsFault, AwsFaults
from local_stack.events import Uploaded, s3_notification, upload
from local_stack.harness import CapturedLogger, LambdaContext, drain, record_of
from local_stack.template import Stack
from reliability import scenarios
from reliability.invariants import check
from reliability.rig import quiet_servers
from reliability.suite import Scenario, ScenarioResult, run_scenario
from reliability.workload import ObjectPlan, PlacedObject
from s3_to_wistia import redrive
from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import WistiaAnswer
from s3_to_wistia.ports import WistiaApi
from wistia_emulator import Fault, WistiaEmulator

QUICK = {scenario.name: scenario for scenario in scenarios.quick(objects=60)}
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8


def expect_duplicates_and_wistia_faults(result: ScenarioResult) -> None:
    assert result.repeats == 18  # 30% of 60 delivered twice
    assert result.metrics["DuplicateDeliveries"] >= 18
    assert result.faults["503"] > 0
    assert result.faults["dropped"] > 0
    assert result.faults["lost answer"] > 0
    assert result.metrics["LostAnswersRecovered"] > 0
    assert result.verdict.finals == Counter({"SUBMITTED": 54, "FAILED": 6})
    assert result.verdict.dead_letter_reasons == Counter(
        {"Project not found: nosuchproj1 (400)": 6}
    )


def expect_throttling_and_rotation(result: ScenarioResult) -> None:
    assert result.faults["429 storm"] == 8
    assert result.faults["token rotated"] == 1
    assert result.verdict.finals == Counter({"SUBMITTED": 60})
    assert result.metrics["WistiaRetries"] >= 8


def expect_aws_failures(result: ScenarioResult) -> None:
    assert result.faults["ddb 500"] > 0
    assert result.faults["ddb throttled"] > 0
    assert result.faults["sqs 503"] > 0
    # 20% of the objects fail for good: each reaches the dead-letter queue, outage or not.
    assert result.verdict.finals["SUBMITTED"] == 48
    assert result.verdict.dead_lettered == 12
    assert all("Project not found" in r for r in result.verdict.dead_letter_reasons)


def expect_bad_input(result: ScenarioResult) -> None:
    # Dead-lettered: the object delivered beside a broken record, and the two keys with dot
    # segments, which no fetcher could GET (refused, with the reason, before Wistia is asked).
    assert result.verdict.finals == Counter(
        {"SUBMITTED": 23, "SKIPPED": 11, "FAILED": 3, "DEAD": 1}
    )
    reasons = result.verdict.dead_letter_reasons
    assert sum(n for reason, n in reasons.items() if "'.' or '..' path segments" in reason) == 2
    assert result.faults["malformed or foreign events"] == 16
    assert any("13 of 13 malformed or foreign events refused" in n for n in result.notes)
    assert any("2 unreadable bodies dead-lettered" in n for n in result.notes)


def expect_bad_configuration(result: ScenarioResult) -> None:
    assert any("13 of 13 bad environments" in note for note in result.notes)
    assert any("8 events from 2 broken deployments" in note for note in result.notes)
    # The broken deployments' events, redriven once fixed, are all imported once; the objects
    # that failed for the empty secret are in the dead-letter queue (or, redriven, imported).
    finals = result.verdict.finals
    assert finals["SUBMITTED"] >= 8
    assert finals["SUBMITTED"] + finals["FAILED"] == 12


def expect_unservable(result: ScenarioResult) -> None:
    # Every class refused or skipped with its reason before Wistia was asked.
    assert "media Wistia failed to fetch: 0 " in " ".join(result.notes)
    assert result.verdict.finals["FAILED"] >= 7
    assert result.verdict.finals["SKIPPED"] >= 1
    assert result.checks == []


def expect_hostile(result: ScenarioResult) -> None:
    assert any("records left IN_PROGRESS 0" in note for note in result.notes)
    assert result.checks == []


def expect_webhooks_followed(result: ScenarioResult) -> None:
    # 5% of the 60 files are not media: Wistia accepts them, then fails them
    assert result.verdict.finals == Counter({"SUBMITTED": 57, "FAILED": 3})
    assert all("could not process the media" in r for r in result.verdict.dead_letter_reasons)
    for fault in ("duplicated", "reordered", "never sent"):
        assert result.faults[f"webhook events {fault}"] > 0
    assert result.checks == []  # every status Wistia's, none moved back, one letter each
    assert any("0 moved a media back; 3 failed media, 3 dead letters" in n for n in result.notes)
    assert result.metrics["StatusPollRequests"] >= 1  # the dropped events, filled in


EXPECTATIONS: dict[str, Callable[[ScenarioResult], None]] = {
    "unservable objects": expect_unservable,
    "hostile answers and secrets": expect_hostile,
    "duplicates + Wistia faults": expect_duplicates_and_wistia_faults,
    "429 storm + token rotated": expect_throttling_and_rotation,
    "AWS failing": expect_aws_failures,
    "bad input": expect_bad_input,
    "bad configuration": expect_bad_configuration,
    "webhooks: duplicated, reordered, dropped": expect_webhooks_followed,
}


@pytest.mark.parametrize("name", list(QUICK))
def test_nothing_is_lost_or_imported_twice_and_nothing_secret_leaks(
    name: str, moto_server: LocalAws
) -> None:
    scenario: Scenario = QUICK[name]
    with quiet_servers():
        result = run_scenario(moto_server, scenario)

    verdict = result.verdict
    assert [outcome.detail for outcome in verdict.lost] == []
    assert result.lost == 0
    assert verdict.duplicated_objects == [] and result.duplicated == 0
    assert verdict.unexpected_imports == []
    assert verdict.secrets == Counter()
    assert result.driver.abandoned == []
    assert result.problems == []
    EXPECTATIONS[name](result)


def test_the_checks_see_a_lost_object_a_duplicate_and_a_leaked_secret() -> None:
    # The invariants above would pass vacuously if the checks saw nothing: they do see.
    def placed(key: str) -> PlacedObject:
        return PlacedObject(ObjectPlan(key, b"x", "import"), Uploaded("b", key, "v1", "e", 1))

    def media(hashed_id: str, key: str, signature: str) -> dict[str, Any]:
        url = f"http://127.0.0.1/b/{key}?versionId=v1&X-Amz-Signature={signature}"
        return {"hashed_id": hashed_id, "name": key, "source_url": url}

    signature = "ab" * 32
    record = {"bucket": "b", "object_key": "twice.mp4", "object_version": "v1"}
    verdict = check(
        [placed("twice.mp4"), placed("lost.mp4")],
        [{**record, "status": "SUBMITTED", "wistia_hashed_id": "h1"}],
        [],
        [media("h1", "twice.mp4", signature), media("h2", "twice.mp4", "cd" * 32)],
        {"logs": f"token tok-1 and {signature}", "records": "X-Amz-Credential=AKIA"},
        ["tok-1"],
        "aws-secret",
    )

    assert [o.identity[1] for o in verdict.lost] == ["lost.mp4"]
    assert verdict.duplicated == 1 and verdict.duplicated_names == 1
    assert verdict.secrets == Counter(
        {"token in logs": 1, "signature value in logs": 1, "X-Amz-Credential in records": 1}
    )


# --- bugs the suite found: each test shows one, and passes once it is fixed ------------------


def deliver(
    event: Any, importer: Importer, log: CapturedLogger, timeout: float = 30.0
) -> dict[str, Any]:
    return handle_event(
        event, LambdaContext(timeout_seconds=timeout), importer, importer.dead_letters, log.logger
    )


@pytest.fixture
def aws_faults(moto_server: LocalAws) -> Iterator[AwsFaults]:
    faults = AwsFaults()
    moto_server.faults = faults
    try:
        yield faults
    finally:
        moto_server.faults = None


def wait_for_lease(stack: Stack, key: str, version: str) -> None:
    record = record_of(stack.table_name, stack.bucket, key, version)
    assert record is not None and record["status"] == "IN_PROGRESS"
    time.sleep(max(0.0, float(record["lease_expires_at"]) - time.time() + 0.2))


def wait_for_medias(wistia: WistiaEmulator, count: int, timeout: float = 15.0) -> None:
    """Until Wistia holds `count` medias (an import answered late is created late)."""
    ends = time.monotonic() + timeout
    while len(wistia.medias()) < count:
        assert time.monotonic() < ends, f"Wistia holds {len(wistia.medias())} medias"
        time.sleep(0.05)


def test_an_import_whose_record_could_not_be_written_is_not_imported_again(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    aws_faults: AwsFaults,
) -> None:
    # Given Wistia accepts the import, but DynamoDB refuses every try to record SUBMITTED
    obj = upload(stack.bucket, "ddb/accepted.mp4", VIDEO)
    event = s3_notification(obj)
    aws_faults.add(AwsFault("dynamodb", operation="UpdateItem", body_contains='"SUBMITTED"'))
    with pytest.raises(RetryableError, match="DynamoDB"):
        deliver(event, importer, captured_log, timeout=3.0)
    assert len(wistia_emulator.medias()) == 1

    # When DynamoDB is back and Lambda delivers the event again after the claim's lease
    aws_faults.clear()
    wait_for_lease(stack, obj.key, obj.version_id or "")
    answer = deliver(event, importer, captured_log)

    # Then the object is recorded with the media Wistia already holds, not imported twice
    assert answer["results"][0]["status"] == "SUBMITTED"
    assert len(wistia_emulator.medias()) == 1


def test_an_answer_later_than_the_read_timeout_is_not_imported_twice(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia answers the first import after 1 s, the function waits 0.3 s
    importer = importer_for(settings, read_timeout=0.3)
    wistia_emulator.add_fault(Fault(kind="latency", seconds=1.0, count=1))
    obj = upload(stack.bucket, "late/answer.mp4", VIDEO)
    event = s3_notification(obj)

    # When the event is handled, and handled again if the function hands it back
    started = time.monotonic()
    try:
        deliver(event, importer, captured_log)
    except RetryableError:
        time.sleep(1.0)  # Lambda's retry comes a minute later
        deliver(event, importer, captured_log)
    # (the late request creates its media when it answers, 1 s after it arrived)
    time.sleep(max(0.0, started + 1.5 - time.monotonic()))

    # Then Wistia holds one media for the object
    assert len(wistia_emulator.medias()) == 1


def test_a_lost_import_is_found_after_the_token_was_rotated(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given the first invocation's only attempt lost its answer (Wistia created the media)
    importer = importer_for(settings, max_attempts=2)
    wistia_emulator.add_fault(Fault(kind="drop_after_create", count=1))
    wistia_emulator.add_fault(
        Fault(kind="status", status=503, count=1, match_method="GET", match_path="/v1/*")
    )
    obj = upload(stack.bucket, "rotated/lost.mp4", VIDEO)
    event = s3_notification(obj)
    with pytest.raises(RetryableError):
        deliver(event, importer, captured_log)

    # When the token is rotated before Lambda's retry (the function still caches the old one)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=stack.secret_id, SecretString=json.dumps({"token": "rotated-token"})
    )
    wistia_emulator.set_tokens("rotated-token")
    answer = deliver(event, importer, captured_log)

    # Then the retry finds the media with the new token
    assert answer["results"][0]["status"] == "SUBMITTED"
    assert len(wistia_emulator.medias()) == 1


class UnreadableFirstAnswer:
    """Wistia accepts the first import, but its 200 reaches the function unreadable (a proxy's
    page, a truncated body): the media exists all the same."""

    def __init__(self, real: WistiaApi) -> None:
        self._real = real
        self.garbled = 0

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        answer = self._real.import_url(form, token, deadline)
        if answer.status == 200 and not self.garbled:
            self.garbled += 1
            return replace(answer, body=b"<html>OK</html>", content_type="text/html")
        return answer

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        return self._real.list_medias(name, project_id, token, deadline)


def test_an_unreadable_200_is_looked_up_before_importing_again(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    importer.wistia = UnreadableFirstAnswer(importer.wistia)
    obj = upload(stack.bucket, "garbled/answer.mp4", VIDEO)

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "SUBMITTED"
    assert len(wistia_emulator.medias()) == 1


def test_a_huge_wistia_error_still_fails_the_object_cleanly(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    wistia_emulator.add_fault(
        Fault(
            kind="status",
            status=400,
            count=1,
            body=json.dumps({"error": "Invalid request. " + "x" * 600_000}),
            content_type="application/json",
        )
    )
    obj = upload(stack.bucket, "huge/error.mp4", VIDEO)

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "FAILED"
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["status"] == "FAILED"
    [dead] = drain(stack.queue_url)
    assert dead["reason"].startswith("Invalid request.")
    assert len(json.dumps(dead)) < 256 * 1024


def test_a_redrive_right_after_the_secret_is_fixed_imports_the_object(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given the token secret was left empty: the object fails for good, with a reason
    secrets = boto3.client("secretsmanager")
    secrets.put_secret_value(SecretId=stack.secret_id, SecretString=" ")
    obj = upload(stack.bucket, "redrive/me.mp4", VIDEO)
    first = deliver(s3_notification(obj), importer, captured_log)
    assert first["results"][0]["status"] == "FAILED"

    # When the secret is fixed and the operator runs `make redrive` at once, while the
    # function's instance (which cached the empty secret) is still warm
    secrets.put_secret_value(SecretId=stack.secret_id, SecretString="test-token")
    summary = redrive.redrive(
        DeadLetterQueue(boto3.client("sqs"), stack.queue_url, wait_seconds=0),
        Records(boto3.client("dynamodb"), stack.table_name),
        in_process(importer, captured_log),
        report=lambda letter, outcome: None,
    )

    # Then the object is imported, and the queue is empty
    assert (summary.redriven, summary.submitted) == (1, 1)
    assert len(wistia_emulator.medias()) == 1
    assert drain(stack.queue_url) == []


def in_process(importer: Importer, log: CapturedLogger) -> redrive.Invoker:
    """The function invoked synchronously, as the redrive tool invokes it in AWS."""

    def invoke(event: dict[str, Any]) -> redrive.Invocation:
        try:
            deliver(event, importer, log)
        except Exception as error:
            return redrive.Invocation(ok=False, error=f"{type(error).__name__}: {error}")
        return redrive.Invocation(ok=True)

    return invoke


def test_a_repeat_delivery_while_wistia_still_works_does_not_import_twice(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given Wistia answers the import after 1.5 s while the function waits 0.3 s, so the
    # first delivery hands the event back
    first, second = (importer_for(settings, read_timeout=0.3) for _ in range(2))
    wistia_emulator.add_fault(Fault(kind="latency", seconds=1.5, count=1))
    obj = upload(stack.bucket, "late/repeated.mp4", VIDEO)
    event = s3_notification(obj)
    with pytest.raises(RetryableError):
        deliver(event, first, captured_log)

    # When S3's repeat of the same event reaches another instance before Wistia has finished
    with contextlib.suppress(RetryableError):  # handed back too: Lambda brings it again
        deliver(event, second, captured_log)
    wait_for_medias(wistia_emulator, 1)  # Wistia has finished its slow import by now
    answer = deliver(event, second, captured_log)

    # Then Wistia holds one media for the object, and the record names it
    assert answer["results"][0]["status"] == "SUBMITTED"
    [media] = wistia_emulator.medias()
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or "")
    assert record is not None and record["wistia_hashed_id"] == media["hashed_id"]
