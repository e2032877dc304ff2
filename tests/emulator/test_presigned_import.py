"""Contract: imports of S3 presigned URLs end as they would at Wistia.

The URLs come from moto's server behind the local stack's SigV4 check (plain moto accepts
expired and tampered URLs), so an expired or tampered URL fails the import here as it
fails at Wistia.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import boto3
import botocore.config
import pytest

from local_stack.aws import LocalAws
from wistia_emulator import WistiaEmulator
from wistia_emulator.testing import import_url, json_of

CONTENT = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


@pytest.fixture
def s3_object(moto_server: LocalAws) -> tuple[Any, str, str]:
    """A fresh bucket holding one video: (s3 client, bucket, key)."""
    s3 = boto3.client("s3", config=botocore.config.Config(signature_version="s3v4"))
    bucket = f"emulator-{uuid.uuid4().hex[:12]}"
    key = "incoming/launch day.mp4"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=CONTENT)
    return s3, bucket, key


def presign(s3_object: tuple[Any, str, str], expires_in: int) -> str:
    s3, bucket, key = s3_object
    return str(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in
        )
    )


def import_and_settle(emu: WistiaEmulator, url: str) -> dict[str, Any]:
    answer = json_of(import_url(emu.url, url))
    assert emu.wait_until_settled(10)
    [media] = [m for m in emu.medias() if m["hashed_id"] == answer["hashed_id"]]
    return media


def test_a_fresh_presigned_url_imports_the_object(
    wistia_emulator: WistiaEmulator, s3_object: tuple[Any, str, str]
) -> None:
    url = presign(s3_object, expires_in=300)

    media = import_and_settle(wistia_emulator, url)

    assert media["status"] == "ready", media["error"]
    assert media["bytes"] == len(CONTENT)
    assert media["name"] == "launch day.mp4"


def test_an_expired_presigned_url_fails_the_import(
    wistia_emulator: WistiaEmulator, s3_object: tuple[Any, str, str]
) -> None:
    url = presign(s3_object, expires_in=1)
    time.sleep(2)

    media = import_and_settle(wistia_emulator, url)

    assert media["status"] == "failed"
    assert "expired" in media["error"].lower()
    assert "403" in media["error"]


def test_a_tampered_signature_fails_the_import(
    wistia_emulator: WistiaEmulator, s3_object: tuple[Any, str, str]
) -> None:
    parts = urlsplit(presign(s3_object, expires_in=300))
    query = dict(parse_qsl(parts.query))
    signature = query["X-Amz-Signature"]
    query["X-Amz-Signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = parts._replace(query=urlencode(query)).geturl()

    media = import_and_settle(wistia_emulator, tampered)

    assert media["status"] == "failed"
    assert "SignatureDoesNotMatch" in media["error"]
