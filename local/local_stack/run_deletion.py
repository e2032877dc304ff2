"""`make run`'s last act: an object deleted from the bucket, and its media deleted at Wistia
(the run's stack has OnDelete=delete).

The object is deleted through S3 as a user would. moto's S3 sends no notification for a
delete marker in a versioned bucket, so this stand-in puts the ObjectRemoved event S3 would
send on the same delivery queue as the uploads' (its sequencer after the object's write, as
S3 orders a key's events), and the real import function follows it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

import boto3

from local_stack.aws import next_sequencer
from local_stack.events import encoded_key, fixture
from local_stack.harness import record_of, submitted_imports
from local_stack.report import Console
from local_stack.template import Stack
from wistia_emulator import WistiaEmulator

DELETION_TIMEOUT = 15.0


def follow_a_deletion(
    console: Console,
    stack: Stack,
    emulator: WistiaEmulator,
    queue_url: str,
    key: str,
    landed: Callable[[], object] = lambda: None,
) -> int:
    """Delete `key` (a delete marker: the bucket is versioned); 0 when its media ended
    deleted at Wistia and the deletion was recorded, 1 otherwise, with the reason."""
    imports = submitted_imports(stack.table_name, stack.bucket, key)
    record = imports[-1] if imports else None
    hashed_id = record.get("wistia_hashed_id") if record else None
    console.line(f"\nDeleting {key} from the bucket (OnDelete=delete):")
    if not hashed_id:
        console.line(f"\nNOT OK (deletion): {key} had no media to follow")
        return 1
    marker = boto3.client("s3").delete_object(Bucket=stack.bucket, Key=key).get("VersionId")
    boto3.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(removed_event(stack.bucket, key, marker)),
    )
    deletion = _wait_for_record(stack, key, f"deleted:{marker}")
    landed()
    media = next((m for m in emulator.medias() if m["hashed_id"] == hashed_id), {})
    if deletion is None:
        console.line(f"\nNOT OK (deletion): no record of the deletion after {DELETION_TIMEOUT:g} s")
        return 1
    if deletion.get("media_action") != "deleted" or not media.get("deleted"):
        console.line(
            f"\nNOT OK (deletion): the record says {deletion.get('media_action')!r} "
            f"({deletion.get('error', '')}); Wistia's media deleted: {media.get('deleted')}"
        )
        return 1
    console.line(
        f"\nOK: the deletion was followed: media {hashed_id} deleted at Wistia, the deletion "
        "recorded beside the object's import."
    )
    return 0


def removed_event(bucket: str, key: str, marker: str | None) -> dict[str, Any]:
    """The notification S3 sends for a delete marker (its sequencer after the writes')."""
    record = copy.deepcopy(fixture("s3-object-created.json")["Records"][0])
    record["eventName"] = "ObjectRemoved:DeleteMarkerCreated"
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"] = {"key": encoded_key(key), "sequencer": next_sequencer()}
    if marker:
        record["s3"]["object"]["versionId"] = marker
    return {"Records": [record]}


def _wait_for_record(stack: Stack, key: str, version: str) -> dict[str, Any] | None:
    ends = time.monotonic() + DELETION_TIMEOUT
    while time.monotonic() < ends:
        record = record_of(stack.table_name, stack.bucket, key, version)
        if record and record.get("status") in ("DELETED", "FAILED"):
            return record
        time.sleep(0.1)
    return None
