"""In-memory stand-ins for the core's ports, with the semantics the adapters have in AWS:
the records' conditional claim, a queue that keeps what it is sent, Wistia answering from a
script. They let the whole Importer run in microseconds, without a socket."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from s3_to_wistia.config import Settings
from s3_to_wistia.contracts import (
    MEDIA_FAILED_REASON,
    MEDIA_WATCHING,
    PREVIOUS_MEDIA_ATTRIBUTES,
    DeadLetterMessage,
    ImportRecord,
    MediaStatusChange,
    RecordFields,
    StatusWrite,
)
from s3_to_wistia.errors import (
    AlreadyHandled,
    ClaimedElsewhere,
    ObjectGone,
    RetryableError,
    WistiaUnreachable,
)
from s3_to_wistia.importing import Importer
from s3_to_wistia.model import (
    Claim,
    ObjectInfo,
    ObjectRef,
    PendingMedia,
    PresignedUrl,
    ProbeAnswer,
    RecordKey,
    Status,
    WistiaAnswer,
)
from s3_to_wistia.times import iso_now

FINAL = frozenset({Status.SUBMITTED.value, Status.FAILED.value, Status.SKIPPED.value})
SETTINGS = Settings(
    token_secret_id="token-secret",
    imports_table_name="imports",
    dead_letter_queue_url="https://sqs.example/dlq",
)


def obj(key: str = "clips/demo.mp4", size: int | None = 1000, version: str = "v1") -> ObjectRef:
    record = {"eventSource": "aws:s3", "s3": {"object": {"key": key}}}
    return ObjectRef("media", key, version, '"etag"', size, record)


class Clock:
    """Time that passes only when someone sleeps."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class FakeObjects:
    """The bucket: objects by key; a missing key is gone."""

    objects: dict[str, ObjectInfo] = field(default_factory=dict)
    failure: Exception | None = None
    probe_answer: ProbeAnswer = field(default_factory=lambda: ProbeAnswer(206, etag='"etag"'))
    probes: list[str] = field(default_factory=list)

    def put(self, key: str, size: int = 1000, **metadata: str) -> None:
        self.objects[key] = ObjectInfo(size, "video/mp4", metadata)

    def head(self, ref: ObjectRef) -> ObjectInfo:
        if self.failure is not None:
            raise self.failure
        if ref.key not in self.objects:
            raise ObjectGone("the object was deleted before it could be imported")
        return self.objects[ref.key]

    def presign(self, ref: ObjectRef, expires_in: int) -> PresignedUrl:
        url = f"https://media.s3.example/{ref.key}?X-Amz-Signature=secret-signature"
        return PresignedUrl(url, 1_800_000_000.0 + expires_in)

    def probe(self, url: str) -> ProbeAnswer:
        self.probes.append(url)
        return self.probe_answer


