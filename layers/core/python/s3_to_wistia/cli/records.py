"""Reading import records for people: which records a selection names, read from DynamoDB
as cheaply as it allows, or from a local snapshot; and how one record is shown.

Every item goes through contracts.ImportRecord.from_attributes, the records' one reader.

How the table is read (and bounded):
- `s3://bucket/key` naming an object: one Query on the table's partition key (every version
  of that object), nothing else read;
- anything else (a prefix, `--since`, `--state`, nothing): a Scan, page by page (DynamoDB's
  1 MB pages), with a FilterExpression so only matching records cross the network and a
  projection that leaves out Wistia's stored answer. DynamoDB still reads (and bills) every
  item it scans, so the scan stops once `limit` records matched (1000 by default): a
  large table is never read whole by accident, and the command says when it stopped early.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.model import Status
from s3_to_wistia.times import parse_iso

RECORD_STATES = tuple(status.value for status in Status)
MEDIA_STATES = ("queued", "processing", "ready", "failed", "deleted")
DEFAULT_LIMIT = 1000
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Read for status; Wistia's whole answer stays behind (the hashed and media ids are enough).
_PROJECTED = tuple(
    name
    for name in ("object_uri", *(f.name for f in fields(ImportRecord)))
    if name != "wistia_response"
)


@dataclass(frozen=True)
class Selection:
    """Which records to show."""

    prefix: str | None = None  # s3://bucket/ or s3://bucket/key...
    since: str | None = None  # ISO-8601 UTC: records changed since
    states: frozenset[str] = frozenset()
    media_states: frozenset[str] = frozenset()

    def matches(self, record: ImportRecord) -> bool:
        """The same test as the table's filter, for records already in memory."""
        return all(
            (
                not self.prefix or record.object_uri.startswith(self.prefix),
                not self.since or (record.updated_at or "") >= self.since,
                _among(record.status, self.states),
                _among(record.media_status, self.media_states),
            )
        )


def _among(value: str | None, wanted: frozenset[str]) -> bool:
    return not wanted or (value or "") in wanted


@dataclass
class Reading:
    """What one read found, and how."""

    records: list[ImportRecord]
    method: str  # "query", "scan" or "snapshot"
    scanned: int = 0  # items DynamoDB read (and billed) for it
    complete: bool = True  # False when the read stopped at the limit


