"""`s3-to-wistia reconcile --bucket B [--prefix P] [--fix]`: the bucket, the import records and
Wistia side by side, every object in one state, and with --fix a backfill of what is missing."""

from __future__ import annotations

import json
import queue
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

import click

from s3_to_wistia.adapters.wistia import MAX_LOOKUP_IDS
from s3_to_wistia.budget import RECONCILE, pause_if_told
from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.backfill import (
    NEEDS,
    backfill_rate,
    job_document,
    job_exit_code,
    job_options,
    list_selected,
    show_job,
)
from s3_to_wistia.cli.errors import FAILED, OK, CliError
from s3_to_wistia.cli.inventory import JobPlan, Listed, Selection, confirm_size, start_job
from s3_to_wistia.cli.output import Output
from s3_to_wistia.cli.resources import BUCKET, TABLE, Target
from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.model import WistiaAnswer

if TYPE_CHECKING:
    from s3_to_wistia.ports import RateBudget

DEFAULT_RATE = 100  # Data API requests a minute: reconcile is the least urgent caller
DEFAULT_BUDGET = 1000  # requests: 100,000 medias
LONGEST_WAIT = 60.0  # the longest Retry-After honoured before giving up the rest
RECORDS_AT_A_TIME = 1000


class State(Enum):
    READY = "ready"
    PROCESSING = "processing"
    FAILED_AT_WISTIA = "failed at Wistia"
    MISSING_AT_WISTIA = "missing at Wistia"
    NOT_CHECKED = "not checked at Wistia"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead-lettered"
    UNFINISHED = "unfinished"
    IMPORTING_NOW = "being imported now"
    NEVER_SEEN = "never seen"


ADVICE = {
    State.READY: "nothing: imported and processed",
    State.PROCESSING: "nothing: Wistia is still processing them",
    State.FAILED_AT_WISTIA: "--fix imports them again, with fresh URLs",
    State.MISSING_AT_WISTIA: "deleted in Wistia? import again by hand if that was a mistake",
    State.NOT_CHECKED: "run again with a larger --max-requests, or a token that may read",
    State.SKIPPED: "nothing: the record says why",
    State.DEAD_LETTERED: "fix the cause in the dead letter, then s3-to-wistia redrive",
    State.UNFINISHED: "--fix imports them (a retry that never came back)",
    State.IMPORTING_NOW: "nothing: an invocation holds them right now",
    State.NEVER_SEEN: "--fix (or s3-to-wistia backfill) imports them",
}
SETTLED = frozenset({State.READY, State.PROCESSING, State.SKIPPED, State.IMPORTING_NOW})
FIXED_BY_BACKFILL = frozenset({State.NEVER_SEEN, State.UNFINISHED})
FOR_A_PERSON = frozenset({State.DEAD_LETTERED, State.MISSING_AT_WISTIA, State.NOT_CHECKED})


@dataclass(frozen=True)
class Row:
    obj: Listed
    record: ImportRecord | None
    state: State
    wistia_status: str | None = None

    def as_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "key": self.obj.key,
            "version": self.obj.version,
            "state": self.state.value,
            "record_status": record.status if record else None,
            "wistia_hashed_id": record.wistia_hashed_id if record else None,
            "wistia_status": self.wistia_status,
            "detail": detail(self),
        }


def detail(row: Row) -> str:
    record = row.record
    if record is None:
        return "no import record"
    if row.state in (State.SKIPPED, State.DEAD_LETTERED, State.UNFINISHED):
        return record.error or record.status
    return record.wistia_hashed_id or record.status


@dataclass
class Lookup:
    """What Wistia's Data API said of the medias the records name."""

    statuses: dict[str, str]  # hashed id -> status, for every media found
    asked: set[str]  # the hashed ids looked up (found or not)
    requests: int = 0
    throttled: int = 0
    note: str = ""


class MediaLookup(Protocol):
    """The Data API's batch lookup (WistiaClient.medias_by_hashed_ids)."""

    def medias_by_hashed_ids(
        self, hashed_ids: list[str], token: str, deadline: float | None = None
    ) -> WistiaAnswer: ...


