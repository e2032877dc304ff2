"""What Wistia says about its medias, read into MediaEvents, and the order they apply in.

Two sources: the webhook body (`{"hook": ..., "events": [...]}`, several events a POST, at
least once and in no particular order) and the Data API's media list, which the status
poller reads. Both become MediaEvents; `order_key` decides which of two is newer.

The order: `generated_at` first (the poller's readings carry the time it read them), then
the status's place in a media's life (queued < processing < ready = failed < deleted), then
the event uuid, so two events of the same millisecond always apply in the same order. The
record keeps the key of the event it applied last and takes an event only when its key is
greater: a redelivered event (same uuid, same key) and an older one both change nothing,
which makes applying idempotent by uuid without a growing set of uuids on the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from s3_to_wistia.errors import NotAWebhook
from s3_to_wistia.model import MediaEvent

# The webhook event types that say where a media's processing is.
EVENT_STATUSES = {
    "media.processing": "processing",
    "media.ready": "ready",
    "media.failed": "failed",
    "media.deleted": "deleted",
}
# A status's place in a media's life: a tie on generated_at goes to the later one.
STATUS_RANK = {"queued": 0, "processing": 1, "ready": 2, "failed": 2, "deleted": 3}
POLL_EVENT = "poll"
# Wistia's hashed ids are short; anything far longer is not one.
MAX_ID_CHARS = 100


def parse_webhook_body(body: bytes) -> list[MediaEvent]:
    """Every event of a webhook body, in the order sent; NotAWebhook when the body is not
    one. Events of other types are kept (status None), so they can be acknowledged."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise NotAWebhook("the body is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise NotAWebhook('the body has no "events" list')
    return [_event(raw, index) for index, raw in enumerate(document["events"])]


def _event(raw: object, index: int) -> MediaEvent:
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise NotAWebhook(f"event {index} has no type")
    event_type = raw["type"]
    status = EVENT_STATUSES.get(event_type)
    if status is None:
        # A type this project does not apply: acknowledged as it is, whatever it holds.
        return MediaEvent(_text(raw.get("uuid")), event_type, _text(_media_id(raw)), None, "")
    uuid = raw.get("uuid")
    if not _is_id(uuid):
        raise NotAWebhook(f"event {index} ({event_type}) has no uuid")
    hashed_id = _media_id(raw)
    if not _is_id(hashed_id):
        raise NotAWebhook(f"event {index} ({event_type}) names no media")
    generated_at = normalized_time(raw.get("generated_at"), index)
    return MediaEvent(str(uuid), event_type, str(hashed_id), status, generated_at)


def _media_id(raw: dict[str, Any]) -> object:
    payload = raw.get("payload")
    media = payload.get("media") if isinstance(payload, dict) else None
    return media.get("id") if isinstance(media, dict) else None


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def normalized_time(value: object, index: int = 0) -> str:
    """An ISO-8601 time as UTC with exactly three decimals, so times compare as text:
    Wistia's examples have whole seconds, the emulator's milliseconds, some an offset."""
    if not isinstance(value, str):
        raise NotAWebhook(f"event {index} has no generated_at")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise NotAWebhook(f"event {index} has a generated_at that is not a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if not 2000 <= moment.year <= 9999:
        raise NotAWebhook(f"event {index} has a generated_at out of range")
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_key(event: MediaEvent) -> str:
    """The key that orders a media's events (see the module's docstring): a text that
    compares as (generated_at, status rank, uuid) do, so DynamoDB can compare it."""
    rank = STATUS_RANK.get(event.status or "", 0)
    return f"{event.generated_at} {rank} {event.uuid}"


def _status_of(media: object) -> tuple[str, str] | None:
    """(hashed id, status) of one media of the Data API's list, if it says them."""
    if not isinstance(media, Mapping):
        return None
    hashed_id, status = media.get("hashed_id"), media.get("status")
    if isinstance(hashed_id, str) and isinstance(status, str) and status in STATUS_RANK:
        return hashed_id, status
    return None


def poll_events(
    answer: object, asked: Iterable[str], read_at: str
) -> tuple[list[MediaEvent], list[str]]:
    """The Data API's answer to a hashed_ids[] lookup as MediaEvents read at `read_at`, and
    the hashed ids it left out. Wistia leaves deleted medias out of the list: one it does
    not return is read as deleted."""
    if not isinstance(answer, list):
        raise ValueError("the media list is not a JSON list")
    found = dict(filter(None, map(_status_of, answer)))
    events = []
    missing = []
    for hashed_id in dict.fromkeys(asked):
        status = found.get(hashed_id)
        if status is None:
            missing.append(hashed_id)
            status = "deleted"
        events.append(MediaEvent(POLL_EVENT, POLL_EVENT, hashed_id, status, read_at))
    return events, missing