@dataclass
class FakeRecords:
    """The records table with the claim's conditions: a new, PENDING_RETRY or expired
    record can be claimed; a final one cannot."""

    clock: Callable[[], float]
    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    lookups: int = 0
    writes: int = 0
    pending_queries: int = 0

    def claim(self, ref: ObjectRef, lease_until: float) -> Claim:
        key = (ref.uri, ref.version)
        old = self.items.get(key, {})
        status = old.get("status")
        if status in FINAL:
            raise AlreadyHandled(status)
        if status == Status.IN_PROGRESS.value and old["lease_expires_at"] >= self.clock():
            raise ClaimedElsewhere("another invocation is importing this object version")
        claim_id = uuid.uuid4().hex
        self.items[key] = {
            **old,
            "bucket": ref.bucket,
            "object_key": ref.key,
            "object_version": ref.version,
            "status": Status.IN_PROGRESS.value,
            "claim_id": claim_id,
            "lease_expires_at": lease_until,
        }
        unanswered = int(old.get("unanswered_submits", 0))
        first_submit_at = old.get("first_submit_at")
        if status == Status.IN_PROGRESS.value:
            unanswered = max(unanswered, 1)
            first_submit_at = first_submit_at or old.get("updated_at")
        return Claim(claim_id, unanswered, first_submit_at, old.get("timed_out_at"))

    def record_skipped(self, ref: ObjectRef, reason: str) -> None:
        key = (ref.uri, ref.version)
        if self.items.get(key, {}).get("status") in (None, Status.PENDING_RETRY.value):
            self.items[key] = {
                "bucket": ref.bucket,
                "object_key": ref.key,
                "object_version": ref.version,
                "status": Status.SKIPPED.value,
                "error": reason,
            }

    def finish(self, ref: ObjectRef, claim: Claim, status: Status, fields: RecordFields) -> None:
        item = self.items[(ref.uri, ref.version)]
        if item.get("claim_id") != claim.claim_id:
            raise RetryableError("lost the claim on the import record")
        if fields.wistia_hashed_id is not None:
            for name in PREVIOUS_MEDIA_ATTRIBUTES:
                item.pop(name, None)
        item.update(fields.attributes(), status=status.value, updated_at=iso_now())
        item.pop("claim_id")
        item.pop("lease_expires_at")

    def release(self, ref: ObjectRef, claim: Claim, fields: RecordFields) -> None:
        self.finish(ref, claim, Status.PENDING_RETRY, fields)

    def recorded_media(self, hashed_ids: list[str]) -> set[str]:
        held = {item.get("wistia_hashed_id") for item in self.items.values()}
        return {hashed_id for hashed_id in hashed_ids if hashed_id in held}

    def records_of_key(self, bucket: str, key: str) -> list[ImportRecord]:
        uri = f"s3://{bucket}/{key}"
        return [ImportRecord.from_attributes(v) for (u, _), v in self.items.items() if u == uri]

    def record(self, ref: ObjectRef) -> ImportRecord:
        return ImportRecord.from_attributes(self.items[(ref.uri, ref.version)])

    # --- the media's processing (MediaRecords), with the adapter's conditions ---------------

    def add_submitted(self, ref: ObjectRef, hashed_id: str, submitted_at: str) -> RecordKey:
        """A record as the importer leaves it once Wistia accepted the import."""
        self.items[(ref.uri, ref.version)] = {
            "object_uri": ref.uri,
            "bucket": ref.bucket,
            "object_key": ref.key,
            "object_version": ref.version,
            "status": Status.SUBMITTED.value,
            "wistia_hashed_id": hashed_id,
            "submitted_at": submitted_at,
            "attempts": 1,
            "media_watch": MEDIA_WATCHING,
            "media_checked_at": submitted_at,
            "source_event": ref.source_event,
        }
        return RecordKey(ref.uri, ref.version)

    def item(self, key: RecordKey) -> dict[str, Any]:
        return self.items[(key.object_uri, key.object_version)]

    def records_of_media(self, hashed_id: str) -> list[RecordKey]:
        self.lookups += 1
        return [
            RecordKey(uri, version)
            for (uri, version), item in self.items.items()
            if item.get("wistia_hashed_id") == hashed_id
        ]

    def apply_media_status(
        self, key: RecordKey, hashed_id: str, change: MediaStatusChange
    ) -> StatusWrite:
        self.writes += 1
        item = self.items.get((key.object_uri, key.object_version))
        if item is None or item.get("wistia_hashed_id") != hashed_id:
            return StatusWrite(False, None)
        before = ImportRecord.from_attributes(dict(item))
        if item.get("media_event") is not None and not item["media_event"] < change.order:
            return StatusWrite(False, before)
        item.update(change.sets(), updated_at=change.checked_at)
        for name, value in change.sets_if_absent().items():
            item.setdefault(name, value)
        for name in change.removes():
            item.pop(name, None)
        return StatusWrite(True, before)

    def claim_media_failure(
        self, key: RecordKey, hashed_id: str, now: str, stale_before: str
    ) -> ImportRecord | None:
        item = self.items[(key.object_uri, key.object_version)]
        due = item.get("media_dead_letter_due")
        claimable = item.get("status") == Status.SUBMITTED.value or (
            item.get("status") == Status.FAILED.value and due is not None and due < stale_before
        )
        if not (
            item.get("wistia_hashed_id") == hashed_id
            and item.get("media_status") == "failed"
            and "media_watch" in item
            and claimable
        ):
            return None
        item.update(
            status=Status.FAILED.value,
            error=MEDIA_FAILED_REASON,
            media_dead_letter_due=now,
            updated_at=now,
        )
        return ImportRecord.from_attributes(dict(item))

    def settle_media_failure(self, key: RecordKey, hashed_id: str, claimed_at: str) -> None:
        item = self.items[(key.object_uri, key.object_version)]
        if item.get("media_dead_letter_due") == claimed_at:
            item.pop("media_watch", None)
            item.pop("media_dead_letter_due", None)

    def release_media_failure(self, key: RecordKey, hashed_id: str, claimed_at: str) -> None:
        item = self.items[(key.object_uri, key.object_version)]
        if item.get("media_dead_letter_due") == claimed_at:
            item["media_dead_letter_due"] = "1970-01-01T00:00:00.000Z"

    def mark_swap_due(self, key: RecordKey, hashed_id: str, now: str) -> bool:
        item = self.items.get((key.object_uri, key.object_version))
        if not item or item.get("swap_status") or not item.get("replaces_wistia_hashed_id"):
            return False
        item.update(media_watch="swap", media_checked_at=now, swap_status="due")
        return True

    def pending_media(self, checked_before: str, limit: int) -> list[PendingMedia]:
        self.pending_queries += 1
        found = sorted(
            (
                (item["media_checked_at"], RecordKey(uri, version), item)
                for (uri, version), item in self.items.items()
                if item.get("media_watch") == MEDIA_WATCHING
                and item.get("media_checked_at", "") < checked_before
            ),
            key=lambda entry: entry[0],
        )
        return [
            PendingMedia(key, item["wistia_hashed_id"], item.get("media_status"), checked)
            for checked, key, item in found[:limit]
        ]


