"""Following each media to its final status at Wistia: MediaEvents (webhook events, the
poller's readings) applied to the import records, the one code path for both.

An event applies to the record holding its media only when it is newer than the status the
record holds (media_events.order_key: a conditional write, so concurrent deliveries cannot
undo each other). A media Wistia failed turns its record FAILED and sends exactly one dead
letter: the transition SUBMITTED -> FAILED is a conditional write only one caller wins, and
only that caller sends. Should the send fail (or the caller die), the record keeps the
failure due: the next delivery of any of the media's events, or the poller, sends it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from s3_to_wistia.contracts import DeadLetterMessage, ImportRecord, MediaStatusChange
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.media_events import order_key
from s3_to_wistia.model import MediaEvent, RecordKey
from s3_to_wistia.ports import DeadLetterSink, Log, MediaRecords, MetricSink
from s3_to_wistia.times import iso_precise, parse_iso

# A failure's dead letter is being sent by someone for at most this long; after it, anyone
# may send it again (the sender died between claiming and settling it).
DEAD_LETTER_LEASE_SECONDS = 60.0
MediaEvents = list[MediaEvent]
# How the medias of one delivery are gone through: `map` one after the other, or a thread
# pool's map (the functions'), so a POST of several medias costs about one's time.
Parallel = Callable[[Callable[[Any], "Tally"], list[Any]], Iterable["Tally"]]


@dataclass
class Tally:
    """What became of the events handed over."""

    applied: int = 0
    stale: int = 0  # older than, or the same as, what the record holds: nothing changed
    unknown: int = 0  # for a media no record holds (this project did not create it)
    ignored: int = 0  # of a type that says nothing of the processing status
    failures: int = 0  # media failures dead-lettered

    def add(self, other: Tally) -> None:
        self.applied += other.applied
        self.stale += other.stale
        self.unknown += other.unknown
        self.ignored += other.ignored
        self.failures += other.failures


class KnownMedia:
    """Which records hold which media, as last looked up, for the next events of the same
    media (Wistia sends several per media): a media's record changes only when a redrive
    gives the record a new media, and every write checks that the record still holds it,
    so a stale entry costs one more lookup, never a wrong write. Bounded, thread-safe."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[str, list[RecordKey]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, hashed_id: str) -> list[RecordKey] | None:
        with self._lock:
            keys = self._keys.get(hashed_id)
            if keys is not None:
                self._keys.move_to_end(hashed_id)
            return keys

    def put(self, hashed_id: str, keys: list[RecordKey]) -> None:
        with self._lock:
            self._keys[hashed_id] = keys
            self._keys.move_to_end(hashed_id)
            while len(self._keys) > self._capacity:
                self._keys.popitem(last=False)

    def forget(self, hashed_id: str) -> None:
        with self._lock:
            self._keys.pop(hashed_id, None)