def batches(hashed_ids: Iterable[str]) -> Iterator[list[str]]:
    """Up to 100 ids at a time, as they come."""
    batch: list[str] = []
    for hashed_id in hashed_ids:
        batch.append(hashed_id)
        if len(batch) == MAX_LOOKUP_IDS:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Pace:
    """Requests no closer together than `interval` seconds; with the stack's budget table,
    each also booked on the account's shared request budget as reconcile (it takes what
    the functions leave)."""

    interval: float
    sleep: Callable[[float], None]
    last: float = 0.0
    shared: RateBudget | None = None

    def wait(self) -> bool:
        """False when the shared budget had no slot for reconcile within LONGEST_WAIT."""
        self.sleep(max(0.0, self.last + self.interval - time.monotonic()))
        if self.shared is not None and not self.shared.take(RECONCILE, time.time() + LONGEST_WAIT):
            return False
        self.last = time.monotonic()
        return True


def look_up(
    wistia: MediaLookup,
    token: str,
    hashed_ids: Iterable[str],
    budget: int,
    rate: int,
    sleep: Callable[[float], None] = time.sleep,
    shared: RateBudget | None = None,
) -> Lookup:
    """Each media's status, 100 a request at `rate` requests a minute, at most `budget`
    requests, each booked on the account's `shared` budget when there is one; 429 and 503
    wait out Retry-After (up to a minute; the shared budget too) and count as requests.
    `hashed_ids` may arrive while the lookups go on (the records are still being read)."""
    lookup = Lookup({}, set())
    pace = Pace(60.0 / rate, sleep, shared=shared)
    for batch in batches(hashed_ids):
        answer = ask(wistia, token, batch, lookup, budget, pace)
        if answer is None:
            return lookup
        if answer.status == 401:
            lookup.note = (
                "Wistia refused the token on the Data API (401: an upload-only token?), so "
                "Wistia's side is not checked"
            )
            return lookup
        if answer.status != 200:
            raise CliError(
                f"Wistia's Data API answered {answer.status} to a media lookup: try again"
            )
        for media in json.loads(answer.body or b"[]"):
            lookup.statuses[str(media.get("hashed_id"))] = str(media.get("status"))
        lookup.asked.update(batch)
    return lookup


def ask(
    wistia: MediaLookup, token: str, batch: list[str], lookup: Lookup, budget: int, pace: Pace
) -> WistiaAnswer | None:
    """One batch's answer, 429 and 503 waited out; None (and a note) when the budget ran out
    or Wistia asked for a longer wait than LONGEST_WAIT."""
    while lookup.requests < budget:
        try:
            booked = pace.wait()
        except RetryableError as error:
            lookup.note = f"{error}: the rest is not checked"
            return None
        if not booked:
            lookup.note = (
                "the account's request budget had no slot for reconcile for a minute (the "
                "functions are using it all): the rest is not checked"
            )
            return None
        answer = wistia.medias_by_hashed_ids(list(batch), token)
        lookup.requests += 1
        if answer.status not in (429, 503):
            return answer
        lookup.throttled += 1
        # Retry-After pauses every caller of the account (the shared budget, if any).
        wait = pause_if_told(pace.shared, answer, time.time()) or pace.interval
        if wait > LONGEST_WAIT:
            lookup.note = f"Wistia asked to wait {wait:.0f} s; the rest is not checked"
            return None
        pace.sleep(wait)
    lookup.note = f"the request budget (--max-requests {budget}) ran out"
    return None


# Records whose status alone says the state.
STATE_OF_RECORD = {"SKIPPED": State.SKIPPED, "FAILED": State.DEAD_LETTERED}
STATE_AT_WISTIA = {"ready": State.READY, "failed": State.FAILED_AT_WISTIA}


def classify(obj: Listed, record: ImportRecord | None, lookup: Lookup, now: float) -> Row:
    if record is None:
        return Row(obj, None, State.NEVER_SEEN)
    if record.status in STATE_OF_RECORD:
        return Row(obj, record, STATE_OF_RECORD[record.status])
    if record.status == "IN_PROGRESS" and float(record.lease_expires_at or 0) > now:
        return Row(obj, record, State.IMPORTING_NOW)
    if record.status != "SUBMITTED" or not record.wistia_hashed_id:
        return Row(obj, record, State.UNFINISHED)
    return classify_at_wistia(obj, record, record.wistia_hashed_id, lookup)


def classify_at_wistia(obj: Listed, record: ImportRecord, hashed_id: str, lookup: Lookup) -> Row:
    if hashed_id not in lookup.asked:
        return Row(obj, record, State.NOT_CHECKED)
    status = lookup.statuses.get(hashed_id)
    if status is None:
        return Row(obj, record, State.MISSING_AT_WISTIA)
    return Row(obj, record, STATE_AT_WISTIA.get(status, State.PROCESSING), status)


