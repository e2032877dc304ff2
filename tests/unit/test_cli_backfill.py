"""The pure parts of `backfill` and `reconcile`: how an object is named, the job request S3
gets, the CSV manifest, the Data API lookups inside their budget, and each object's state."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import urllib3

from s3_to_wistia.adapters.wistia import WistiaClient
from s3_to_wistia.cli.errors import UsageProblem
from s3_to_wistia.cli.inventory import (
    JobPlan,
    Listed,
    Selection,
    csv_manifest,
    duration,
    generated_manifest,
    job_request,
    parse_moment,
    result_kind,
)
from s3_to_wistia.cli.reconcile import Lookup, State, classify, look_up
from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.model import WistiaAnswer

WHEN = datetime(2026, 1, 1, tzinfo=UTC)
FUNCTION = "arn:aws:lambda:eu-west-1:210987654321:function:s3-to-wistia-backfill"


def listed(key: str = "a b.mp4", version: str | None = "v1", etag: str = "e1") -> Listed:
    return Listed("media", key, version, etag, 10, WHEN)


# --- naming objects as the function does -------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "record_version"), [("v1", "v1"), ("null", "e1"), (None, "e1")]
)
def test_an_object_is_named_by_its_version_else_its_etag(
    version: str | None, record_version: str
) -> None:
    obj = listed(version=version)

    assert obj.version == record_version
    assert obj.identity == ("s3://media/a b.mp4", record_version)
    assert obj.ref.version == record_version


def test_created_before_is_an_iso_moment_in_utc_unless_it_says() -> None:
    assert parse_moment("2026-01-31") == datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_moment("2026-01-31T12:00:00Z") == datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_moment("2026-01-31T12:00:00+02:00") == datetime(2026, 1, 31, 10, tzinfo=UTC)
    with pytest.raises(UsageProblem, match="ISO 8601"):
        parse_moment("last week")


def test_a_selection_admits_by_suffix_and_creation_time() -> None:
    selection = Selection("media", suffixes=(".mp4", ".mov"), created_before=WHEN)

    assert selection.admits("a.mp4", datetime(2025, 1, 1, tzinfo=UTC))
    assert not selection.admits("a.MP4", datetime(2025, 1, 1, tzinfo=UTC))
    assert not selection.admits("a.mov", WHEN)


# --- the job ---------------------------------------------------------------------------------


def test_the_job_invokes_the_function_with_schema_2_low_priority_and_a_full_report() -> None:
    plan = JobPlan(Selection("media"), None, "proj1", True, "s3-to-wistia backfill")

    request = job_request(plan, FUNCTION, "arn:aws:iam::210987654321:role/r", "reports", {})

    assert request["AccountId"] == "210987654321"
    assert request["Operation"] == {
        "LambdaInvoke": {
            "FunctionArn": FUNCTION,
            "InvocationSchemaVersion": "2.0",
            "UserArguments": {"low_priority": "true", "project_id": "proj1"},
        }
    }
    assert request["Report"] == {
        "Bucket": "arn:aws:s3:::reports",
        "Format": "Report_CSV_20180820",
        "Enabled": True,
        "Prefix": "reports",
        "ReportScope": "AllTasks",
    }
    assert request["ConfirmationRequired"] is False
    assert request["ClientRequestToken"]


def test_a_generated_manifest_carries_the_selection_as_s3s_filters() -> None:
    selection = Selection("media", "in/", (".mp4", ".mov"), WHEN)

    spec = generated_manifest(selection)["ManifestGenerator"]["S3JobManifestGenerator"]

    assert spec == {
        "SourceBucket": "arn:aws:s3:::media",
        "EnableManifestOutput": False,
        "Filter": {
            "KeyNameConstraint": {"MatchAnyPrefix": ["in/"], "MatchAnySuffix": [".mp4", ".mov"]},
            "CreatedBefore": WHEN,
        },
    }
    assert (
        "Filter"
        not in generated_manifest(Selection("media"))["ManifestGenerator"]["S3JobManifestGenerator"]
    )


class FakeS3:
    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> dict[str, str]:
        self.bodies[Key] = Body
        return {"ETag": '"abc"'}


def test_a_csv_manifest_encodes_keys_and_gives_versions_for_every_row_or_none() -> None:
    s3 = FakeS3()
    versioned = [listed("a b/c+d.mp4", "v1"), listed("old.mp4", "null")]
    unversioned = [listed("é.mp4", None)]

    where, manifest = csv_manifest(s3, "reports", versioned)
    _, plain = csv_manifest(s3, "reports", unversioned)

    [first, second] = s3.bodies.values()
    assert first.decode() == "media,a%20b/c%2Bd.mp4,v1\nmedia,old.mp4,null\n"
    assert second.decode() == "media,%C3%A9.mp4\n"
    assert where.startswith("s3://reports/manifests/")
    assert manifest["Manifest"]["Spec"] == {
        "Format": "S3BatchOperations_CSV_20180820",
        "Fields": ["Bucket", "Key", "VersionId"],
    }
    assert manifest["Manifest"]["Location"]["ETag"] == "abc"
    assert plain["Manifest"]["Spec"]["Fields"] == ["Bucket", "Key"]


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("SUBMITTED: imported into Wistia as media m1", "submitted"),
        ("SKIPPED: zero-byte object", "skipped"),
        ("already handled earlier (SUBMITTED): not imported again", "already done"),
        ("FAILED: video limit; sent to the dead-letter queue", "failed (dead-lettered)"),
        ('Lambda returned function error: {"errorMessage": "x"}', "function errors"),
        ("will be retried: Wistia answered 429", "retries used up"),
    ],
)
def test_report_lines_are_counted_by_what_the_function_said(message: str, kind: str) -> None:
    assert result_kind(message) == kind


def test_durations_read_as_a_person_says_them() -> None:
    assert duration(10) == "about 1 min"
    assert duration(3600 * 2 + 60 * 5) == "about 2 h 5 min"
    assert duration(7200) == "about 2 h"


# --- the Data API lookups ----------------------------------------------------------------------


class FakeMedias:
    """Wistia's media lookup: answers from a script of statuses (None: every asked media,
    ready), and keeps what it was asked."""

    def __init__(self, *answers: WistiaAnswer | None, missing: frozenset[str] = frozenset()):
        self.answers = list(answers)
        self.asked: list[list[str]] = []
        self.missing = missing

    def medias_by_hashed_ids(
        self, hashed_ids: list[str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        self.asked.append(hashed_ids)
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            return answer
        body = [{"hashed_id": h, "status": "ready"} for h in hashed_ids if h not in self.missing]
        return WistiaAnswer(200, json.dumps(body).encode(), "application/json", None)


def throttled(retry_after: str) -> WistiaAnswer:
    return WistiaAnswer(429, b"Rate limit exceeded", "text/plain", retry_after)


def test_medias_are_looked_up_a_hundred_a_request_at_the_rate_asked() -> None:
    wistia = FakeMedias(missing=frozenset({"m7"}))
    slept: list[float] = []
    ids = [f"m{n}" for n in range(250)]

    lookup = look_up(wistia, "token", ids, budget=10, rate=600, sleep=slept.append)

    assert [len(batch) for batch in wistia.asked] == [100, 100, 50]
    assert lookup.requests == 3 and lookup.asked == set(ids)
    assert "m7" not in lookup.statuses and lookup.statuses["m8"] == "ready"
    assert all(delay <= 0.1 for delay in slept)  # 600 a minute: at most 0.1 s apart


def test_the_lookups_stop_at_the_request_budget_and_say_so() -> None:
    wistia = FakeMedias()

    lookup = look_up(
        wistia, "t", [f"m{n}" for n in range(350)], budget=2, rate=6000, sleep=lambda s: None
    )

    assert lookup.requests == 2 and len(lookup.asked) == 200
    assert "--max-requests 2" in lookup.note


def test_a_429_waits_out_retry_after_and_counts_but_a_long_one_stops_the_lookups() -> None:
    slept: list[float] = []
    short = FakeMedias(throttled("3"))
    long = FakeMedias(throttled("600"))

    done = look_up(short, "t", ["m1"], budget=5, rate=6000, sleep=slept.append)
    stopped = look_up(long, "t", ["m1"], budget=5, rate=6000, sleep=lambda s: None)

    assert (done.requests, done.throttled, done.statuses) == (2, 1, {"m1": "ready"})
    assert 3.0 in slept
    assert (stopped.asked, stopped.note) == (
        set(),
        "Wistia asked to wait 600 s; the rest is not checked",
    )


def test_a_token_that_may_not_read_leaves_wistias_side_unchecked() -> None:
    refused = FakeMedias(WistiaAnswer(401, b"<html>", "text/html", None))

    lookup = look_up(refused, "t", ["m1"], budget=5, rate=6000, sleep=lambda s: None)

    assert lookup.asked == set()
    assert "upload-only token?" in lookup.note


class Answered:
    status = 200

    def __init__(self) -> None:
        self.headers = {"Content-Type": "application/json"}

    def read(self, amount: int) -> bytes:
        return b"[]"

    def release_conn(self) -> None:
        pass


class CapturingPool:
    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> Answered:
        self.urls.append(url)
        return Answered()


def test_the_lookup_asks_for_the_ids_and_a_page_big_enough_for_them() -> None:
    pool = CapturingPool()
    client = WistiaClient(pool, "https://upload.wistia.com/", urllib3.Timeout(connect=1, read=1))  # type: ignore[arg-type]

    answer = client.medias_by_hashed_ids(["a1", "b2"], "token")

    assert (answer.status, answer.body) == (200, b"[]")

    [url] = pool.urls
    assert urlsplit(url).path == "/v1/medias.json"
    assert parse_qsl(urlsplit(url).query) == [
        ("hashed_ids[]", "a1"),
        ("hashed_ids[]", "b2"),
        ("per_page", "100"),
    ]
    with pytest.raises(ValueError, match="1 to 100"):
        client.medias_by_hashed_ids([f"m{n}" for n in range(101)], "token")


# --- states ------------------------------------------------------------------------------------


def record(status: str, hashed_id: str | None = "m1", **fields: Any) -> ImportRecord:
    return ImportRecord(
        bucket="media",
        object_key="a b.mp4",
        object_version="v1",
        status=status,
        wistia_hashed_id=hashed_id,
        **fields,
    )


LOOKED_UP = Lookup({"m1": "ready", "m2": "failed", "m3": "processing"}, {"m1", "m2", "m3", "m4"})


@pytest.mark.parametrize(
    ("found", "state"),
    [
        (None, State.NEVER_SEEN),
        (record("SUBMITTED", "m1"), State.READY),
        (record("SUBMITTED", "m2"), State.FAILED_AT_WISTIA),
        (record("SUBMITTED", "m3"), State.PROCESSING),
        (record("SUBMITTED", "m4"), State.MISSING_AT_WISTIA),
        (record("SUBMITTED", "m9"), State.NOT_CHECKED),
        (record("SKIPPED", None, error="zero-byte object"), State.SKIPPED),
        (record("FAILED", None, error="video limit"), State.DEAD_LETTERED),
        (record("PENDING_RETRY", None), State.UNFINISHED),
        (record("IN_PROGRESS", None, lease_expires_at=Decimal(100)), State.UNFINISHED),
        (record("IN_PROGRESS", None, lease_expires_at=Decimal(10_000)), State.IMPORTING_NOW),
    ],
)
def test_every_object_is_in_exactly_one_state(found: ImportRecord | None, state: State) -> None:
    assert classify(listed(), found, LOOKED_UP, now=1000.0).state is state