@dataclass
class FakeDeadLetters:
    sent: list[dict[str, Any]] = field(default_factory=list)
    down: bool = False

    def send(self, message: DeadLetterMessage) -> None:
        if self.down:
            raise RetryableError("could not write to the dead-letter queue")
        self.sent.append(json.loads(message.to_json()))


Answer = WistiaAnswer | Exception


def ok(hashed_id: str = "abc123", **fields: Any) -> WistiaAnswer:
    body = {"id": 1, "hashed_id": hashed_id, "name": "demo.mp4", **fields}
    return WistiaAnswer(200, json.dumps(body).encode(), "application/json", None)


def status(code: int, body: str = "", retry_after: str | None = None) -> WistiaAnswer:
    content_type = "application/json" if body[:1] in ("{", "[") else "text/plain"
    return WistiaAnswer(code, body.encode(), content_type, retry_after)


def timeout() -> WistiaUnreachable:
    return WistiaUnreachable("Wistia did not answer in time", True, True)


def dropped_after_sending() -> WistiaUnreachable:
    return WistiaUnreachable("connection to Wistia dropped", maybe_received=True)


@dataclass
class ScriptedWistia:
    """Answers each import from a script (the last answer repeats), and each media list
    lookup from another; records what it was asked."""

    imports: list[Answer] = field(default_factory=lambda: [ok()])
    listings: list[Answer] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    lookups: int = 0

    def import_url(
        self, form: dict[str, str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        self.forms.append(form)
        self.tokens.append(token)
        return _next(self.imports)

    def list_medias(
        self, name: str, project_id: str | None, token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        self.lookups += 1
        return _next(self.listings or [WistiaAnswer(200, b"[]", "application/json", None)])


def _next(script: list[Answer]) -> WistiaAnswer:
    answer = script.pop(0) if len(script) > 1 else script[0]
    if isinstance(answer, Exception):
        raise answer
    return answer


@dataclass
class FakeTokens:
    """The token secret: `values` are what successive reads find (the last repeats)."""

    values: list[str] = field(default_factory=lambda: ["token-1"])
    reads: int = 0
    cached: str | None = None

    def get(self, refresh: bool = False) -> str:
        if self.cached is None or refresh:
            self.reads += 1
            self.cached = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        return self.cached


class CountingMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += int(value)


class ListLog:
    """Keeps every line as (level, message, keys)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.lines.append(("info", str(msg), kwargs))

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.lines.append(("warning", str(msg), kwargs))

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.lines.append(("error", str(msg), kwargs))

    def thread_safe_append_keys(self, **additional_keys: object) -> None:
        pass

    def thread_safe_clear_keys(self) -> None:
        pass

    def messages(self) -> list[str]:
        return [message for _, message, _ in self.lines]


@dataclass
class World:
    """An Importer wired to fakes, and the fakes to look at."""

    importer: Importer
    clock: Clock
    objects: FakeObjects
    records: FakeRecords
    dead_letters: FakeDeadLetters
    wistia: ScriptedWistia
    tokens: FakeTokens
    metrics: CountingMetrics
    log: ListLog


def world(
    imports: Iterable[Answer] = (),
    settings: Settings = SETTINGS,
    random_fraction: float = 0.5,
) -> World:
    clock = Clock()
    objects = FakeObjects()
    records = FakeRecords(clock)
    dead_letters = FakeDeadLetters()
    wistia = ScriptedWistia(imports=list(imports) or [ok()])
    tokens = FakeTokens()
    metrics = CountingMetrics()
    log = ListLog()
    importer = Importer(
        settings=settings,
        storage=objects,
        records=records,
        dead_letters=dead_letters,
        wistia=wistia,
        tokens=tokens,
        metrics=metrics,
        log=log,
        clock=clock,
        sleep=clock.sleep,
        random_fraction=lambda: random_fraction,
    )
    return World(importer, clock, objects, records, dead_letters, wistia, tokens, metrics, log)
