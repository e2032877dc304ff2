"""What a scenario uploads and how S3 tells the function about it.

Objects are put into moto's S3 for real (several uploader threads, one client each), and
each one's notification is built with local_stack.events.s3_notification, as S3 would write
it. Delivery is at least once and in no particular order: a share of the notifications is
delivered twice (the very same event, as S3 repeats it), and the whole list is shuffled.
"""

from __future__ import annotations

import concurrent.futures
import copy
import os
import random
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import boto3

from local_stack.events import Uploaded, s3_notification

# What should become of an object when nothing goes wrong on the way.
Expect = Literal["import", "skip", "fail"]
UPLOAD_THREADS = 4
CLOSE_BEHIND_RATE = 15.0  # first deliveries per second the instances take, for repeat timing
MISSING_PROJECT = "nosuchproj1"
IMPORTABLE_EXTENSIONS = ("mp4", "mov", "MP4", "mkv", "m4v", "webm", "wav", "m4a", "avi")
WORDS = (
    "keynote",
    "demo",
    "Q3 review",
    "café",
    "C++ talk",
    "100% final",
    "a+b",
    "día",
    "日本",
    "launch (2026)",
)


@dataclass(frozen=True)
class ObjectPlan:
    """One object to upload, and what should become of it."""

    key: str
    body: bytes
    expect: Expect
    metadata: dict[str, str] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class PlacedObject:
    """An object as it is in the bucket (or as an event names it, if it is not there)."""

    plan: ObjectPlan
    uploaded: Uploaded

    @property
    def bucket(self) -> str:
        return self.uploaded.bucket

    @property
    def key(self) -> str:
        return self.uploaded.key

    @property
    def version(self) -> str:
        """The record's sort key: the versionId, else the ETag."""
        return self.uploaded.version_id or self.uploaded.etag

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.bucket, self.key, self.version)


@dataclass(frozen=True)
class Delivery:
    """One hand-over of an event to Lambda."""

    event: Any
    label: str
    repeat: bool = False  # True for S3's second delivery of the same notification
    delay: float = 0.0  # seconds after the run starts delivering


def body_for(index: int, size: int = 2048) -> bytes:
    """A few KiB that start like an MP4 and differ per object."""
    head = b"\x00\x00\x00\x18ftypmp42"
    filler = f"object {index} ".encode() * (size // 8)
    return (head + filler)[:size]


def standard_objects(
    count: int, rng: random.Random, prefix: str, failing_share: float = 0.0
) -> list[ObjectPlan]:
    """`count` media objects with unique file names (so Wistia's media names are unique) in
    a few folders; `failing_share` of them name a Wistia project that does not exist, which
    Wistia refuses for good (400), so they must end in the dead-letter queue."""
    plans = []
    failing = set(rng.sample(range(count), round(count * failing_share)))
    for index in range(count):
        word = WORDS[index % len(WORDS)]
        extension = IMPORTABLE_EXTENSIONS[index % len(IMPORTABLE_EXTENSIONS)]
        key = f"{prefix}/batch {index % 7}/{index:05d} {word}.{extension}"
        size = 1024 + rng.randrange(3072)
        if index in failing:
            plans.append(
                ObjectPlan(
                    key,
                    body_for(index, size),
                    "fail",
                    metadata={"wistia-project-id": MISSING_PROJECT},
                    note="names a Wistia project that does not exist",
                )
            )
        else:
            plans.append(ObjectPlan(key, body_for(index, size), "import"))
    return plans


_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def s3_client() -> Any:
    """One S3 client per endpoint, shared by the uploader threads (clients are thread-safe,
    creating them is slow and not)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    with _clients_lock:
        if endpoint not in _clients:
            _clients[endpoint] = boto3.session.Session().client("s3")
        return _clients[endpoint]


def upload_all(bucket: str, plans: list[ObjectPlan]) -> list[PlacedObject]:
    """Put every object (from a few threads); in the order given."""
    client = s3_client()

    def put(plan: ObjectPlan) -> PlacedObject:
        answer = client.put_object(
            Bucket=bucket, Key=plan.key, Body=plan.body, Metadata=plan.metadata
        )
        uploaded = Uploaded(
            bucket,
            plan.key,
            answer.get("VersionId"),
            str(answer["ETag"]).strip('"'),
            len(plan.body),
        )
        return PlacedObject(plan, uploaded)

    with concurrent.futures.ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        return list(pool.map(put, plans))


def at_least_once(
    objects: list[PlacedObject],
    duplicate_share: float,
    rng: random.Random,
    close_behind: bool = False,
) -> list[Delivery]:
    """One notification per object, `duplicate_share` of them delivered twice, all shuffled;
    with `close_behind`, each repeat follows its first delivery by 0.5 to 2 s (as S3's
    repeats often do) instead of coming anywhere in the run."""
    repeated = set(rng.sample(range(len(objects)), round(len(objects) * duplicate_share)))
    firsts = []
    repeats: dict[int, Delivery] = {}
    for index, placed in enumerate(objects):
        event = s3_notification(placed.uploaded)
        firsts.append((index, Delivery(event, placed.key)))
        if index in repeated:
            repeats[index] = Delivery(copy.deepcopy(event), placed.key, repeat=True)
    if not close_behind:
        deliveries = [delivery for _, delivery in firsts] + list(repeats.values())
        rng.shuffle(deliveries)
        return deliveries
    rng.shuffle(firsts)
    deliveries = []
    for position, (index, delivery) in enumerate(firsts):
        deliveries.append(delivery)
        if index in repeats:
            # The first deliveries go out at about the rate the instances take them.
            lag = position / CLOSE_BEHIND_RATE + rng.uniform(0.5, 2.0)
            deliveries.append(replace(repeats[index], delay=lag))
    return deliveries
