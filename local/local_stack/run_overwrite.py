"""`make run`'s overwrite: one sample uploaded again with a new file (OnOverwrite=replace,
the default). S3 notifies the function as for any upload; the new version is imported as
a media of its own, Wistia's webhook says when it is ready, and the status poller (its
real handler, run here on demand instead of on its schedule) swaps the new file into the
original media, which keeps its hashed id."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3

from local_stack.harness import LambdaContext, record_of, submitted_imports
from local_stack.report import Console
from local_stack.template import Stack
from wistia_emulator import WistiaEmulator

OVERWRITE_TIMEOUT = 20.0
SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def follow_an_overwrite(
    console: Console,
    stack: Stack,
    emulator: WistiaEmulator,
    poller: Callable[[dict[str, Any], Any], Any],
    key: str,
    body: bytes,
) -> int:
    """Upload `key` again with `body`; 0 when the original media ended holding the new file
    under its own hashed id, 1 otherwise, with the reason."""
    before = submitted_imports(stack.table_name, stack.bucket, key)
    original = before[0].get("wistia_hashed_id") if before else None
    console.line(f"\nUploading {key} again, with a new file (OnOverwrite=replace):")
    if not original:
        console.line(f"\nNOT OK (overwrite): {key} had no media to replace")
        return 1
    emulator.set_video_limit(None)  # the new file is a media of its own until the swap
    version = boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=body)["VersionId"]
    record = _swapped(stack, emulator, poller, key, version)
    swaps = [s for s in emulator.swaps() if s["hashed_id"] == original]
    if record is None or record.get("swap_status") != "swapped" or not swaps:
        console.line(
            f"\nNOT OK (overwrite): after {OVERWRITE_TIMEOUT:g} s the new version's record says "
            f"swap {record.get('swap_status') if record else None!r}; swaps at Wistia: {swaps}"
        )
        return 1
    console.line(
        f"  new version imported as media {record['wistia_hashed_id']}, ready, then swapped "
        f"into {original} by the poller"
    )
    console.line(
        f"\nOK: the overwrite kept its hashed id: media {original} now holds the new file "
        f"(sha256 {swaps[-1]['sha256'][:12]}..., was {swaps[-1]['previous_sha256'][:12]}...)."
    )
    return 0


def _swapped(
    stack: Stack,
    emulator: WistiaEmulator,
    poller: Callable[[dict[str, Any], Any], Any],
    key: str,
    version: str,
) -> dict[str, Any] | None:
    """Run the poller until the new version's swap is done (or the time is up)."""
    ends = time.monotonic() + OVERWRITE_TIMEOUT
    record = None
    while time.monotonic() < ends:
        emulator.wait_until_settled(timeout=2)
        emulator.wait_until_webhooks_delivered(timeout=2)
        poller(SCHEDULED, LambdaContext(timeout_seconds=60))
        record = record_of(stack.table_name, stack.bucket, key, version)
        if record and record.get("swap_status") not in (None, "due", "requested"):
            return record
        time.sleep(0.2)
    return record
