"""The pure rules that decide, before Wistia is asked, whether S3 would serve its fetch."""

from __future__ import annotations

from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeSerializer

from s3_to_wistia.model import ObjectInfo, ProbeAnswer
from s3_to_wistia.rules import (
    DOT_SEGMENTS_REASON,
    SSE_C_REASON,
    ProbeVerdict,
    judge_probe,
    media_name,
    storable,
    unfetchable_key_reason,
    unservable_reason,
)

PLAIN = ObjectInfo(100, "video/mp4", {})
KMS = ObjectInfo(100, "video/mp4", {}, encryption="aws:kms", kms_key_id="arn:aws:kms:k/1")


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        ("a/./b.mp4", True),
        ("a/../b.mp4", True),
        ("../b.mp4", True),
        ("a/b/.", True),
        ("a/.b.mp4", False),
        ("a/..b.mp4", False),
        ("a/b..mp4", False),
        ("a//b.mp4", False),
        ("...mp4", False),
    ],
)
def test_only_whole_dot_segments_are_refused(key: str, refused: bool) -> None:
    assert (unfetchable_key_reason(key) == DOT_SEGMENTS_REASON) is refused


@pytest.mark.parametrize(
    ("info", "words"),
    [
        (ObjectInfo(1, None, {}, storage_class="GLACIER"), "archived (GLACIER)"),
        (ObjectInfo(1, None, {}, storage_class="DEEP_ARCHIVE"), "archived (DEEP_ARCHIVE)"),
        (
            ObjectInfo(
                1, None, {}, storage_class="INTELLIGENT_TIERING", archive_status="ARCHIVE_ACCESS"
            ),
            "INTELLIGENT_TIERING, ARCHIVE_ACCESS",
        ),
        (
            ObjectInfo(1, None, {}, storage_class="GLACIER", restore='ongoing-request="true"'),
            "restore is still running",
        ),
    ],
)
def test_archived_objects_are_unservable_until_restored(info: ObjectInfo, words: str) -> None:
    reason = unservable_reason(info)

    assert reason is not None and words in reason


@pytest.mark.parametrize(
    "info",
    [
        PLAIN,
        ObjectInfo(1, None, {}, storage_class="STANDARD_IA"),
        ObjectInfo(1, None, {}, storage_class="GLACIER_IR"),
        ObjectInfo(1, None, {}, storage_class="INTELLIGENT_TIERING"),
        ObjectInfo(
            1, None, {}, storage_class="GLACIER", restore='ongoing-request="false", expiry-date="x"'
        ),
    ],
)
def test_served_storage_classes_and_restored_copies_pass(info: ObjectInfo) -> None:
    assert unservable_reason(info) is None


@pytest.mark.parametrize(
    ("answer", "info", "etag", "verdict", "words"),
    [
        (ProbeAnswer(206, etag='"e1"'), PLAIN, None, ProbeVerdict.FETCHABLE, "fetchable"),
        (ProbeAnswer(200, etag='"e1"'), PLAIN, "e1", ProbeVerdict.FETCHABLE, "fetchable"),
        (ProbeAnswer(206, etag='"e2"'), PLAIN, "e1", ProbeVerdict.GONE, "overwritten"),
        (ProbeAnswer(404, "NoSuchKey"), PLAIN, None, ProbeVerdict.GONE, "deleted"),
        (ProbeAnswer(503, "SlowDown"), PLAIN, None, ProbeVerdict.RETRY, "503 SlowDown"),
        (ProbeAnswer(500, "InternalError"), PLAIN, None, ProbeVerdict.RETRY, "500"),
        (ProbeAnswer(403, "InvalidObjectState"), PLAIN, None, ProbeVerdict.REFUSED, "archived"),
        (ProbeAnswer(400, "InvalidRequest"), PLAIN, None, ProbeVerdict.REFUSED, SSE_C_REASON),
        (
            ProbeAnswer(403, "AccessDenied", "not authorized to perform: kms:Decrypt"),
            KMS,
            None,
            ProbeVerdict.REFUSED,
            "arn:aws:kms:k/1",
        ),
        (
            ProbeAnswer(403, "AccessDenied", "Request has expired"),
            PLAIN,
            None,
            ProbeVerdict.RETRY,
            "expired",
        ),
        (
            ProbeAnswer(403, "AccessDenied", "Access Denied"),
            PLAIN,
            None,
            ProbeVerdict.REFUSED,
            "bucket policy",
        ),
        (
            ProbeAnswer(403, "SignatureDoesNotMatch", "..."),
            PLAIN,
            None,
            ProbeVerdict.REFUSED,
            "SignatureDoesNotMatch",
        ),
    ],
)
def test_what_the_probe_says_of_wistias_fetch(
    answer: ProbeAnswer, info: ObjectInfo, etag: str | None, verdict: ProbeVerdict, words: str
) -> None:
    found, reason = judge_probe(answer, info, etag)

    assert found is verdict
    assert words in reason


@pytest.mark.parametrize(
    ("key", "rule", "prefix", "name"),
    [
        ("launch/eu/demo.mp4", "file-name", "", "demo.mp4"),
        ("launch/eu/demo.mp4", "key", "", "launch/eu/demo.mp4"),
        ("incoming/launch/demo.mp4", "key", "incoming/", "launch/demo.mp4"),
        ("demo.mp4", "key", "demo.mp4", "demo.mp4"),
        ("a/" + "x" * 300 + ".mp4", "key", "", ("x" * 300 + ".mp4")[-255:]),
    ],
)
def test_the_media_name_rule(key: str, rule: str, prefix: str, name: str) -> None:
    assert media_name(key, None, rule, prefix) == name
    assert media_name(key, "Given Name", rule, prefix) == "Given Name"


def test_what_dynamodb_cannot_store_becomes_text_and_the_rest_stays() -> None:
    value = {
        "big": 10**50,
        "fine": 10**37,
        "high": Decimal("1E+126"),
        "tiny": Decimal("1E-131"),
        "nan": "NaN",
        "ratio": Decimal("0.5"),
        "flag": True,
        "text": "lone \ud800",
        "list": [10**40, 1],
    }

    stored = storable(value)

    assert stored["big"] == str(10**50)
    assert stored["fine"] == 10**37
    assert stored["high"] == "1E+126" and stored["tiny"] == "1E-131"
    assert stored["ratio"] == Decimal("0.5") and stored["flag"] is True
    assert stored["text"] == "lone ?"
    assert stored["list"] == [str(10**40), 1]
    TypeSerializer().serialize(stored)  # DynamoDB's own serializer takes every value
