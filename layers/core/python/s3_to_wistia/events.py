"""Reading the three event shapes the function accepts into ObjectRefs.

S3 writes keys URL-encoded with spaces as '+', in notifications and in EventBridge
events alike: "red flower.mp4" arrives as "red+flower.mp4". Keys are decoded here,
once, and nowhere else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus

from s3_to_wistia.errors import UnsupportedEvent
from s3_to_wistia.model import ObjectRef, Removal

EventKind = Literal["s3", "sqs", "eventbridge"]


@dataclass(frozen=True)
class Parsed:
    objects: list[ObjectRef]
    # Records the function is not for (restore, test events): logged, not failed.
    ignored: list[str]
    # Deletions: recorded, and followed at Wistia when ON_DELETE asks.
    removals: list[Removal] = field(default_factory=list)


def event_kind(event: object) -> EventKind:
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict):
            source = records[0].get("eventSource")
            if source == "aws:sqs":
                return "sqs"
            if source == "aws:s3":
                return "s3"
        if event.get("source") == "aws.s3" and "detail" in event:
            return "eventbridge"
    raise UnsupportedEvent(
        "not an S3 notification, an SQS message batch or an EventBridge S3 event: "
        f"{_describe(event)}"
    )


def parse_notification(payload: object) -> Parsed:
    """Objects named by an S3 notification or an EventBridge S3 event (not SQS)."""
    if isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent":
        return Parsed([], ["s3:TestEvent sent when the notification was configured"])
    kind = event_kind(payload)
    if kind == "eventbridge" and isinstance(payload, dict):
        return _from_eventbridge(payload)
    if kind == "s3" and isinstance(payload, dict):
        return _from_s3_records(payload["Records"])
    raise UnsupportedEvent("an SQS batch inside an SQS message is not supported")


def parse_sqs_body(body: str) -> Parsed:
    """Objects named by one SQS message whose body is an S3 or EventBridge notification."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise UnsupportedEvent(f"SQS message body is not JSON: {body[:200]!r}") from None
    return parse_notification(payload)


def _from_s3_records(records: list[Any]) -> Parsed:
    objects: list[ObjectRef] = []
    removals: list[Removal] = []
    ignored: list[str] = []
    for record in records:
        try:
            name = record["eventName"]
            if name.startswith("ObjectRemoved:"):
                removals.append(_s3_removal(record, name))
                continue
            if not name.startswith("ObjectCreated:"):
                ignored.append(f"{name} event for s3://{record['s3']['bucket']['name']}")
                continue
            s3 = record["s3"]
            obj = s3["object"]
            objects.append(
                ObjectRef(
                    bucket=s3["bucket"]["name"],
                    key=_decoded_key(obj["key"]),
                    version_id=obj.get("versionId") or None,
                    etag=obj.get("eTag") or None,
                    size=_size(obj.get("size")),
                    source_event=record,
                    sequencer=_sequencer(obj.get("sequencer")),
                )
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise UnsupportedEvent(f"S3 record without {error}: {_describe(record)}") from None
    return Parsed(objects, ignored, removals)


def _s3_removal(record: dict[str, Any], name: str) -> Removal:
    s3 = record["s3"]
    obj = s3["object"]
    return Removal(
        bucket=s3["bucket"]["name"],
        key=_decoded_key(obj["key"]),
        version_id=obj.get("versionId") or None,
        sequencer=_sequencer(obj.get("sequencer")),
        delete_marker=name == "ObjectRemoved:DeleteMarkerCreated",
        source_event=record,
    )


def _from_eventbridge(event: dict[str, Any]) -> Parsed:
    detail_type = event.get("detail-type")
    if detail_type not in ("Object Created", "Object Deleted"):
        return Parsed([], [f"EventBridge {detail_type!r} event"])
    try:
        detail = event["detail"]
        obj = detail["object"]
        bucket, key = detail["bucket"]["name"], _decoded_key(obj["key"])
        version_id = obj.get("version-id") or None
        sequencer = _sequencer(obj.get("sequencer"))
        if detail_type == "Object Deleted":
            removal = Removal(
                bucket=bucket,
                key=key,
                version_id=version_id,
                sequencer=sequencer,
                delete_marker=detail.get("deletion-type") == "Delete Marker Created",
                source_event=event,
            )
            return Parsed([], [], [removal])
        ref = ObjectRef(
            bucket=bucket,
            key=key,
            version_id=version_id,
            etag=obj.get("etag") or None,
            size=_size(obj.get("size")),
            source_event=event,
            sequencer=sequencer,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise UnsupportedEvent(
            f"EventBridge S3 event without {error}: {_describe(event)}"
        ) from None
    return Parsed([ref], [])


def _sequencer(raw: object) -> str | None:
    """S3's sequencer, a hex string; anything else is no order at all (None)."""
    if isinstance(raw, str) and raw and all(c in "0123456789abcdefABCDEF" for c in raw):
        return raw.upper()
    return None


def _decoded_key(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise UnsupportedEvent(f"object key must be a non-empty string, got {raw!r}")
    return unquote_plus(raw)


def _size(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise UnsupportedEvent(f"object size must be a number, got {raw!r}")
    try:
        return int(raw)
    except ValueError:
        raise UnsupportedEvent(f"object size must be a number, got {raw!r}") from None


def _describe(value: object) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 300 else text[:300] + "..."