def object_uri(text: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key); ValueError saying what is wrong."""
    if not text.startswith("s3://"):
        raise ValueError(f"{text!r} is not an s3://bucket/key URI")
    bucket, _, key = text.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{text!r} names no bucket")
    return bucket, key


def since_bound(text: str, now: datetime | None = None) -> str:
    """--since: a duration back from now (90m, 2h, 7d, 1h30m, 2w) or a date or time
    (2026-01-31, 2026-01-31T12:00Z), as the ISO-8601 UTC text the records hold."""
    text = text.strip()
    now = now or datetime.now(UTC)
    parts = _DURATION.findall(text.lower())
    if parts and _DURATION.sub("", text.lower()).strip() == "":
        delta = timedelta()
        for amount, unit in parts:
            delta += timedelta(**{_UNITS[unit]: int(amount)})
        moment = now - delta
    else:
        try:
            moment = datetime.fromtimestamp(parse_iso(text), UTC)
        except ValueError:
            raise ValueError(
                f"--since takes a duration such as 90m, 2h, 7d or 1h30m, or a date such as "
                f"2026-01-31, not {text!r}"
            ) from None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- DynamoDB ------------------------------------------------------------------------------


class RecordReader:
    """The import records table, read for `status`."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        from boto3.dynamodb.types import TypeDeserializer

        self._db = dynamodb
        self._table = table
        self._deserialize = TypeDeserializer().deserialize

    def approximate_count(self) -> int:
        """DynamoDB's item count (refreshed about every 6 hours): the progress bar's total."""
        return int(self._db.describe_table(TableName=self._table)["Table"].get("ItemCount", 0))

    def read(
        self, selection: Selection, limit: int, on_page: Callable[[int], None] = lambda n: None
    ) -> Reading:
        """The records the selection names: a query for one object, else a bounded scan.
        `on_page` is told how many items each page read."""
        exact = _exact_object(selection.prefix)
        if exact is not None:
            reading = self._read("query", selection, limit, on_page, exact)
            if reading.scanned:  # the object has records (matching or not): that is all
                return reading
        return self._read("scan", selection, limit, on_page)

    def _read(
        self,
        method: str,
        selection: Selection,
        limit: int,
        on_page: Callable[[int], None],
        exact: str | None = None,
    ) -> Reading:
        reading = Reading([], method)
        for page in self._pages(method, _request(self._table, selection, exact)):
            reading.scanned += int(page.get("ScannedCount", 0))
            on_page(int(page.get("ScannedCount", 0)))
            reading.records.extend(self._record(item) for item in page.get("Items", []))
            if limit and len(reading.records) >= limit:
                reading.complete = "LastEvaluatedKey" not in page
                break
        if limit and len(reading.records) > limit:
            del reading.records[limit:]
            reading.complete = False
        return reading

    def _pages(self, method: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        call = self._db.query if method == "query" else self._db.scan
        while True:
            page: dict[str, Any] = call(**request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _record(self, item: Mapping[str, Any]) -> ImportRecord:
        return ImportRecord.from_attributes({k: self._deserialize(v) for k, v in item.items()})


def _exact_object(prefix: str | None) -> str | None:
    """The object a prefix names, when it may name one (a key not ending in /)."""
    if not prefix:
        return None
    _, key = object_uri(prefix)
    return prefix if key and not key.endswith("/") else None


def _request(table: str, selection: Selection, exact: str | None) -> dict[str, Any]:
    names = {f"#p{i}": name for i, name in enumerate(_PROJECTED)}
    request: dict[str, Any] = {"TableName": table, "ProjectionExpression": ", ".join(names)}
    values: dict[str, Any] = {}
    filters = []
    if exact is not None:
        request["KeyConditionExpression"] = "object_uri = :uri"
        values[":uri"] = {"S": exact}
    elif selection.prefix:
        filters.append("begins_with(object_uri, :prefix)")
        values[":prefix"] = {"S": selection.prefix}
    if selection.since:
        names["#updated"] = "updated_at"
        filters.append("#updated >= :since")
        values[":since"] = {"S": selection.since}
    filters += _any_of("#status", "status", sorted(selection.states), names, values)
    filters += _any_of("#media", "media_status", sorted(selection.media_states), names, values)
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
    request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = values
    return request


def _any_of(
    placeholder: str,
    attribute: str,
    wanted: list[str],
    names: dict[str, str],
    values: dict[str, Any],
) -> list[str]:
    if not wanted:
        return []
    names[placeholder] = attribute
    options = []
    for n, value in enumerate(wanted):
        values[f"{placeholder.replace('#', ':')}{n}"] = {"S": value}
        options.append(f"{placeholder.replace('#', ':')}{n}")
    return [f"{placeholder} IN ({', '.join(options)})"]


# --- a local snapshot ------------------------------------------------------------------------


def read_snapshot(items: Iterable[Mapping[str, Any]], selection: Selection) -> Reading:
    """The records a stopped local stack left, selected as the table would select them."""
    records = [ImportRecord.from_attributes(item) for item in items]
    return Reading([r for r in records if selection.matches(r)], "snapshot")


# --- showing a record ------------------------------------------------------------------------


def newest_first(records: Iterable[ImportRecord]) -> list[ImportRecord]:
    return sorted(records, key=lambda r: (r.updated_at or "", r.object_uri), reverse=True)


def record_document(record: ImportRecord, media_status: str | None = None) -> dict[str, Any]:
    """The record for --json: every attribute it has, its object's URI first."""
    document = {"object_uri": record.object_uri}
    document.update({k: v for k, v in asdict(record).items() if v is not None})
    document.pop("claim_id", None)  # an invocation's private token, meaningless to a reader
    if media_status and not record.media_status:
        document["media_status_from_data_api"] = media_status
    return document


def note_for(record: ImportRecord) -> str:
    """The record's story in a few words: why it failed or was skipped, or what it took."""
    if record.status != Status.SUBMITTED.value:
        return record.error or ""
    extras = []
    if record.redrives:
        extras.append(f"redriven {record.redrives}x")
    if record.replaced_wistia_hashed_ids:
        extras.append(
            f"imported again; earlier media {', '.join(record.replaced_wistia_hashed_ids)}"
        )
    if record.recovered_lost_answer:
        extras.append("Wistia's lost answer recovered")
    return "; ".join(extras)


def short(text: str | None, width: int = 12) -> str:
    """`text` cut to `width` characters (0: whole)."""
    if not text:
        return "-"
    return text if not width or len(text) <= width else text[: width - 1] + "…"
