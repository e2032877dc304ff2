"""The local stack follows template.yaml's parameters as `sam deploy` would: what a deploy
with these values creates, and the environment the function then gets."""

from __future__ import annotations

import uuid

import boto3
import pytest

from local_stack.aws import LocalAws
from local_stack.events import eventbridge_event, upload
from local_stack.harness import CapturedLogger, LambdaContext, make_importer, record_of
from local_stack.template import provision
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from wistia_emulator import WistiaEmulator

TOKEN = "test-token"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20
SIGNING_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wistia-signer-AbCdEf"


def bucket_names() -> set[str]:
    return {b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]}


def test_an_existing_bucket_is_used_as_it_is_and_its_eventbridge_events_import(
    moto_server: LocalAws, wistia_emulator: WistiaEmulator, captured_log: CapturedLogger
) -> None:
    # Given the user's own bucket, unversioned, as many existing buckets are
    name = f"their-media-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    before = bucket_names()

    # When the stack is deployed on it
    stack = provision(token=TOKEN, parameters={"ExistingBucketName": name})

    # Then no bucket is created and the stack imports from that one
    assert stack.bucket == name
    assert stack.parameters["ExistingBucketName"] == name
    # (beyond the backfill's own reports bucket, which every stack has)
    assert bucket_names() == before | {stack.resources["BackfillReportsBucket"]}
    importer = make_importer(
        Settings.from_env(stack.environment_for(wistia_emulator.url)), captured_log.logger
    )
    obj = upload(name, "incoming/Quarterly review.mp4", VIDEO)
    answer = handle_event(
        eventbridge_event(obj),
        LambdaContext(),
        importer,
        importer.dead_letters,
        captured_log.logger,
    )
    assert answer["results"][0]["status"] == "SUBMITTED"
    # An unversioned bucket's object version is its ETag
    assert obj.version_id is None
    record = record_of(stack.table_name, name, obj.key, obj.etag)
    assert record is not None and record["status"] == "SUBMITTED"


def test_wistia_parameters_reach_the_function_only_when_set(moto_server: LocalAws) -> None:
    project_map = '{"clients/acme/":"abc123def4"}'

    default = provision(token=TOKEN).function_environment
    configured = provision(
        token=TOKEN,
        parameters={
            "WistiaProjectMap": project_map,
            "SigningCredentialsSecretArn": SIGNING_SECRET,
            "PresignedUrlExpires": "604800",
        },
    ).function_environment

    assert not {"WISTIA_PROJECT_MAP", "SIGNING_CREDENTIALS_SECRET"} & set(default)
    assert configured["WISTIA_PROJECT_MAP"] == project_map
    assert configured["SIGNING_CREDENTIALS_SECRET"] == SIGNING_SECRET
    assert configured["PRESIGNED_URL_EXPIRES"] == "604800"


def test_a_parameter_the_template_lacks_is_refused(moto_server: LocalAws) -> None:
    with pytest.raises(ValueError, match="no parameter BucketName"):
        provision(token=TOKEN, parameters={"BucketName": "x"})
