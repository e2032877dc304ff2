"""What became of each object in a `make run`: its import record (with the processing
status Wistia's webhooks brought), its Wistia media (asked over the Data API, as a user
would), the dead-letter queue, and whether each ended where it should. Printed as
plain-text tables."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import urllib3

from local_stack.delivery import object_keys
from local_stack.harness import all_records, drain
from local_stack.samples import Sample

UNSETTLED_WISTIA_STATUSES = frozenset({"queued", "processing"})
# What a media's record holds once Wistia's webhooks said all they will say.
FINAL_MEDIA_STATUSES = frozenset({"ready", "failed", "deleted"})
MEDIA_FAILED_WORDS = "could not process the media"


class Console:
    """The terminal, shared by the worker threads; the function's own output goes elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, text: str = "") -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)


# --- what became of each object --------------------------------------------------------------


class WistiaDataApi:
    """Wistia's Data API, asked over HTTP with the account's token, as a user would."""

    def __init__(self, base_url: str, token: str) -> None:
        self._base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(5.0, 10.0))

    def media(self, hashed_id: str) -> dict[str, Any] | None:
        answer = self._get(f"v1/medias/{hashed_id}.json", {})
        return answer if isinstance(answer, dict) else None

    def medias_named(self, name: str) -> list[dict[str, Any]]:
        answer = self._get("v1/medias.json", {"name": name, "per_page": "100"})
        return answer if isinstance(answer, list) else []

    def _get(self, path: str, query: dict[str, str]) -> Any:
        answer = self._http.request(
            "GET", self._base_url + path, fields=query, headers=self._headers
        )
        if answer.status == 404:
            return None
        if answer.status != 200:
            raise RuntimeError(f"Wistia Data API GET {path} answered {answer.status}")
        return answer.json()


def wait_for_processing(
    wistia: WistiaDataApi, hashed_ids: list[str], timeout: float
) -> dict[str, dict[str, Any] | None]:
    """Each media as the Data API shows it once processed (or when the time is up)."""
    deadline = time.monotonic() + timeout
    medias: dict[str, dict[str, Any] | None] = {}
    pending = list(hashed_ids)
    while True:
        for hashed_id in pending:
            medias[hashed_id] = wistia.media(hashed_id)
        pending = [
            hashed_id
            for hashed_id in pending
            if (medias[hashed_id] or {}).get("status") in UNSETTLED_WISTIA_STATUSES
        ]
        if not pending or time.monotonic() > deadline:
            return medias
        time.sleep(0.1)


def wait_for_media_statuses(table_name: str, timeout: float) -> dict[str, dict[str, Any]]:
    """The records once each media's record holds a final status from the webhooks (or
    when the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        records = latest_records(table_name)
        waiting = [
            r
            for r in records.values()
            if r.get("wistia_hashed_id") and r.get("media_status") not in FINAL_MEDIA_STATUSES
        ]
        if not waiting or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def latest_records(table_name: str) -> dict[str, dict[str, Any]]:
    """The import record of each object key (the newest, should a key have several)."""
    records: dict[str, dict[str, Any]] = {}
    for record in sorted(all_records(table_name), key=lambda r: str(r.get("updated_at", ""))):
        records[str(record["object_key"])] = record
    return records


@dataclass(frozen=True)
class Row:
    key: str
    status: str  # the import record's status; "-" when there is no record
    hashed_id: str
    wistia_status: str
    note: str
    media_status: str = "-"  # the processing status the webhooks brought into the record


def report_rows(
    keys: list[str],
    records: Mapping[str, dict[str, Any]],
    medias: Mapping[str, dict[str, Any] | None],
    notes: Mapping[str, str],
) -> list[Row]:
    rows = []
    for key in keys:
        record = records.get(key, {})
        hashed_id = str(record.get("wistia_hashed_id", ""))
        media = medias.get(hashed_id) if hashed_id else None
        note = notes.get(key, "")
        if record.get("status") != "SUBMITTED":
            note = str(record.get("error", ""))
        rows.append(
            Row(
                key=key,
                status=str(record.get("status", "-")),
                hashed_id=hashed_id or "-",
                wistia_status=str(media["status"]) if media else "-",
                note=note if record else "no import record",
                media_status=str(record.get("media_status") or "-"),
            )
        )
    return rows


@dataclass(frozen=True)
class DeadLetter:
    keys: list[str]
    sender: str
    reason: str


def read_dead_letters(queue_url: str) -> list[DeadLetter]:
    """The dead-letter queue's messages, of both kinds: the function's own, for objects it
    could not import, and Lambda's on-failure records, for events whose retries ran out."""
    return dead_letters_in(drain(queue_url))


