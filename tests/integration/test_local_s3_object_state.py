"""The local stack serves S3 objects as S3 does where moto does not: SSE-C objects, SSE-KMS
objects under a customer-managed key, and Intelligent-Tiering objects in an archive tier.

Every check goes over real HTTP: boto3 for the SDK's view, urllib3 fetching presigned URLs
for a fetcher's (Wistia's) view, with the one-byte ranged GET the function uses as a probe.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import urllib3
from botocore.config import Config
from botocore.exceptions import ClientError

from local_stack.aws import ACCESS_KEY_ID, ACCOUNT_ID, LocalAws
from local_stack.object_state import (
    ARCHIVED,
    RESTORE_DAYS,
    RESTORE_IN_PROGRESS,
    SSE_C_NOT_APPLICABLE,
    SSE_C_PART_MISSING,
    SSE_C_REQUIRED,
    SSE_C_WRONG_KEY,
    VersionState,
)

BODY = b"\x00\x00\x00\x18ftypmp42 the bytes of a video"
HTTP = urllib3.PoolManager()


@pytest.fixture
def s3(moto_server: LocalAws) -> Any:
    return boto3.client("s3", config=Config(signature_version="s3v4"))


@pytest.fixture(params=["unversioned", "versioned"])
def bucket(request: pytest.FixtureRequest, s3: Any) -> str:
    return new_bucket(s3, versioned=request.param == "versioned")


def new_bucket(s3: Any, versioned: bool) -> str:
    name = f"object-state-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture
def customer_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def kms_key(moto_server: LocalAws) -> dict[str, str]:
    """A fresh customer-managed KMS key, so no other test's grant reaches it."""
    metadata = boto3.client("kms").create_key()["KeyMetadata"]
    return {"id": metadata["KeyId"], "arn": metadata["Arn"]}


@pytest.fixture
def other_signer(moto_server: LocalAws) -> Iterator[tuple[str, Any]]:
    """A second long-term key the local stack trusts, and an S3 client signing with it."""
    access_key = f"AKIAOTHER{uuid.uuid4().hex[:11].upper()}"
    secret_key = uuid.uuid4().hex
    moto_server.trust_key(access_key, secret_key)
    client = boto3.client(
        "s3",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4"),
    )
    yield access_key, client
    moto_server.signing_keys.pop(access_key, None)


@pytest.fixture
def s3_clock(moto_server: LocalAws) -> Iterator[LocalAws]:
    yield moto_server
    moto_server.clock_skew = 0.0


def sse_c(key: bytes) -> dict[str, Any]:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def sse_c_headers(key: bytes) -> dict[str, str]:
    return {
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
        "x-amz-server-side-encryption-customer-key-MD5": key_md5(key),
    }


def key_md5(key: bytes) -> str:
    return base64.b64encode(hashlib.md5(key, usedforsecurity=False).digest()).decode()


def probe(s3: Any, bucket: str, key: str, **params: Any) -> urllib3.BaseHTTPResponse:
    """What a fetcher sees: a one-byte ranged GET of a presigned URL, no other header."""
    return fetch(presigned(s3, bucket, key, **params))


def presigned(s3: Any, bucket: str, key: str, **params: Any) -> str:
    url: str = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key, **params}, ExpiresIn=600
    )
    return url


