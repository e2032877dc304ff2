"""Following changes at volume (issue 16): keys overwritten and deleted, their events
duplicated and shuffled, ON_OVERWRITE=replace and ON_DELETE=delete.

1. Every key is uploaded once; its event is delivered once or twice, in shuffled order,
   through the Lambda stand-in to the real import function; Wistia processes the files and
   the status poller reads them ready (an overwrite replaces a key's media only once that
   media is ready: before, the new version is a media of its own, as the README says).
2. Each key is then overwritten 0-3 times (random, seeded) and a share of the keys deleted
   (a delete marker) after their last write, each in S3's order for the key (sequencers
   increase). Every event of this phase, writes and deletions, is delivered once or twice,
   all of them shuffled together: a key's older version may arrive after its newer one, its
   deletion before its last overwrite.
3. Wistia settles, and the status poller runs (bounded) until no media status and no swap
   is due.

Checked against the emulator and S3: for every live key, its original media (the first
version's hashed id, which embeds use) exists, is neither deleted nor archived, and holds the
bytes of the key's current version in S3 (directly, or through the last swap Wistia
finished, whose replacement must be that version's media); for every deleted key its
original media is deleted; no other media is deleted; no record left IN_PROGRESS; no dead
letter (every file is a good one); and the import invariants of reliability.invariants over
every version written (one media each, none lost). Replacement medias stay at Wistia as
medias of their own after their swap, or when superseded (the README says so): counted, not
errors.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from local_stack.aws import LocalAws, next_sequencer
from local_stack.events import Uploaded, encoded_key, fixture, s3_record
from local_stack.harness import CapturedLogger, LambdaContext
from reliability.driver import Handler
from reliability.invariants import check
from reliability.rig import UNLIMITED_REQUESTS_PER_MINUTE, Rig
from reliability.suite import Scenario, ScenarioResult, follow
from reliability.workload import ObjectPlan, PlacedObject, body_for, s3_client
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.polling import PollerSettings
from s3_to_wistia.wiring import build_import_function, build_status_poller

WRITER_THREADS = 4
SETTLE_SECONDS = 120.0
# The poller's runs after the writes, at most: each swap takes two (asked, then its job
# followed), SWAPS_PER_RUN at a time.
MAX_POLLER_RUNS = 400
POLL_MAX_REQUESTS = 200
# How long S3 takes to get a round's events to the function, per key in the run; a share of
# them held back three times as long, behind later rounds.
SPREAD_PER_KEY = 0.01
HELD_BACK_SHARE = 0.2
POLL_EVERY_SECONDS = 0.5  # the poller's schedule during the changes (every minute on AWS)


@dataclass
class KeyLife:
    """One key's writes in S3's order, and its deletion (the delete marker's version)."""

    key: str
    versions: list[PlacedObject] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    deleted: bool = False

    @property
    def overwrites(self) -> int:
        return len(self.versions) - 1


@dataclass
class Polls:
    runs: int = 0
    requests: int = 0
    swaps: Counter[str] = field(default_factory=Counter)


# --- the writes --------------------------------------------------------------------------------


def _put(bucket: str, life: KeyLife, body: bytes) -> dict[str, Any]:
    """Upload a version of the key; the notification S3 sends for it (its sequencer next)."""
    answer = s3_client().put_object(Bucket=bucket, Key=life.key, Body=body)
    etag = str(answer["ETag"]).strip('"')
    uploaded = Uploaded(bucket, life.key, answer.get("VersionId"), etag, len(body))
    life.versions.append(PlacedObject(ObjectPlan(life.key, body, "import"), uploaded))
    life.bodies.append(body)
    return {"Records": [s3_record(uploaded)]}


def _delete(bucket: str, life: KeyLife) -> dict[str, Any]:
    """A delete marker for the key; the ObjectRemoved event S3 sends (moto sends none)."""
    marker = s3_client().delete_object(Bucket=bucket, Key=life.key).get("VersionId")
    record = fixture("s3-object-created.json")["Records"][0]
    record["eventName"] = "ObjectRemoved:DeleteMarkerCreated"
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"] = {"key": encoded_key(life.key), "sequencer": next_sequencer()}
    if marker:
        record["s3"]["object"]["versionId"] = marker
    life.deleted = True
    return {"Records": [record]}


def plan_keys(scenario: Scenario, rng: random.Random) -> list[tuple[KeyLife, int, bool]]:
    """Each key, its overwrites (0-max) and whether it is deleted at the end."""
    count = scenario.objects
    doomed = set(rng.sample(range(count), round(count * scenario.delete_share)))
    return [
        (
            KeyLife(f"{scenario.name}/k{index % 10}/{index:05d} clip.mp4"),
            rng.randint(0, scenario.max_overwrites),
            index in doomed,
        )
        for index in range(count)
    ]


def write_first(bucket: str, plans: list[tuple[KeyLife, int, bool]]) -> list[dict[str, Any]]:
    def first(item: tuple[int, tuple[KeyLife, int, bool]]) -> dict[str, Any]:
        number, (life, _, _) = item
        return _put(bucket, life, body_for(number * 10))

    with concurrent.futures.ThreadPoolExecutor(WRITER_THREADS) as pool:
        return list(pool.map(first, enumerate(plans)))


def write_round(
    bucket: str, plans: list[tuple[KeyLife, int, bool]], number: int, deletions: bool
) -> list[dict[str, Any]]:
    """The `number`th overwrite of every key overwritten that often; in the last round, the
    deletions (each key's after its last write, as S3 orders a key's events)."""

    def change(item: tuple[int, tuple[KeyLife, int, bool]]) -> list[dict[str, Any]]:
        index, (life, overwrites, doomed) = item
        if number <= overwrites:
            return [_put(bucket, life, body_for(index * 10 + number))]
        if doomed and deletions:
            return [_delete(bucket, life)]
        return []

    with concurrent.futures.ThreadPoolExecutor(WRITER_THREADS) as pool:
        return [event for events in pool.map(change, enumerate(plans)) for event in events]


def twice_or_once(
    events: list[dict[str, Any]], share: float, rng: random.Random
) -> list[dict[str, Any]]:
    """Each event once, a share of them twice; the whole list shuffled."""
    delivered = [*events, *[e for e in events if rng.random() < share]]
    rng.shuffle(delivered)
    return delivered


def delay_for(rng: random.Random, spread: float) -> float:
    """When S3 gets an event to the function: within `spread`, or (a fifth of them) held
    back past the next rounds of writes."""
    delay = rng.uniform(0, spread)
    return delay + 3 * spread if rng.random() < HELD_BACK_SHARE else delay


def out_of_order(handled: list[dict[str, Any]]) -> int:
    """Events the function was handed after a later event of the same key (by S3's
    sequencer)."""
    latest: dict[str, str] = {}
    late = 0
    for event in handled:
        obj = event["Records"][0]["s3"]["object"]
        seen = latest.get(obj["key"])
        if seen is not None and seen > obj["sequencer"]:
            late += 1
        latest[obj["key"]] = max(seen or "", obj["sequencer"])
    return late


# --- the function and the poller -----------------------------------------------------------------


def instances(
    rig: Rig, settings: Settings, count: int, handled: list[dict[str, Any]]
) -> list[tuple[str, Handler]]:
    """The import function's warm instances, deletions followed (ON_DELETE); each event
    they are handed goes on `handled`, in order."""
    built: list[tuple[str, Handler]] = []
    for number in range(count):
        log = CapturedLogger.create()
        rig.logs.append(log)
        function = build_import_function(settings, log.logger, rig.metrics)

        def handler(
            event: Any, context: LambdaContext, function: Any = function, log: Any = log
        ) -> Any:
            handled.append(event)
            return handle_event(
                event,
                context,
                function.importer,
                function.dead_letters,
                log.logger,
                function.removals,
            )

        built.append((f"follow-{number}", handler))
    return built


@dataclass
class Poller:
    """The status poller (its swapper too), built as its handler builds it; its runs added
    up."""

    function: Any
    polls: Polls = field(default_factory=Polls)

    @classmethod
    def build(cls, rig: Rig) -> Poller:
        log = CapturedLogger.create()
        rig.logs.append(log)
        environment = {
            **rig.stack.environments["PollerFunction"],
            "WISTIA_API_URL": rig.emulator.url,
            "STATUS_POLL_AFTER_SECONDS": "0",
            "STATUS_POLL_MAX_REQUESTS": str(POLL_MAX_REQUESTS),
            # As the importers' budget (Rig.settings): the emulator has no limit here.
            "WISTIA_REQUESTS_PER_MINUTE": str(UNLIMITED_REQUESTS_PER_MINUTE),
        }
        settings = PollerSettings.from_env(environment)
        return cls(build_status_poller(settings, log.logger, rig.metrics))

    def run(self) -> bool:
        """One scheduled run; whether it found nothing due."""
        report = self.function.poller.run(time.time() + 60, self.function.budget())
        swaps = report.swaps.as_dict() if report.swaps is not None else {}
        self.polls.runs += 1
        self.polls.requests += report.requests + swaps.get("requests", 0)
        self.polls.swaps.update({k: v for k, v in swaps.items() if k != "looked_at"})
        return bool(report.pending == 0 and not swaps.get("looked_at"))

    def until_done(self, rig: Rig, runs: int) -> bool:
        """Runs once Wistia has settled, until one finds nothing due (bounded)."""
        for _ in range(runs):
            rig.emulator.wait_until_settled(timeout=SETTLE_SECONDS)
            if self.run():
                return True
        return False

    @contextmanager
    def on_schedule(self, every: float) -> Iterator[None]:
        """Runs every `every` seconds in a thread of their own while the block runs, as
        its schedule runs it while events keep coming."""
        stop = threading.Event()

        def runs() -> None:
            while not stop.wait(every):
                self.run()

        thread = threading.Thread(target=runs, name="poller-schedule", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=120)


# --- the run -----------------------------------------------------------------------------------


def run_follow(aws: LocalAws, scenario: Scenario, log_dir: Path | None = None) -> ScenarioResult:
    started = time.monotonic()
    rng = random.Random(scenario.seed)  # noqa: S311 - a reproducible workload
    rig = Rig.start(aws, processing_delay=scenario.processing_delay)
    try:
        return _run(rig, scenario, rng, started, log_dir)
    finally:
        rig.stop()


def _run(
    rig: Rig, scenario: Scenario, rng: random.Random, started: float, log_dir: Path | None
) -> ScenarioResult:
    settings = replace(rig.settings(), on_overwrite="replace", on_delete="delete")
    handled: list[dict[str, Any]] = []
    driver = rig.lambda_async(
        instances(rig, settings, scenario.instances, handled), scenario.lambda_timeout,
        scenario.retry_delays,
    ).start()  # fmt: skip
    phases: dict[str, float] = {}
    plans = plan_keys(scenario, rng)
    lives = [life for life, _, _ in plans]

    clock = time.monotonic()
    first = twice_or_once(write_first(rig.stack.bucket, plans), scenario.duplicate_share, rng)
    for number, event in enumerate(first):
        driver.invoke(event, f"first-{number}")
    imported = follow(driver, len(first), [], scenario.timeout)
    first_poller = Poller.build(rig)
    first_ready = first_poller.until_done(rig, MAX_POLLER_RUNS)
    first_polls = first_poller.polls
    phases["first versions, ready"] = time.monotonic() - clock

    # The changes: a round of writes, its events on their way (some held back) while the
    # next round is written, and the poller on its schedule all along (swaps asked for while
    # later writes and deletions are still coming).
    clock = time.monotonic()
    poller = Poller.build(rig)
    handled.clear()
    with poller.on_schedule(POLL_EVERY_SECONDS):
        written, changes = _write_changes(rig, driver, plans, scenario, rng)
        changed = follow(driver, len(first) + len(changes), [], scenario.timeout)
    phases["overwrites and deletions"] = time.monotonic() - clock
    clock = time.monotonic()
    during = poller.polls.runs
    done = poller.until_done(rig, MAX_POLLER_RUNS)
    polls = poller.polls
    phases["poller: statuses and swaps"] = time.monotonic() - clock

    end = rig.collect(settle=True)
    swaps = rig.emulator.swaps()
    placed = expected_ends(lives, end.records)
    verdict = check(
        placed,
        end.records,
        end.dead_letters,
        as_first_fetched(end.medias, swaps, end.records),
        end.texts,
        rig.tokens,
        rig.aws_secret,
    )
    deliveries = len(first) + len(changes)
    result = ScenarioResult(
        scenario=scenario,
        objects=len(lives),
        deliveries=deliveries,
        repeats=deliveries - len(lives) - len(written),
        faults=+Counter(
            {
                "events delivered twice": deliveries - len(lives) - len(written),
                "events after a later one of their key": out_of_order(handled),
            }
        ),
        verdict=verdict,
        redrive=None,
        driver=driver.stats,
        metrics=rig.metrics.counts,
        seconds=time.monotonic() - started,
        phases=phases,
    )
    if not (imported and changed):
        result.checks.append(f"not every event ended within {scenario.timeout:.0f} s")
    if not (first_ready and done):
        result.checks.append(f"statuses or swaps still due after {MAX_POLLER_RUNS} poller runs")
    judged = judge_end_state(lives, end.records, end.medias, swaps, rig)
    result.checks += judged.problems[:30]
    if len(judged.problems) > 30:
        result.checks.append(f"... and {len(judged.problems) - 30} more")
    if end.dead_letters:
        result.checks.append(
            f"{len(end.dead_letters)} dead letters, none expected: "
            + "; ".join(sorted({letter.reason for letter in end.dead_letters})[:5])
        )
    if verdict.unsettled_records:
        result.checks.append(f"records left unfinished: {dict(verdict.unsettled_records)}")
    swap_states = Counter(str(r.get("swap_status")) for r in end.records if r.get("swap_status"))
    result.notes.append(
        f"keys {len(lives)}: {sum(life.overwrites for life in lives)} overwrites "
        f"({dict(sorted(Counter(life.overwrites for life in lives).items()))} keys by count), "
        f"{sum(life.deleted for life in lives)} deleted; deliveries {deliveries} "
        f"({len(first)} first versions, {len(changes)} changes)"
    )
    result.notes.append(
        f"swaps: requested {polls.swaps['requested']}, finished {polls.swaps['swapped']} "
        f"(Wistia: {len(rig.emulator.swaps())}), superseded {polls.swaps['superseded']}, "
        f"failed {polls.swaps['failed']}; records' swap_status {dict(sorted(swap_states.items()))}"
    )
    result.notes.append(
        f"end state: {judged.live} live keys holding their current bytes in their original "
        f"media, {judged.deleted} deleted keys' originals deleted, {judged.replacements_left} "
        f"replacement medias left as medias of their own ({judged.left_of_deleted} of deleted "
        f"keys), {judged.deleted_media} medias deleted in all"
    )
    result.notes.append(
        f"requests to Wistia {len(end.requests)} (poller: {first_polls.runs} runs for the first "
        f"versions, {during} on its schedule during the changes and {polls.runs - during} "
        f"after; {first_polls.requests + polls.requests} of their requests)"
    )
    if log_dir is not None:
        rig.write_logs(log_dir / f"{scenario.name}.log")
    return result


def _write_changes(
    rig: Rig,
    driver: Any,
    plans: list[tuple[KeyLife, int, bool]],
    scenario: Scenario,
    rng: random.Random,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each round of writes, its events handed to Lambda (once or twice, shuffled, some
    held back) before the next round is written; the events S3 sent, and those delivered."""
    written: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    spread = max(1.0, len(plans) * SPREAD_PER_KEY)
    rounds = scenario.max_overwrites + 1
    for number in range(1, rounds + 1):
        events = write_round(rig.stack.bucket, plans, number, deletions=number == rounds)
        for event in twice_or_once(events, scenario.duplicate_share, rng):
            driver.invoke(event, f"change-{len(changes)}", delay_for(rng, spread))
            changes.append(event)
        written += events
    return written, changes


# --- the end state -------------------------------------------------------------------------------

DELETED_FIRST = "the object was deleted"


def expected_ends(lives: list[KeyLife], records: list[dict[str, Any]]) -> list[PlacedObject]:
    """Every version written, to be imported; but a version of a deleted key whose event came
    after the deletion is skipped, with the reason (S3 holds a delete marker over it)."""
    skipped = {
        (str(r["object_key"]), str(r["object_version"]))
        for r in records
        if r.get("status") == "SKIPPED" and str(r.get("error", "")).startswith(DELETED_FIRST)
    }
    placed = []
    for life in lives:
        for version in life.versions:
            if life.deleted and (life.key, version.version) in skipped:
                placed.append(replace(version, plan=replace(version.plan, expect="skip")))
            else:
                placed.append(version)
    return placed


def as_first_fetched(
    medias: list[dict[str, Any]], swaps: list[dict[str, Any]], records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Wistia's medias with each swapped original's source URL as its own import fetched it
    (a swap gives the original the replacement's): the import invariants match every media
    to the object version it was made from."""
    swapped = {str(s["hashed_id"]) for s in swaps}
    made_from = {
        str(r["wistia_hashed_id"]): (
            str(r["bucket"]),
            str(r["object_key"]),
            str(r["object_version"]),
        )
        for r in records
        if r.get("wistia_hashed_id")
    }
    restored = []
    for media in medias:
        origin = made_from.get(str(media["hashed_id"]))
        if str(media["hashed_id"]) in swapped and origin is not None:
            bucket, key, version = origin
            url = f"http://s3.local/{bucket}/{quote(key)}?versionId={quote(version)}"
            restored.append({**media, "source_url": url})
        else:
            restored.append(media)
    return restored


@dataclass
class EndJudgement:
    problems: list[str] = field(default_factory=list)
    live: int = 0
    deleted: int = 0
    replacements_left: int = 0
    left_of_deleted: int = 0
    deleted_media: int = 0


def judge_end_state(
    lives: list[KeyLife],
    records: list[dict[str, Any]],
    medias: list[dict[str, Any]],
    swaps: list[dict[str, Any]],
    rig: Rig,
) -> EndJudgement:
    judged = EndJudgement()
    hashed_of = {
        (str(r["object_key"]), str(r["object_version"])): str(r["wistia_hashed_id"])
        for r in records
        if r.get("wistia_hashed_id")
    }
    by_hashed = {str(m["hashed_id"]): m for m in medias}
    last_swap = {str(s["hashed_id"]): s for s in sorted(swaps, key=lambda s: float(s["at"]))}
    replacing = {
        str(r["wistia_hashed_id"])
        for r in records
        if r.get("wistia_hashed_id") and r.get("replaces_wistia_hashed_id")
    }
    originals_deleted: set[str] = set()
    for life in lives:
        hashed = [hashed_of.get((life.key, v.version)) for v in life.versions]
        original = by_hashed.get(hashed[0] or "")
        if original is None:
            judged.problems.append(f"{life.key}: no original media ({hashed[0]})")
            continue
        current = _current_bytes(rig.stack.bucket, life.key)
        if life.deleted:
            _judge_deleted(judged, life, original, current, (by_hashed, replacing), hashed)
            originals_deleted.add(str(original["hashed_id"]))
        else:
            _judge_live(judged, life, original, current, last_swap, hashed)
        judged.replacements_left += sum(
            1 for h in hashed[1:] if h in by_hashed and not by_hashed[h]["deleted"]
        )
    deleted = {str(m["hashed_id"]) for m in medias if m["deleted"]}
    judged.deleted_media = len(deleted)
    for hashed_id in sorted(deleted - originals_deleted)[:20]:
        judged.problems.append(f"media {hashed_id} deleted, but it is no deleted key's original")
    return judged


def _judge_live(
    judged: EndJudgement,
    life: KeyLife,
    original: dict[str, Any],
    current: bytes | None,
    last_swap: dict[str, dict[str, Any]],
    hashed: list[str | None],
) -> None:
    if current is None or current != life.bodies[-1]:
        judged.problems.append(f"{life.key}: S3 does not hold its last write")
        return
    if original["deleted"] or original["archived"]:
        judged.problems.append(f"{life.key}: its original media {original['hashed_id']} is gone")
        return
    if original["sha256"] != hashlib.sha256(current).hexdigest():
        judged.problems.append(
            f"{life.key}: original media {original['hashed_id']} holds another version's file "
            f"({life.overwrites} overwrites)"
        )
        return
    swap = last_swap.get(str(original["hashed_id"]))
    if life.overwrites and (swap is None or swap["replacement_hashed_id"] != hashed[-1]):
        judged.problems.append(f"{life.key}: the last swap was not the last version's media")
        return
    judged.live += 1


def _judge_deleted(
    judged: EndJudgement,
    life: KeyLife,
    original: dict[str, Any],
    current: bytes | None,
    known: tuple[dict[str, dict[str, Any]], set[str]],
    hashed: list[str | None],
) -> None:
    by_hashed, replacing = known
    if current is not None:
        judged.problems.append(f"{life.key}: deleted, but S3 still has a current version")
    if not original["deleted"]:
        judged.problems.append(
            f"{life.key}: deleted, but its original media {original['hashed_id']} is not"
        )
        return
    judged.deleted += 1
    live = [h for h in hashed[1:] if h in by_hashed and not by_hashed[h]["deleted"]]
    judged.left_of_deleted += len(live)
    own = [h for h in live if h not in replacing]
    if own:
        judged.problems.append(
            f"{life.key}: deleted, but {len(own)} of its versions are live medias of their own "
            f"(no replacement of the original): {own}"
        )


def _current_bytes(bucket: str, key: str) -> bytes | None:
    try:
        answer = s3_client().get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    body: bytes = answer["Body"].read()
    return body
