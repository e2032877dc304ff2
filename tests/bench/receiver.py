"""The webhook receiver against the floor of the same work: its cold start, and the time of
one warm POST (a Function URL event holding a few signed events).

The floor, per POST: verify the HMAC-SHA256 signature (constant time), parse the body, and
one conditional UpdateItem per event, knowing the record's key already: the least any
receiver must do. A second floor adds what this one cannot skip: the hashed-id index query
that finds the record of an event's media. No logging, metrics or tracing in either.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from bench.cold_start import Instructions
from bench.environment import ROOT
from bench.receiver_floor import KEY
from bench.workers import Samples, Worker

WEBHOOK_DIR = ROOT / "functions" / "webhook"
START = time.time()
EVENTS_PER_POST = 3

FUNCTION_SCRIPT = """
import time
started = time.perf_counter()
import webhook.handler
print("BENCH", time.perf_counter() - started)
"""

FLOOR_SCRIPT = """
import time
started = time.perf_counter()
import hashlib, hmac, json
import boto3
session = boto3.session.Session()
session.client("dynamodb")
print("BENCH", time.perf_counter() - started)
"""


# Medias per side, each POST's events for the next ones in turn: Wistia sends each media
# several events. Few records also keep moto's index query (a scan of the table, where
# DynamoDB's is a key lookup) from growing with the bench.
MEDIAS_PER_SIDE = 30


@dataclass
class Records:
    """Records awaiting their media's status; each POST names the next ones, in turn."""

    table: str
    prefix: str
    count: int
    keys: dict[str, list[str]] = field(default_factory=dict)
    _next: int = 0

    def create(self) -> None:
        db = boto3.client("dynamodb")
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        for n in range(self.count):
            hashed_id = f"{self.prefix}{n:06d}"
            uri = f"s3://bench/{self.prefix}/clip {n:06d}.mp4"
            item = {
                "object_uri": {"S": uri},
                "object_version": {"S": "v1"},
                "bucket": {"S": "bench"},
                "object_key": {"S": f"{self.prefix}/clip {n:06d}.mp4"},
                "status": {"S": "SUBMITTED"},
                "wistia_hashed_id": {"S": hashed_id},
                "submitted_at": {"S": now},
                "media_watch": {"S": "pending"},
                "media_checked_at": {"S": now},
            }
            db.put_item(TableName=self.table, Item=item)
            self.keys[hashed_id] = [uri, "v1"]

    def take(self, count: int) -> list[str]:
        taken = [f"{self.prefix}{(self._next + n) % self.count:06d}" for n in range(count)]
        self._next += count
        return taken


_sent = itertools.count()


def signed_event(hashed_ids: list[str], key: str = KEY) -> dict[str, Any]:
    """A Function URL event (payload 2.0) carrying one media.processing event per media,
    each POST's events a second later than the last's, so every event is news."""
    at = time.gmtime(START + next(_sent))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", at)
    body = json.dumps(
        {
            "hook": {"uuid": "bench-hook"},
            "events": [
                {
                    "uuid": uuid.uuid4().hex,
                    "type": "media.processing",
                    "generated_at": stamp,
                    "metadata": {"account_id": "bench"},
                    "payload": {"media": {"id": hashed_id, "name": "clip.mp4"}},
                }
                for hashed_id in hashed_ids
            ],
        }
    )
    signature = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "rawPath": "/",
        "headers": {
            "content-type": "application/json",
            "user-agent": "Wistia-Webhooks/0.0.47",
            "x-wistia-signature": signature,
        },
        "requestContext": {"http": {"method": "POST", "sourceIp": "127.0.0.1"}},
        "body": body,
        "isBase64Encoded": False,
    }


@dataclass
class ReceiverResults:
    cold_function: list[float]
    cold_floor: list[float]
    first: Samples
    first_floor: Samples
    warm: dict[str, Samples]
    posts: int
    # The cold start in instructions executed (filled in by the bench when it counts them).
    instructions: Instructions = field(default_factory=lambda: Instructions("not counted"))


def receiver_environment(env: dict[str, str]) -> dict[str, str]:
    """The measured processes' environment with the receiver's code first on the path."""
    return {
        **env,
        "PYTHONPATH": os.pathsep.join([str(WEBHOOK_DIR), env["PYTHONPATH"]]),
        "LAMBDA_TASK_ROOT": str(WEBHOOK_DIR),
        "_HANDLER": "webhook.handler.lambda_handler",
    }


def measure(
    env: dict[str, str],
    table: str,
    cold_runs: int,
    first_runs: int,
    posts: int,
    warmup: int,
    progress: Callable[[str], None],
    run_child: Callable[..., Any],
) -> ReceiverResults:
    env = receiver_environment(env)
    progress(f"webhook receiver, cold start: {cold_runs} fresh processes each, alternating")
    cold: dict[str, list[float]] = {"function": [], "floor": []}
    for script in (FUNCTION_SCRIPT, FLOOR_SCRIPT):
        run_child(script, env)  # bytecode and page cache; not counted
    for run in range(cold_runs):
        order = ("function", "floor") if run % 2 == 0 else ("floor", "function")
        for side in order:
            script = FUNCTION_SCRIPT if side == "function" else FLOOR_SCRIPT
            cold[side].append(run_child(script, env).inside)

    per_post = EVENTS_PER_POST
    sides = ("webhook", "webhook-floor", "webhook-floor-lookup")
    pools = {
        side: Records(table, f"{side[:2]}{n}", MEDIAS_PER_SIDE) for n, side in enumerate(sides)
    }
    progress(f"webhook receiver: {sum(p.count for p in pools.values())} records to update")
    for pool in pools.values():
        pool.create()

    def post(worker: Worker, side: str, into: Samples | None) -> None:
        event = signed_event(pools[side].take(per_post))
        answer = worker.call(op="post", event=event, keys=pools[side].keys)
        if into is not None:
            into.add(answer)

    first, first_floor = Samples(), Samples()
    progress(f"webhook receiver, first POST after a cold start: {first_runs} processes each")
    for run in range(first_runs):
        pair = (("webhook", first), ("webhook-floor", first_floor))
        for side, into in pair if run % 2 == 0 else pair[::-1]:
            worker = Worker(side, env)
            try:
                post(worker, side, into)
            finally:
                worker.close()

    progress(f"webhook receiver, warm: {warmup} + {posts} POSTs of {per_post} events each side")
    warm = {side: Samples() for side in sides}
    workers = {side: Worker(side, env) for side in sides}
    try:
        for _ in range(warmup):
            for side in sides:
                post(workers[side], side, None)
        for index in range(posts):
            rotation = sides[index % 3 :] + sides[: index % 3]
            for side in rotation:
                post(workers[side], side, warm[side])
    finally:
        for worker in workers.values():
            worker.close()
    return ReceiverResults(cold["function"], cold["floor"], first, first_floor, warm, posts)