@command(
    "reconcile",
    needs=NEEDS,
    json_output=True,
    short_help="The bucket, the records and Wistia side by side; --fix backfills what is missing.",
)
@click.option("--prefix", default="", metavar="PREFIX", help="only keys that start with this")
@click.option(
    "--fix",
    is_flag=True,
    help="start a backfill of the objects never seen or left unfinished, and import again "
    "those Wistia failed to process",
)
@click.option(
    "--max-requests",
    type=click.IntRange(1),
    default=DEFAULT_BUDGET,
    show_default=True,
    metavar="N",
    help="the most Data API requests to make (each looks up 100 medias)",
)
@click.option(
    "--rate",
    type=click.IntRange(1),
    default=DEFAULT_RATE,
    show_default=True,
    metavar="PER_MINUTE",
    help="Data API requests a minute (the account's 600 are shared with the functions)",
)
@click.option(
    "--show",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    metavar="N",
    help="objects listed for each state that needs looking at (--json lists them all)",
)
@job_options
def reconcile(
    target: Target,
    out: Output,
    prefix: str,
    fix: bool,
    max_requests: int,
    rate: int,
    show: int,
    confirm_above: int,
    yes: bool,
) -> int:
    """Compare the bucket with the import records and with Wistia (the Data API, 100 medias a
    request, inside --max-requests at --rate), and put every object (its current version) in
    one state: ready, processing, failed at Wistia, missing at Wistia, skipped, dead-lettered,
    unfinished, being imported now, never seen (or not checked, when the budget or the token
    stopped the lookups). A table of counts with what to do, and the objects that need
    looking at; --json for everything.

    --fix starts a backfill job (a CSV manifest of exactly those objects) of the objects
    never seen or left unfinished, and of those Wistia failed to process: their records are
    reopened first, so the backfill imports them again with fresh URLs. Dead-lettered objects
    are left to `s3-to-wistia redrive`, once their cause is fixed.

    Exit code 0 when nothing needs looking at (with --fix: nothing that --fix cannot start),
    1 otherwise.
    """
    selection = Selection(bucket=target.value(BUCKET), prefix=prefix)
    listed = list_selected(target, out, selection)
    records, lookup = read_records_and_look_up(target, out, listed, max_requests, rate)
    if lookup.note:
        out.warn(lookup.note)
    now = time.time()
    rows = [classify(o, records.get(o.identity), lookup, now) for o in listed]
    counts = Counter(row.state for row in rows)
    document: dict[str, Any] = {
        "bucket": selection.bucket,
        "prefix": prefix,
        "objects": len(rows),
        "records": sum(1 for row in rows if row.record is not None),
        "wistia_requests": lookup.requests,
        "wistia_throttled": lookup.throttled,
        "request_budget": max_requests,
        "counts": {state.value: counts.get(state, 0) for state in State},
        "items": [row.as_json() for row in rows],
        "fix": None,
    }
    show_states(out, selection, rows, counts, lookup, max_requests, show)
    if not fix:
        out.result(document)
        return OK if set(counts) <= SETTLED else FAILED
    code = start_fix(target, out, selection, rows, confirm_above, yes, document)
    out.result(document)
    return code


def read_records_and_look_up(
    target: Target, out: Output, listed: Sequence[Listed], budget: int, rate: int
) -> tuple[dict[tuple[str, str], ImportRecord], Lookup]:
    """The records, a thousand objects at a time, and their medias at Wistia, looked up as
    the records come in: the lookups' pace hides the reading of the table."""
    wistia, token = target.wistia(), target.wistia_token()
    from s3_to_wistia.adapters.records import Records  # loads boto3: not for --help

    store = Records(target.client("dynamodb"), target.value(TABLE))
    records: dict[tuple[str, str], ImportRecord] = {}
    found: queue.Queue[str | None] = queue.Queue()

    def hashed_ids() -> Iterator[str]:
        while (hashed_id := found.get()) is not None:
            yield hashed_id

    from s3_to_wistia.cli.function import stack_budget

    shared = stack_budget(target, out)
    out.note(f"Reading the records and looking their medias up in Wistia ({rate} a minute)...")
    with ThreadPoolExecutor(1, thread_name_prefix="wistia-lookups") as pool:
        lookups = pool.submit(
            look_up, wistia, token, hashed_ids(), budget, rate, time.sleep, shared
        )
        seen: set[str] = set()
        try:
            for start in range(0, len(listed), RECORDS_AT_A_TIME):
                chunk = listed[start : start + RECORDS_AT_A_TIME]
                for identity, record in store.get_many([o.ref for o in chunk]).items():
                    records[identity] = record
                    hashed_id = record.wistia_hashed_id
                    if record.status == "SUBMITTED" and hashed_id and hashed_id not in seen:
                        seen.add(hashed_id)
                        found.put(hashed_id)
        finally:
            found.put(None)
        return records, lookups.result()