@dataclass
class StatusUpdater:
    records: MediaRecords
    dead_letters: DeadLetterSink
    metrics: MetricSink
    log: Log
    clock: Callable[[], float] = time.time
    parallel: Parallel = field(default=map)
    known: KnownMedia = field(default_factory=KnownMedia)

    def apply_events(self, events: Iterable[MediaEvent]) -> Tally:
        """Webhook events: each applied to the record(s) holding its media. Each media's
        events go in the order sent; different medias' may go at once (`parallel`): the
        conditional writes keep every record right whatever the order."""
        tally = Tally()
        by_media: dict[str, MediaEvents] = {}
        for event in events:
            if event.status is None:
                tally.ignored += 1
            else:
                by_media.setdefault(event.hashed_id, []).append(event)
        for applied in self.parallel(self._apply_media, list(by_media.values())):
            tally.add(applied)
        return tally

    def apply_readings(self, readings: list[tuple[RecordKey, MediaEvent]]) -> Tally:
        """The poller's readings, each for a record it found waiting; at once (`parallel`):
        one media each."""
        tally = Tally()
        for applied in self.parallel(self._apply_reading, readings):
            tally.add(applied)
        return tally

    def _apply_reading(self, reading: tuple[RecordKey, MediaEvent]) -> Tally:
        return self.apply_to(*reading)

    def _apply_media(self, events: MediaEvents) -> Tally:
        """One media's events: its record looked up (once, or known from an earlier event),
        then each event applied."""
        hashed_id = events[0].hashed_id
        keys = self.known.get(hashed_id)
        if keys is not None:
            tally = self._apply_all(keys, events)
            if not tally.unknown:
                return tally
            self.known.forget(hashed_id)  # the record holds another media now: look again
        keys = self.records.records_of_media(hashed_id)
        if not keys:
            self.log.info(
                "event for a media this project did not create: acknowledged, ignored",
                event_type=events[0].type,
                hashed_id=hashed_id,
            )
            return Tally(unknown=len(events))
        self.known.put(hashed_id, keys)
        return self._apply_all(keys, events)

    def _apply_all(self, keys: list[RecordKey], events: MediaEvents) -> Tally:
        tally = Tally()
        for event in events:
            for key in keys:
                tally.add(self.apply_to(key, event))
        return tally

    def apply_to(self, key: RecordKey, event: MediaEvent) -> Tally:
        """One event (or reading) for the record `key`, found by its media."""
        change = MediaStatusChange(
            status=str(event.status),
            status_at=event.generated_at,
            order=order_key(event),
            checked_at=iso_precise(self.clock()),
        )
        write = self.records.apply_media_status(key, event.hashed_id, change)
        before = write.before
        if before is None:
            return Tally(unknown=1)
        tally = Tally(applied=1) if write.applied else Tally(stale=1)
        if write.applied:
            self._applied(before, event)
        self._swap_when_ready(key, before, event, change.checked_at)
        # Failed now, or failed before and its dead letter still due (an earlier sender
        # could not finish): the failure is dead-lettered, once.
        failed = event.status == "failed" if write.applied else before.media_status == "failed"
        awaited = write.applied or before.media_watch is not None
        if failed and awaited and self.dead_letter_failure(key, event.hashed_id):
            tally.failures += 1
        return tally

    def _swap_when_ready(
        self, key: RecordKey, before: ImportRecord, event: MediaEvent, now: str
    ) -> None:
        """A replacement (ON_OVERWRITE=replace), ready: listed for the poller to swap into
        the key's original media."""
        if event.status == "ready" and before.replaces_wistia_hashed_id and not before.swap_status:
            self.records.mark_swap_due(key, event.hashed_id, now)

    def dead_letter_failure(self, key: RecordKey, hashed_id: str) -> bool:
        """Turn the record FAILED and send its dead letter, if no one else has; True when
        this call sent it."""
        now = self.clock()
        record = self.records.claim_media_failure(
            key, hashed_id, iso_precise(now), iso_precise(now - DEAD_LETTER_LEASE_SECONDS)
        )
        if record is None:
            return False
        claimed_at = str(record.media_dead_letter_due)
        message = DeadLetterMessage.for_media_failure(record, hashed_id, failed_at=claimed_at)
        try:
            self.dead_letters.send(message)
        except RetryableError:
            self.records.release_media_failure(key, hashed_id, claimed_at)
            raise
        self.records.settle_media_failure(key, hashed_id, claimed_at)
        self.metrics.add_metric(name="MediaFailed", unit="Count", value=1)
        self.log.error(
            "Wistia could not process the media; sent to the dead-letter queue",
            hashed_id=hashed_id,
            bucket=record.bucket,
            object_key=record.object_key,
            object_version=record.object_version,
        )
        return True

    def _applied(self, before: ImportRecord, event: MediaEvent) -> None:
        self.log.info(
            "media status applied",
            hashed_id=event.hashed_id,
            media_status=event.status,
            previous_status=before.media_status,
            source=event.type,
        )
        if event.status != "ready" or before.media_status == "ready":
            return
        self.metrics.add_metric(name="MediaReady", unit="Count", value=1)
        if before.submitted_at:
            seconds = parse_iso(event.generated_at) - parse_iso(before.submitted_at)
            self.metrics.add_metric(name="MediaTimeToReady", unit="Seconds", value=max(0, seconds))