def dead_letters_in(bodies: Sequence[dict[str, Any]]) -> list[DeadLetter]:
    """The dead letters of these message bodies (read_dead_letters)."""
    letters = []
    for body in bodies:
        context = body.get("requestContext")
        if isinstance(context, dict):
            error = body.get("responsePayload") or {}
            letters.append(
                DeadLetter(
                    keys=object_keys(body.get("requestPayload")),
                    sender=f"Lambda ({context.get('condition')}, "
                    f"{context.get('approximateInvokeCount')} attempts)",
                    reason=f"{error.get('errorType')}: {error.get('errorMessage')}",
                )
            )
        else:
            status = body.get("http_status")
            letters.append(
                DeadLetter(
                    keys=[str(body.get("object_key"))],
                    sender="the function" + (f" (HTTP {status})" if status else ""),
                    reason=str(body.get("reason")),
                )
            )
    return letters


def show_report(console: Console, rows: list[Row], dead_letters: list[DeadLetter]) -> None:
    console.line()
    for line in table(
        ("object key", "status", "wistia id", "wistia status", "by webhook", "note"),
        [(r.key, r.status, r.hashed_id, r.wistia_status, r.media_status, r.note) for r in rows],
    ):
        console.line(line)
    count = len(dead_letters)
    console.line(f"\nDead-letter queue: {count} message{'' if count == 1 else 's'}")
    if dead_letters:
        for line in table(
            ("object key", "sent by", "reason"),
            [(", ".join(d.keys) or "?", d.sender, d.reason) for d in dead_letters],
        ):
            console.line("  " + line)


def show_verdict(console: Console, problems: list[str], objects: int) -> None:
    if not problems:
        console.line(f"\nOK: all {objects} objects ended where they should.")
        return
    console.line(f"\nNOT OK: {len(problems)} problem{'' if len(problems) == 1 else 's'}:")
    for problem in problems:
        console.line(f"  - {problem}")


# --- expectations ----------------------------------------------------------------------------


def check_samples(
    samples: list[Sample],
    rows: list[Row],
    dead_letters: list[DeadLetter],
    medias_by_name: Mapping[str, int],
) -> list[str]:
    """Why the samples did not end where they should (nothing when they did)."""
    by_key = {row.key: row for row in rows}
    problems = []
    for sample in samples:
        row = by_key[sample.key]
        if row.status != sample.status:
            problems.append(f"{sample.key}: status {row.status}, expected {sample.status}")
        if sample.status == "SUBMITTED" and row.wistia_status != "ready":
            problems.append(f"{sample.key}: Wistia status {row.wistia_status}, expected ready")
        expected_media = "failed" if sample.fails_at_wistia else "ready"
        reached = sample.status == "SUBMITTED" or sample.fails_at_wistia
        if reached and row.media_status != expected_media:
            problems.append(
                f"{sample.key}: the webhooks brought {row.media_status}, expected {expected_media}"
            )
        if sample.reason and sample.reason not in row.note:
            problems.append(f"{sample.key}: reason {row.note!r} should mention {sample.reason!r}")
        letters = [d for d in dead_letters if sample.key in d.keys]
        expected_words = (
            "video limit"
            if sample.trips_video_limit
            else MEDIA_FAILED_WORDS
            if sample.fails_at_wistia
            else None
        )
        if expected_words is not None:
            if len(letters) != 1 or expected_words not in letters[0].reason:
                problems.append(
                    f"{sample.key}: expected one dead letter saying {expected_words!r}, "
                    f"found {[d.reason for d in letters]}"
                )
        elif letters:
            problems.append(f"{sample.key}: unexpected dead letter: {letters[0].reason}")
        if sample.delivered_twice and medias_by_name.get(sample.key) != 1:
            problems.append(
                f"{sample.key}: delivered twice, expected 1 Wistia media by its name, "
                f"found {medias_by_name.get(sample.key)}"
            )
    known = {sample.key for sample in samples}
    problems += [
        f"unexpected dead letter: {d.reason}" for d in dead_letters if not known & set(d.keys)
    ]
    return problems


def check_source(rows: list[Row]) -> list[str]:
    """Every file must be imported and processed, or skipped with its reason."""
    problems = []
    for row in rows:
        if row.status == "SUBMITTED" and row.wistia_status != "ready":
            problems.append(f"{row.key}: Wistia status {row.wistia_status}, expected ready")
        elif row.status == "SUBMITTED" and row.media_status != "ready":
            problems.append(f"{row.key}: the webhooks brought {row.media_status}, expected ready")
        elif row.status == "SKIPPED" and not row.note:
            problems.append(f"{row.key}: skipped without a reason")
        elif row.status not in ("SUBMITTED", "SKIPPED"):
            problems.append(f"{row.key}: {row.status}: {row.note}")
    return problems


# --- plain-text table ------------------------------------------------------------------------


def display_width(text: str) -> int:
    """Terminal columns: East Asian wide characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns; the last one is left ragged."""
    widths = [max(map(display_width, column)) for column in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        padded = [pad(cell, width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    rule = ["-" * width for width in widths[:-1]] + ["-" * display_width(headers[-1])]
    return [line(headers), line(rule), *map(line, rows)]