def fetch(url: str, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    return HTTP.request("GET", url, headers={"Range": "bytes=0-0", **(headers or {})})


def error_of(response: urllib3.BaseHTTPResponse) -> tuple[int, str, str]:
    text = response.data.decode()
    code = re.search(r"<Code>(.*?)</Code>", text)
    message = re.search(r"<Message>(.*?)</Message>", text)
    return (
        response.status,
        code.group(1) if code else "",
        message.group(1).replace("&apos;", "'") if message else "",
    )


def refusal(call: Any) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    error = raised.value.response["Error"]
    status = raised.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return status, error.get("Code", ""), error.get("Message", "")


# -- SSE-C ----------------------------------------------------------------------------------


def test_an_sse_c_object_is_refused_to_every_read_without_its_key(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    # Given an object stored with a customer-provided key
    s3.put_object(Bucket=bucket, Key="sse-c.mp4", Body=BODY, **sse_c(customer_key))

    # Then a GET without the key is refused with S3's 400 InvalidRequest
    assert refusal(lambda: s3.get_object(Bucket=bucket, Key="sse-c.mp4")) == (
        400,
        "InvalidRequest",
        SSE_C_REQUIRED,
    )
    # And a HEAD too, with the bare status S3 gives a HEAD
    assert refusal(lambda: s3.head_object(Bucket=bucket, Key="sse-c.mp4")) == (
        400,
        "400",
        "Bad Request",
    )
    # And a presigned URL, which cannot carry the key, fetches nothing
    assert error_of(probe(s3, bucket, "sse-c.mp4")) == (400, "InvalidRequest", SSE_C_REQUIRED)


def test_an_sse_c_object_is_served_to_the_key_that_stored_it(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    # Given an object stored with a customer-provided key
    put = s3.put_object(Bucket=bucket, Key="sse-c.mp4", Body=BODY, **sse_c(customer_key))
    assert put["SSECustomerKeyMD5"] == key_md5(customer_key)

    # When it is read with the same key
    got = s3.get_object(Bucket=bucket, Key="sse-c.mp4", **sse_c(customer_key))
    head = s3.head_object(Bucket=bucket, Key="sse-c.mp4", **sse_c(customer_key))

    # Then S3 serves it and says which key it was stored with
    assert got["Body"].read() == BODY
    assert head["SSECustomerAlgorithm"] == "AES256"
    assert head["SSECustomerKeyMD5"] == key_md5(customer_key)
    assert "ServerSideEncryption" not in head


def test_an_sse_c_object_is_refused_to_another_key(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    s3.put_object(Bucket=bucket, Key="sse-c.mp4", Body=BODY, **sse_c(customer_key))
    wrong = sse_c(os.urandom(32))

    assert refusal(lambda: s3.get_object(Bucket=bucket, Key="sse-c.mp4", **wrong)) == (
        403,
        "AccessDenied",
        SSE_C_WRONG_KEY,
    )
    assert refusal(lambda: s3.head_object(Bucket=bucket, Key="sse-c.mp4", **wrong))[:2] == (
        403,
        "403",
    )


def test_a_url_signed_for_the_sse_c_headers_serves_only_a_client_that_sends_the_key(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    # Given an SSE-C object and a URL presigned with its key
    s3.put_object(Bucket=bucket, Key="sse-c.mp4", Body=BODY, **sse_c(customer_key))
    url = presigned(s3, bucket, "sse-c.mp4", **sse_c(customer_key))

    # Then a program that sends the key headers gets the bytes
    answer = fetch(url, sse_c_headers(customer_key))
    assert (answer.status, answer.data) == (206, BODY[:1])
    # And a fetcher that only has the URL does not: the signature covers the headers
    assert error_of(fetch(url))[:2] == (403, "SignatureDoesNotMatch")


def test_sse_c_headers_are_refused_for_an_object_stored_without_them(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    s3.put_object(Bucket=bucket, Key="plain.mp4", Body=BODY)

    assert refusal(
        lambda: s3.get_object(Bucket=bucket, Key="plain.mp4", **sse_c(customer_key))
    ) == (400, "InvalidRequest", SSE_C_NOT_APPLICABLE)


def test_an_sse_c_key_that_does_not_match_its_md5_is_refused_and_nothing_is_stored(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    # Given an upload whose key-MD5 header is not the key's MD5
    headers = {
        "SSECustomerAlgorithm": "AES256",
        "SSECustomerKey": base64.b64encode(customer_key).decode(),
        "SSECustomerKeyMD5": key_md5(os.urandom(32)),
    }

    # Then S3 refuses it
    assert refusal(lambda: s3.put_object(Bucket=bucket, Key="bad.mp4", Body=BODY, **headers)) == (
        400,
        "InvalidArgument",
        "The calculated MD5 hash of the key did not match the hash that was provided.",
    )
    assert refusal(lambda: s3.head_object(Bucket=bucket, Key="bad.mp4"))[0] == 404


def test_an_object_overwritten_without_sse_c_is_served_without_a_key(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    # Given an SSE-C object overwritten by a plain one
    first = s3.put_object(Bucket=bucket, Key="sse-c.mp4", Body=b"old", **sse_c(customer_key))
    s3.put_object(Bucket=bucket, Key="sse-c.mp4", Body=BODY)

    # Then the current object needs no key, and a fetcher gets it
    assert s3.get_object(Bucket=bucket, Key="sse-c.mp4")["Body"].read() == BODY
    assert probe(s3, bucket, "sse-c.mp4").status == 206
    # And in a versioned bucket the old version still needs its key
    if "VersionId" in first:
        old = {"VersionId": first["VersionId"]}
        assert refusal(lambda: s3.get_object(Bucket=bucket, Key="sse-c.mp4", **old))[:2] == (
            400,
            "InvalidRequest",
        )
        got = s3.get_object(Bucket=bucket, Key="sse-c.mp4", **old, **sse_c(customer_key))
        assert got["Body"].read() == b"old"


def test_a_multipart_upload_with_sse_c_needs_the_key_on_every_part_and_every_read(
    s3: Any, bucket: str, customer_key: bytes
) -> None:
    # Given a multipart upload started with a customer-provided key
    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts.mp4", **sse_c(customer_key))
    assert upload["SSECustomerKeyMD5"] == key_md5(customer_key)
    ids = {"Bucket": bucket, "Key": "parts.mp4", "UploadId": upload["UploadId"]}

    # Then a part without the key is refused, and one with it is taken
    assert refusal(lambda: s3.upload_part(**ids, PartNumber=1, Body=BODY)) == (
        400,
        "InvalidRequest",
        SSE_C_PART_MISSING,
    )
    part = s3.upload_part(**ids, PartNumber=1, Body=BODY, **sse_c(customer_key))
    s3.complete_multipart_upload(
        **ids, MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}
    )

    # And the completed object is an SSE-C object
    assert error_of(probe(s3, bucket, "parts.mp4"))[:2] == (400, "InvalidRequest")
    got = s3.get_object(Bucket=bucket, Key="parts.mp4", **sse_c(customer_key))
    assert got["Body"].read() == BODY


def test_a_copy_stored_with_sse_c_needs_the_key(s3: Any, bucket: str, customer_key: bytes) -> None:
    s3.put_object(Bucket=bucket, Key="plain.mp4", Body=BODY)
    s3.copy_object(
        Bucket=bucket,
        Key="copy.mp4",
        CopySource={"Bucket": bucket, "Key": "plain.mp4"},
        **sse_c(customer_key),
    )

    assert error_of(probe(s3, bucket, "copy.mp4"))[:2] == (400, "InvalidRequest")
    assert probe(s3, bucket, "plain.mp4").status == 206
    got = s3.get_object(Bucket=bucket, Key="copy.mp4", **sse_c(customer_key))
    assert got["Body"].read() == BODY


# -- SSE-KMS and kms:Decrypt -----------------------------------------------------------------


def kms_denial(key_arn: str, access_key: str = ACCESS_KEY_ID) -> tuple[int, str, str]:
    return (
        403,
        "AccessDenied",
        f"User: arn:aws:iam::{ACCOUNT_ID}:user/{access_key} is not authorized to perform: "
        f"kms:Decrypt on resource: {key_arn} "
        "because no identity-based policy allows the kms:Decrypt action",
    )


def test_an_object_under_a_customer_key_is_refused_to_a_reader_without_kms_decrypt(
    s3: Any, bucket: str, kms_key: dict[str, str]
) -> None:
    # Given an object encrypted under a customer-managed key nobody may decrypt with
    s3.put_object(
        Bucket=bucket,
        Key="kms.mp4",
        Body=BODY,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key["arn"],
    )

    # Then a GET is refused with S3's wording, through the SDK and a presigned URL alike
    assert refusal(lambda: s3.get_object(Bucket=bucket, Key="kms.mp4")) == kms_denial(
        kms_key["arn"]
    )
    assert error_of(probe(s3, bucket, "kms.mp4")) == kms_denial(kms_key["arn"])
    # And a HEAD still works, as S3 decrypts nothing for it
    head = s3.head_object(Bucket=bucket, Key="kms.mp4")
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms_key["arn"])
    # Unless it asks for the stored checksum, which S3 keeps encrypted
    denied = refusal(lambda: s3.head_object(Bucket=bucket, Key="kms.mp4", ChecksumMode="ENABLED"))
    assert denied[:2] == (403, "403")


def test_a_grant_of_kms_decrypt_serves_its_holder_and_nobody_else(
    moto_server: LocalAws,
    s3: Any,
    other_signer: tuple[str, Any],
    bucket: str,
    kms_key: dict[str, str],
) -> None:
    # Given an object put with the key's bare ID (S3 records the key's ARN)
    s3.put_object(
        Bucket=bucket,
        Key="kms.mp4",
        Body=BODY,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=kms_key["id"],
    )

    # When the local stack's own key is granted kms:Decrypt on that key
    moto_server.allow_kms_decrypt(ACCESS_KEY_ID, kms_key["arn"])

    # Then its holder reads the object, through the SDK and presigned URLs
    assert s3.get_object(Bucket=bucket, Key="kms.mp4")["Body"].read() == BODY
    answer = probe(s3, bucket, "kms.mp4")
    assert (answer.status, answer.data) == (206, BODY[:1])
    # And another signer is still refused
    other_key, other_s3 = other_signer
    assert error_of(probe(other_s3, bucket, "kms.mp4")) == kms_denial(kms_key["arn"], other_key)


def test_a_grant_given_by_alias_covers_objects_stored_under_the_key(
    moto_server: LocalAws, s3: Any, bucket: str, kms_key: dict[str, str]
) -> None:
    alias = f"alias/videos-{uuid.uuid4().hex[:8]}"
    boto3.client("kms").create_alias(AliasName=alias, TargetKeyId=kms_key["id"])
    s3.put_object(
        Bucket=bucket, Key="kms.mp4", Body=BODY, ServerSideEncryption="aws:kms", SSEKMSKeyId=alias
    )
    assert error_of(probe(s3, bucket, "kms.mp4")) == kms_denial(kms_key["arn"])

    moto_server.allow_kms_decrypt(ACCESS_KEY_ID, alias)

    assert probe(s3, bucket, "kms.mp4").status == 206


def test_the_aws_managed_key_needs_no_grant(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="default.mp4", Body=BODY, ServerSideEncryption="aws:kms")
    s3.put_object(
        Bucket=bucket,
        Key="alias.mp4",
        Body=BODY,
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="alias/aws/s3",
    )

    for key in ("default.mp4", "alias.mp4"):
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY
        assert probe(s3, bucket, key).status == 206


def test_a_bucket_default_customer_key_needs_a_grant_too(
    s3: Any, bucket: str, kms_key: dict[str, str]
) -> None:
    # Given a bucket that encrypts every new object under a customer-managed key
    rule = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key["arn"]}
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": rule}]},
    )

    # When an object is put with no encryption header
    s3.put_object(Bucket=bucket, Key="default.mp4", Body=BODY)

    # Then a fetcher without kms:Decrypt is refused
    assert error_of(probe(s3, bucket, "default.mp4")) == kms_denial(kms_key["arn"])


def test_a_sigv2_presigned_url_of_an_sse_kms_object_is_refused(
    moto_server: LocalAws, bucket: str
) -> None:
    # S3 serves SSE-KMS objects only over TLS or to SigV4; the local stack speaks plain HTTP
    s3v2 = boto3.client("s3", config=Config(signature_version="s3"))
    s3v2.put_object(Bucket=bucket, Key="kms.mp4", Body=BODY, ServerSideEncryption="aws:kms")

    assert error_of(probe(s3v2, bucket, "kms.mp4")) == (
        400,
        "InvalidArgument",
        "Requests specifying Server Side Encryption with AWS KMS managed keys "
        "require AWS Signature Version 4.",
    )


# -- Intelligent-Tiering archive tiers -------------------------------------------------------


def tiered(s3: Any, bucket: str, key: str = "tiered.mp4", body: bytes = BODY) -> dict[str, Any]:
    answer: dict[str, Any] = s3.put_object(
        Bucket=bucket, Key=key, Body=body, StorageClass="INTELLIGENT_TIERING"
    )
    return answer


@pytest.mark.parametrize("tier", ["ARCHIVE_ACCESS", "DEEP_ARCHIVE_ACCESS"])
def test_an_archived_object_reports_its_tier_and_is_not_served(
    moto_server: LocalAws, s3: Any, bucket: str, tier: str
) -> None:
    # Given an Intelligent-Tiering object moved to an archive tier
    tiered(s3, bucket)
    moto_server.archive(bucket, "tiered.mp4", tier=tier)

    # Then HEAD says so
    head = s3.head_object(Bucket=bucket, Key="tiered.mp4")
    assert (head["StorageClass"], head["ArchiveStatus"]) == ("INTELLIGENT_TIERING", tier)
    assert "Restore" not in head
    # And a GET is refused with S3's InvalidObjectState, naming the tier
    assert refusal(lambda: s3.get_object(Bucket=bucket, Key="tiered.mp4")) == (
        403,
        "InvalidObjectState",
        ARCHIVED,
    )
    answer = probe(s3, bucket, "tiered.mp4")
    assert error_of(answer) == (403, "InvalidObjectState", ARCHIVED)
    assert f"<AccessTier>{tier}</AccessTier>" in answer.data.decode()


def test_a_restore_brings_an_archived_object_back_at_once_by_default(
    moto_server: LocalAws, s3: Any, bucket: str
) -> None:
    tiered(s3, bucket)
    moto_server.archive(bucket, "tiered.mp4")

    answer = s3.restore_object(Bucket=bucket, Key="tiered.mp4", RestoreRequest={})

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    head = s3.head_object(Bucket=bucket, Key="tiered.mp4")
    assert "ArchiveStatus" not in head
    assert head["Restore"] == 'ongoing-request="false"'
    assert s3.get_object(Bucket=bucket, Key="tiered.mp4")["Body"].read() == BODY
    assert probe(s3, bucket, "tiered.mp4").status == 206


def test_a_restore_in_progress_is_reported_and_the_object_stays_archived_until_it_ends(
    s3_clock: LocalAws, s3: Any, bucket: str
) -> None:
    # Given an archived object whose restore takes five minutes
    tiered(s3, bucket)
    s3_clock.archive(bucket, "tiered.mp4", tier="DEEP_ARCHIVE_ACCESS", restore_delay=300)

    # When a restore is requested
    s3.restore_object(Bucket=bucket, Key="tiered.mp4", RestoreRequest={})

    # Then HEAD shows it under way, a GET is still refused and a second request conflicts
    head = s3.head_object(Bucket=bucket, Key="tiered.mp4")
    assert (head["ArchiveStatus"], head["Restore"]) == (
        "DEEP_ARCHIVE_ACCESS",
        'ongoing-request="true"',
    )
    assert error_of(probe(s3, bucket, "tiered.mp4"))[:2] == (403, "InvalidObjectState")
    again = lambda: s3.restore_object(Bucket=bucket, Key="tiered.mp4", RestoreRequest={})  # noqa: E731
    assert refusal(again) == (409, "RestoreAlreadyInProgress", RESTORE_IN_PROGRESS)
    # And once five minutes have passed on S3's clock, the object is served
    s3_clock.clock_skew = 301
    head = s3.head_object(Bucket=bucket, Key="tiered.mp4")
    assert ("ArchiveStatus" in head, head["Restore"]) == (False, 'ongoing-request="false"')
    assert probe(s3, bucket, "tiered.mp4").status == 206


def test_of_simultaneous_restore_requests_exactly_one_starts_the_restore(
    moto_server: LocalAws, s3: Any, bucket: str
) -> None:
    # Given an archived object whose restore takes five minutes
    tiered(s3, bucket)
    moto_server.archive(bucket, "tiered.mp4", restore_delay=300)

    # When twelve clients ask to restore it at once
    def restore(_: int) -> int:
        try:
            s3.restore_object(Bucket=bucket, Key="tiered.mp4", RestoreRequest={})
        except ClientError as error:
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return 202

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(restore, range(12)))

    # Then one restore was accepted and every other request found it in progress
    assert statuses == [202] + [409] * 11


def test_a_restore_of_an_archived_intelligent_tiering_object_takes_no_days(
    moto_server: LocalAws, s3: Any, bucket: str
) -> None:
    tiered(s3, bucket)
    moto_server.archive(bucket, "tiered.mp4")

    with_days = lambda: s3.restore_object(  # noqa: E731
        Bucket=bucket, Key="tiered.mp4", RestoreRequest={"Days": 1}
    )

    assert refusal(with_days) == (400, "InvalidArgument", RESTORE_DAYS)
    assert s3.head_object(Bucket=bucket, Key="tiered.mp4")["ArchiveStatus"] == "ARCHIVE_ACCESS"


def test_archiving_is_only_for_intelligent_tiering_objects_that_exist(
    moto_server: LocalAws, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="standard.mp4", Body=BODY)

    with pytest.raises(ValueError, match="STANDARD"):
        moto_server.archive(bucket, "standard.mp4")
    with pytest.raises(LookupError):
        moto_server.archive(bucket, "missing.mp4")
    with pytest.raises(ValueError, match="tier"):
        moto_server.archive(bucket, "standard.mp4", tier="GLACIER")


def test_an_overwrite_leaves_the_archive_behind_and_an_old_version_keeps_it(
    moto_server: LocalAws, s3: Any, bucket: str
) -> None:
    # Given an archived object that is then overwritten
    first = tiered(s3, bucket, body=b"old")
    moto_server.archive(bucket, "tiered.mp4")
    tiered(s3, bucket)

    # Then the new object is served
    assert "ArchiveStatus" not in s3.head_object(Bucket=bucket, Key="tiered.mp4")
    assert probe(s3, bucket, "tiered.mp4").status == 206
    # And in a versioned bucket the old version is still archived, even under a delete marker
    if "VersionId" in first:
        s3.delete_object(Bucket=bucket, Key="tiered.mp4")
        old = {"VersionId": first["VersionId"]}
        head = s3.head_object(Bucket=bucket, Key="tiered.mp4", **old)
        assert head["ArchiveStatus"] == "ARCHIVE_ACCESS"
        answer = probe(s3, bucket, "tiered.mp4", **old)
        assert error_of(answer)[:2] == (403, "InvalidObjectState")


def test_an_old_version_can_be_archived_and_restored_alone(moto_server: LocalAws, s3: Any) -> None:
    bucket = new_bucket(s3, versioned=True)
    first = tiered(s3, bucket, body=b"old")
    tiered(s3, bucket)
    old = {"VersionId": first["VersionId"]}

    moto_server.archive(bucket, "tiered.mp4", version_id=first["VersionId"])

    assert probe(s3, bucket, "tiered.mp4").status == 206
    assert error_of(probe(s3, bucket, "tiered.mp4", **old))[:2] == (403, "InvalidObjectState")
    s3.restore_object(Bucket=bucket, Key="tiered.mp4", RestoreRequest={}, **old)
    assert s3.get_object(Bucket=bucket, Key="tiered.mp4", **old)["Body"].read() == b"old"


def test_deleting_an_object_forgets_what_was_known_of_it(
    moto_server: LocalAws, s3: Any, bucket: str, customer_key: bytes
) -> None:
    # (Nothing over HTTP shows this, as any new object replaces the state anyway; the state
    # must still not outlive the objects it describes.)
    # Given an SSE-C object and an archived one
    one = s3.put_object(Bucket=bucket, Key="one.mp4", Body=BODY, **sse_c(customer_key))
    two = tiered(s3, bucket, key="two.mp4")
    moto_server.archive(bucket, "two.mp4")
    one_version, two_version = (answer.get("VersionId", "null") for answer in (one, two))
    state = moto_server.object_state.state

    # When both are deleted for good, one by DeleteObject, one by a quiet DeleteObjects
    s3.delete_object(Bucket=bucket, Key="one.mp4", **version_of(one))
    s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "two.mp4", **version_of(two)}], "Quiet": True},
    )

    # Then nothing is known of them any more
    assert state(bucket, "one.mp4", one_version) == VersionState()
    assert state(bucket, "two.mp4", two_version) == VersionState()


