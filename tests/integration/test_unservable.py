"""Objects Wistia could never fetch through a presigned URL, and objects that change under
the function: each is refused or skipped with its reason before Wistia is asked, never
recorded as a success. Against moto's server (with the local stack's S3 object states) and
the Wistia emulator, over HTTP."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from local_stack.aws import ACCESS_KEY_ID, LocalAws
from local_stack.events import Uploaded, s3_notification
from local_stack.harness import CapturedLogger, LambdaContext, drain, record_of
from local_stack.template import Stack, provision
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import ObjectRef, PresignedUrl
from wistia_emulator import WistiaEmulator

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def deliver(event: Any, importer: Importer, log: CapturedLogger) -> dict[str, Any]:
    return handle_event(
        event, LambdaContext(timeout_seconds=30), importer, importer.dead_letters, log.logger
    )


def put(bucket: str, key: str, **extra: Any) -> Uploaded:
    answer = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=VIDEO, **extra)
    return Uploaded(bucket, key, answer.get("VersionId"), answer["ETag"].strip('"'), len(VIDEO))


@dataclass
class Ended:
    status: str
    record: dict[str, Any]
    dead_letters: list[dict[str, Any]]


def outcome(stack: Stack, obj: Uploaded, answer: dict[str, Any]) -> Ended:
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.version_id or obj.etag)
    assert record is not None
    return Ended(answer["results"][0]["status"], record, drain(stack.queue_url))


def assert_refused(ended: Ended, wistia: WistiaEmulator, *words: str) -> None:
    """FAILED, one dead letter with the reason, and nothing asked of Wistia."""
    assert ended.status == "FAILED"
    assert ended.record["status"] == "FAILED"
    [letter] = ended.dead_letters
    for word in words:
        assert word in letter["reason"], letter["reason"]
        assert word in ended.record["error"]
    assert letter["retryable"] is False
    assert letter["source_event"]["s3"]["object"]["key"]
    assert wistia.requests() == []


@pytest.mark.parametrize("storage_class", ["GLACIER", "DEEP_ARCHIVE"])
def test_an_archived_object_is_refused_with_how_to_restore_it(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    storage_class: str,
) -> None:
    obj = put(stack.bucket, f"cold/{storage_class}.mp4", StorageClass=storage_class)

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, "archived", storage_class, "restore-object")


def test_a_restored_archived_object_is_imported(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    obj = put(stack.bucket, "cold/restored.mp4", StorageClass="GLACIER")
    boto3.client("s3").restore_object(
        Bucket=stack.bucket, Key=obj.key, VersionId=obj.version_id, RestoreRequest={"Days": 1}
    )

    answer = deliver(s3_notification(obj), importer, captured_log)

    assert answer["results"][0]["status"] == "SUBMITTED"
    assert wistia_emulator.wait_until_settled(timeout=10)
    assert [m["status"] for m in wistia_emulator.medias()] == ["ready"]


@pytest.mark.parametrize("tier", ["ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"])
def test_an_intelligent_tiering_object_in_an_archive_tier_is_refused(
    stack: Stack,
    moto_server: LocalAws,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    tier: str,
) -> None:
    obj = put(stack.bucket, f"tiered/{tier}.mp4", StorageClass="INTELLIGENT_TIERING")
    moto_server.archive(stack.bucket, obj.key, tier=tier, version_id=obj.version_id)

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, "archived", tier)


def test_an_sse_c_object_is_refused_since_no_presigned_url_can_carry_its_key(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    key = b"k" * 32
    obj = put(
        stack.bucket,
        "secret/customer key.mp4",
        SSECustomerAlgorithm="AES256",
        SSECustomerKey=key,
    )

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, "SSE-C")
    assert hashlib.md5(key).hexdigest() not in json.dumps(ended.record, default=str)  # noqa: S324


def test_a_kms_object_is_refused_until_the_signer_may_decrypt_with_its_key(
    stack: Stack,
    moto_server: LocalAws,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given an object under a customer-managed key the function's signer may not use
    refused = put(
        stack.bucket, "kms/refused.mp4", ServerSideEncryption="aws:kms", SSEKMSKeyId=KMS_KEY
    )

    ended = outcome(stack, refused, deliver(s3_notification(refused), importer, captured_log))

    # Then it is refused, naming the key and the parameter that grants it
    assert_refused(ended, wistia_emulator, KMS_KEY, "KmsKeyArns")

    # And once the signer may decrypt with it (what KmsKeyArns grants), the next is imported
    moto_server.allow_kms_decrypt(ACCESS_KEY_ID, KMS_KEY)
    allowed = put(
        stack.bucket, "kms/allowed.mp4", ServerSideEncryption="aws:kms", SSEKMSKeyId=KMS_KEY
    )
    assert deliver(s3_notification(allowed), importer, captured_log)["results"][0]["status"] == (
        "SUBMITTED"
    )
    assert wistia_emulator.wait_until_settled(timeout=10)
    assert [m["status"] for m in wistia_emulator.medias()] == ["ready"]


def test_objects_under_the_aws_managed_key_are_imported(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    obj = put(stack.bucket, "kms/managed.mp4", ServerSideEncryption="aws:kms")

    assert deliver(s3_notification(obj), importer, captured_log)["results"][0]["status"] == (
        "SUBMITTED"
    )


@pytest.mark.parametrize("key", ["dots/./one.mp4", "dots/a/../two.mp4", "../three.mp4"])
def test_a_key_with_dot_segments_is_refused_before_any_url_is_signed(
    stack: Stack,
    importer: Importer,
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    key: str,
) -> None:
    obj = put(stack.bucket, key)

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, "'.' or '..' path segments", "rename")


def test_an_object_deleted_before_its_event_is_handled_is_skipped_in_a_versioned_bucket(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    # Given a versioned bucket, where the deleted version itself is still kept
    obj = put(stack.bucket, "gone/deleted.mp4")
    boto3.client("s3").delete_object(Bucket=stack.bucket, Key=obj.key)

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert ended.status == "SKIPPED"
    assert "delete marker" in ended.record["error"]
    assert ended.dead_letters == []
    assert wistia_emulator.requests() == []


def test_an_older_version_still_in_the_bucket_is_imported_as_that_version(
    stack: Stack, importer: Importer, captured_log: CapturedLogger, wistia_emulator: WistiaEmulator
) -> None:
    first = put(stack.bucket, "versions/clip.mp4")
    put(stack.bucket, "versions/clip.mp4")

    answer = deliver(s3_notification(first), importer, captured_log)

    assert answer["results"][0]["status"] == "SUBMITTED"
    record = record_of(stack.table_name, stack.bucket, first.key, first.version_id or "")
    assert record is not None and record["version_pinned"] is True
    assert f"versionId={first.version_id}" in wistia_emulator.medias()[0]["source_url"]


class OverwrittenAfterHead:
    """The bucket's object store, with another upload landing right after the HEAD and
    before the probe (the function makes both at once, beside its claim): the race an
    unversioned bucket cannot close."""

    def __init__(self, real: Any, bucket: str, key: str) -> None:
        self._real = real
        self._bucket, self._key = bucket, key
        self._overwritten = threading.Event()

    def head(self, obj: ObjectRef) -> Any:
        info = self._real.head(obj)
        boto3.client("s3").put_object(Bucket=self._bucket, Key=self._key, Body=VIDEO + b"new")
        self._overwritten.set()
        return info

    def presign(self, obj: ObjectRef, expires_in: int) -> PresignedUrl:
        return self._real.presign(obj, expires_in)

    def probe(self, url: str) -> Any:
        assert self._overwritten.wait(timeout=30)
        return self._real.probe(url)


def test_an_unversioned_object_overwritten_after_its_head_is_skipped_not_misrecorded(
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    # Given an unversioned bucket (an existing one), and an upload racing the function
    stack = provision(token="test-token", parameters={"ExistingBucketName": "plain-bucket-1"})
    environment = stack.environment_for(wistia_emulator.url)
    importer = importer_for(Settings.from_env(environment))
    obj = put(stack.bucket, "race/plain.mp4")
    assert obj.version_id is None
    importer.storage = OverwrittenAfterHead(importer.storage, stack.bucket, obj.key)

    # When the first upload's event is handled
    answer = deliver(s3_notification(obj), importer, captured_log)

    # Then the probe sees other bytes under the key: skipped, for the newer event to import
    assert answer["results"][0]["status"] == "SKIPPED"
    record = record_of(stack.table_name, stack.bucket, obj.key, obj.etag)
    assert record is not None and "overwritten" in record["error"]
    assert wistia_emulator.requests() == []


def test_an_unversioned_import_says_its_url_cannot_pin_the_bytes(
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    stack = provision(token="test-token", parameters={"ExistingBucketName": "plain-bucket-2"})
    importer = importer_for(Settings.from_env(stack.environment_for(wistia_emulator.url)))
    obj = put(stack.bucket, "plain/clip.mp4")

    deliver(s3_notification(obj), importer, captured_log)

    record = record_of(stack.table_name, stack.bucket, obj.key, obj.etag)
    assert record is not None and record["status"] == "SUBMITTED"
    assert record["version_pinned"] is False


def test_without_the_probe_what_the_head_shows_is_still_refused(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    importer = importer_for(settings, probe_import_url=False)
    obj = put(stack.bucket, "cold/no probe.mp4", StorageClass="GLACIER")

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, "archived")


@pytest.mark.parametrize(
    ("secret", "words"),
    [
        ("not json", "must be JSON with access_key_id"),
        (json.dumps({"access_key_id": "AKIAX"}), "must be JSON with access_key_id"),
        (json.dumps({"access_key_id": " ", "secret_access_key": "x"}), "has an empty key"),
    ],
)
def test_an_unusable_signing_secret_fails_the_object_cleanly(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
    secret: str,
    words: str,
) -> None:
    arn = boto3.client("secretsmanager").create_secret(
        Name=f"signing-bad-{hashlib.sha1(secret.encode()).hexdigest()[:8]}-{stack.bucket}",  # noqa: S324
        SecretString=secret,
    )["ARN"]
    importer = importer_for(settings, signing_credentials_secret=arn)
    obj = put(stack.bucket, "signed/bad secret.mp4")

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, words)


def test_a_missing_signing_secret_fails_the_object_naming_it(
    stack: Stack,
    settings: Settings,
    importer_for: Callable[..., Importer],
    captured_log: CapturedLogger,
    wistia_emulator: WistiaEmulator,
) -> None:
    importer = importer_for(settings, signing_credentials_secret="no-such-signing-secret")
    obj = put(stack.bucket, "signed/missing secret.mp4")

    ended = outcome(stack, obj, deliver(s3_notification(obj), importer, captured_log))

    assert_refused(ended, wistia_emulator, "no-such-signing-secret")
