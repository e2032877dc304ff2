"""Events shaped like AWS's, built from the fixtures in events/ for real local objects."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3

from local_stack.aws import next_sequencer

EVENTS = Path(__file__).resolve().parents[2] / "events"


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    key: str
    version_id: str | None
    etag: str
    size: int


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return document


def upload(bucket: str, key: str, body: bytes, metadata: dict[str, str] | None = None) -> Uploaded:
    answer = boto3.client("s3").put_object(
        Bucket=bucket, Key=key, Body=body, Metadata=metadata or {}
    )
    return Uploaded(bucket, key, answer.get("VersionId"), answer["ETag"].strip('"'), len(body))


def encoded_key(key: str) -> str:
    """The key as S3 writes it into notifications: URL-encoded, spaces as '+'."""
    return quote_plus(key, safe="/")


def s3_record(obj: Uploaded) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(fixture("s3-object-created.json")["Records"][0])
    record["s3"]["bucket"]["name"] = obj.bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{obj.bucket}"
    record["s3"]["object"] = {
        "key": encoded_key(obj.key),
        "size": obj.size,
        "eTag": obj.etag,
        "sequencer": next_sequencer(),
    }
    if obj.version_id:
        record["s3"]["object"]["versionId"] = obj.version_id
    return record


def s3_notification(*objects: Uploaded) -> dict[str, Any]:
    return {"Records": [s3_record(obj) for obj in objects]}


def sqs_batch(*bodies: str) -> dict[str, Any]:
    template = fixture("sqs-s3-notification.json")["Records"][0]
    records = []
    for body in bodies:
        record = copy.deepcopy(template)
        record["messageId"] = str(uuid.uuid4())
        record["body"] = body
        records.append(record)
    return {"Records": records}


def eventbridge_event(obj: Uploaded) -> dict[str, Any]:
    event = fixture("eventbridge-object-created.json")
    event["id"] = str(uuid.uuid4())
    event["resources"] = [f"arn:aws:s3:::{obj.bucket}"]
    event["detail"]["bucket"]["name"] = obj.bucket
    event["detail"]["object"] = {"key": encoded_key(obj.key), "size": obj.size, "etag": obj.etag}
    if obj.version_id:
        event["detail"]["object"]["version-id"] = obj.version_id
    return event