def version_of(answer: dict[str, Any]) -> dict[str, str]:
    return {"VersionId": answer["VersionId"]} if "VersionId" in answer else {}


# -- everything else ------------------------------------------------------------------------


def test_ordinary_objects_are_served_as_before(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="plain.mp4", Body=BODY)
    tiered(s3, bucket, key="frequent.mp4")
    s3.put_object(Bucket=bucket, Key="sse-s3.mp4", Body=BODY, ServerSideEncryption="AES256")

    for key in ("plain.mp4", "frequent.mp4", "sse-s3.mp4"):
        head = s3.head_object(Bucket=bucket, Key=key)
        assert not {"ArchiveStatus", "Restore", "SSECustomerAlgorithm"} & set(head)
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == BODY
        answer = probe(s3, bucket, key)
        assert (answer.status, answer.data) == (206, BODY[:1])


def test_glacier_objects_are_still_refused_by_moto_until_restored(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="glacier.mp4", Body=BODY, StorageClass="GLACIER")

    assert error_of(probe(s3, bucket, "glacier.mp4"))[:2] == (403, "InvalidObjectState")
    s3.restore_object(Bucket=bucket, Key="glacier.mp4", RestoreRequest={"Days": 1})
    assert probe(s3, bucket, "glacier.mp4").status == 206
