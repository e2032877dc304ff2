"""`s3-to-wistia status [s3://bucket/prefix] [--since D] [--state S] [--media M]`: the
import records, with Wistia's processing status when known, and totals by state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click

from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.errors import OK, CliError, UsageProblem
from s3_to_wistia.cli.output import Output
from s3_to_wistia.cli.records import (
    DEFAULT_LIMIT,
    MEDIA_STATES,
    RECORD_STATES,
    Reading,
    RecordReader,
    Selection,
    newest_first,
    note_for,
    object_uri,
    read_snapshot,
    record_document,
    short,
    since_bound,
)
from s3_to_wistia.cli.resources import TABLE, Target
from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.model import Status

COLUMNS = ("object", "version", "status", "wistia id", "media", "updated", "note")
UNKNOWN = "not known yet"


@command(
    "status",
    needs=[TABLE],
    json_output=True,
    short_help="Show the import records, Wistia's processing status and totals by state.",
)
@click.argument("uri", required=False, metavar="[s3://BUCKET[/PREFIX]]")
@click.option(
    "--since",
    metavar="DURATION",
    help="only records changed in the last DURATION (90m, 2h, 7d, 1h30m) or since a date "
    "(2026-01-31, 2026-01-31T12:00Z)",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(RECORD_STATES, case_sensitive=False),
    metavar="STATE",
    help=f"only records in this state: {', '.join(RECORD_STATES)} (repeat for several)",
)
@click.option(
    "--media",
    "media_states",
    multiple=True,
    type=click.Choice(MEDIA_STATES, case_sensitive=False),
    metavar="STATUS",
    help=f"only records whose media Wistia reports as {', '.join(MEDIA_STATES)} (repeat)",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="stop reading once this many records matched (0: read the whole table)",
)
def status(
    target: Target,
    out: Output,
    uri: str | None,
    since: str | None,
    states: tuple[str, ...],
    media_states: tuple[str, ...],
    limit: int,
) -> int:
    """Show the import records (newest change first): each object version's state, its
    Wistia media and Wistia's processing status of it (queued, processing, ready, failed,
    deleted) once the webhooks or the poller have reported it, then the totals by state.

    s3://BUCKET/KEY shows that object's records with one query. Anything else (a prefix
    such as s3://BUCKET/folder/, --since, --state, --media, or nothing) scans the table,
    a page at a time with a progress bar, only matching records crossing the network; the
    scan stops once --limit records matched and says so. With --local: the local stack
    `make local` keeps up, else the records the last `make run` left when it stopped.

    Exit code 0 (also when no record matches).
    """
    selection = _selection(uri, since, states, media_states)
    target.resolve()
    reading, source, medias = _read(target, out, selection, limit)
    shown = [
        Shown(record, _media_status(record, medias)) for record in newest_first(reading.records)
    ]
    out.table(COLUMNS, (row.cells() for row in shown))
    totals, media_totals = _totals(shown)
    out.summary(_totals_line(totals, media_totals))
    _say_how(out, reading, limit)
    out.result(
        {
            "source": source,
            "method": reading.method,
            "scanned": reading.scanned,
            "complete": reading.complete,
            "totals": dict(totals),
            "media_totals": dict(media_totals),
            "records": [record_document(row.record, row.media_status) for row in shown],
        }
    )
    return OK


@dataclass(frozen=True)
class Shown:
    """One record as shown, with Wistia's processing status of its media when known."""

    record: ImportRecord
    media_status: str | None

    def cells(self, version_width: int = 0) -> tuple[str, ...]:
        record = self.record
        return (
            record.object_uri,
            short(record.object_version, version_width),
            record.status,
            record.wistia_hashed_id or "-",
            self.media_status or "-",
            record.updated_at or "-",
            note_for(record),
        )


def _selection(
    uri: str | None, since: str | None, states: tuple[str, ...], media_states: tuple[str, ...]
) -> Selection:
    try:
        if uri is not None:
            object_uri(uri)
        bound = since_bound(since) if since is not None else None
    except ValueError as error:
        raise UsageProblem(str(error)) from None
    return Selection(
        prefix=uri,
        since=bound,
        states=frozenset(state.upper() for state in states),
        media_states=frozenset(state.lower() for state in media_states),
    )


def _read(
    target: Target, out: Output, selection: Selection, limit: int
) -> tuple[Reading, dict[str, Any], dict[str, dict[str, Any]]]:
    """The records, where they are: the table, or the snapshot a local stack left."""
    table = target.value(TABLE)
    if target.options.local:
        local = target.local
        out.note(f"Local: {local.described_as}")
        source: dict[str, Any] = {"table": table, "local": local.described_as}
        if local.snapshot is not None:
            source["snapshot"] = str(local.snapshot.path)
            reading = read_snapshot(local.snapshot.records, selection)
            return _limited(reading, limit), source, local.snapshot.medias
    else:
        source = {"table": table}
    reader = RecordReader(target.client("dynamodb"), table)
    exact = selection.prefix is not None and not selection.prefix.endswith("/")
    with _no_such_table(table, target), out.progress(unit="items") as bars:
        bar = bars.task(f"Reading {table}", None if exact else reader.approximate_count())
        reading = reader.read(selection, limit, bar.advance)
    return reading, source, {}


@contextmanager
def _no_such_table(table: str, target: Target) -> Iterator[None]:
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        raise CliError(
            f"no table {table!r} in {target.region or 'this region'}: check --table / --stack "
            "/ --region"
        ) from None


def _limited(reading: Reading, limit: int) -> Reading:
    if limit and len(reading.records) > limit:
        reading.records = newest_first(reading.records)[:limit]
        reading.complete = False
    return reading


def _media_status(record: ImportRecord, medias: dict[str, dict[str, Any]]) -> str | None:
    """Wistia's processing status: the record's (webhooks, poller), else what the Data API
    said when a local stack's snapshot was taken."""
    if record.media_status:
        return record.media_status
    media = medias.get(record.wistia_hashed_id or "")
    return str(media["status"]) if media and media.get("status") else None


def _totals(shown: list[Shown]) -> tuple[Counter[str], Counter[str]]:
    """Records by state, and the imported ones by Wistia's processing status."""
    totals = Counter(row.record.status for row in shown)
    submitted = [row for row in shown if row.record.status == Status.SUBMITTED.value]
    return totals, Counter(row.media_status or UNKNOWN for row in submitted)


def _totals_line(totals: Counter[str], media_totals: Counter[str]) -> str:
    if not totals:
        return "No record matches."
    parts = [f"{count} {state}" for state, count in _by_count(totals)]
    if media_totals:
        processing = ", ".join(f"{n} {m}" for m, n in _by_count(media_totals))
        parts = [
            f"{part} ({processing})" if part.endswith(f" {Status.SUBMITTED.value}") else part
            for part in parts
        ]
    return f"{sum(totals.values())} records: " + ", ".join(parts)


def _by_count(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most first; ties by name, so the same records always read the same."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _say_how(out: Output, reading: Reading, limit: int) -> None:
    how = {"query": "one query", "scan": f"a scan of {reading.scanned} items"}
    out.note(f"Read with {how.get(reading.method, 'the snapshot')}.")
    if not reading.complete:
        out.warn(
            f"stopped at --limit {limit}: there are more; narrow it (s3://BUCKET/PREFIX, "
            "--since, --state) or pass --limit 0 to read them all"
        )