def show_states(
    out: Output,
    selection: Selection,
    rows: list[Row],
    counts: Counter[State],
    lookup: Lookup,
    budget: int,
    show: int,
) -> None:
    out.say(
        f"{selection.where}: {len(rows):,} objects, "
        f"{sum(1 for row in rows if row.record):,} import records, {lookup.requests} Wistia "
        f"requests (budget {budget})"
    )
    out.table(
        ("state", "objects", "what to do"),
        [(state.value, f"{counts[state]:,}", ADVICE[state]) for state in State if counts[state]],
    )
    if show:
        for state in State:
            if state not in SETTLED and counts[state]:
                show_objects_in(out, state, rows, show)


def show_objects_in(out: Output, state: State, rows: list[Row], show: int) -> None:
    """The first `show` objects in one state."""
    in_state = [row for row in rows if row.state is state]
    shown = in_state[:show]
    more = f" (first {len(shown)} of {len(in_state):,})" if len(in_state) > len(shown) else ""
    out.say(f"\n{state.value}{more}:")
    out.table(
        ("object key", "version", "detail"),
        [(row.obj.key, row.obj.version, detail(row)) for row in shown],
    )


def start_fix(
    target: Target,
    out: Output,
    selection: Selection,
    rows: list[Row],
    confirm_above: int,
    yes: bool,
    document: dict[str, Any],
) -> int:
    """Reopen what Wistia failed to process, then backfill it with what was never seen."""
    again = [row for row in rows if row.state is State.FAILED_AT_WISTIA]
    missing = [row.obj for row in rows if row.state in FIXED_BY_BACKFILL]
    # What needs a person, whatever --fix does: a cause to fix, a deletion to judge, a look.
    needs_a_person = any(row.state in FOR_A_PERSON for row in rows)
    if not missing and not again:
        out.say("\nNothing for --fix to start.")
        document["fix"] = {"reimported": 0, "backfilled": 0, "job": None}
        return FAILED if needs_a_person else OK
    confirm_size(out, len(missing) + len(again), confirm_above, yes, "reconcile --fix")
    code = run_fix(target, out, selection, again, missing, document)
    return FAILED if needs_a_person else code


def run_fix(
    target: Target,
    out: Output,
    selection: Selection,
    again: list[Row],
    missing: list[Listed],
    document: dict[str, Any],
) -> int:
    reopened = reopen_failed(target, again)
    plan = JobPlan(
        selection=selection,
        objects=[*missing, *reopened],
        project_id=None,
        low_priority=True,
        description=f"s3-to-wistia reconcile --fix of {selection.where}",
    )
    job = start_job(target, out, plan)
    summary = fix_summary(target, selection, job, len(plan.objects or []))
    out.say(f"\n--fix: {len(reopened):,} reopened to import again, {len(missing):,} to backfill")
    show_job(out, job, summary)
    document["fix"] = {"reimported": len(reopened), "backfilled": len(missing), **summary}
    return job_exit_code(job)


def reopen_failed(target: Target, rows: list[Row]) -> list[Listed]:
    """The objects whose failed media's record could be reopened for a new import."""
    from s3_to_wistia.adapters.records import Records  # loads boto3: not for --help

    records = Records(target.client("dynamodb"), target.value(TABLE))
    return [
        row.obj
        for row in rows
        if row.record
        and row.record.wistia_hashed_id
        and records.reopen_for_reimport(row.obj.ref, row.record.wistia_hashed_id)
    ]


def fix_summary(target: Target, selection: Selection, job: Any, todo: int) -> dict[str, Any]:
    rate = backfill_rate(target)
    return {
        "bucket": selection.bucket,
        "listed": todo,
        "already_done": 0,
        "to_import": todo,
        "rate_per_minute": rate,
        "estimated_seconds": round(todo * 60 / rate),
        "job": job_document(target, job),
    }
