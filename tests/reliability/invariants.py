"""The end state of a scenario, and what must hold of it.

Read at the end: every import record, every message in the dead-letter queue (drained),
every media the Wistia emulator holds (each traced to the object it was fetched from by
its source URL), and everything the function logged. Then, per object:

- SUBMITTED: the record names a media Wistia has, and that media is this object's;
- SKIPPED: the record says why (and the object is one that should be skipped);
- FAILED: the record says why and the function's dead letter for it is in the queue;
- DEAD: Lambda's on-failure record for an event naming it is in the queue;
- LOST: none of these (or a SUBMITTED record whose media is missing or another object's).

Duplicates are counted per object: every media fetched from the same object version past
the first. Secrets: the tokens, the AWS secret key, "X-Amz-Signature"/"X-Amz-Credential"
and every signature value the function handed Wistia, searched in logs, records and
dead-letter messages.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, unquote_plus, urlsplit

import boto3

from reliability.workload import PlacedObject

Final = Literal["SUBMITTED", "SKIPPED", "FAILED", "DEAD", "LOST"]
Identity = tuple[str, str, str]
MAX_DRAIN_ROUNDS = 2000
HEX64 = re.compile(r"[0-9a-f]{64}")
GAVE_UP = re.compile(r"; gave up after \d+ attempt\(s\) in this invocation")
URI_PREFIX = re.compile(r"s3://[^:]*?: ")


@dataclass(frozen=True)
class DeadLetter:
    raw: str
    body: Any
    kind: Literal["function", "lambda", "queue", "unreadable"]
    identities: tuple[Identity, ...]
    reason: str  # a short category for the report


@dataclass(frozen=True)
class ObjectOutcome:
    identity: Identity
    expect: str
    final: Final
    medias: int
    detail: str
    record_status: str | None = None


@dataclass
class Verdict:
    outcomes: list[ObjectOutcome]
    finals: Counter[str]
    lost: list[ObjectOutcome]
    duplicated: int
    duplicated_objects: list[str]
    unexpected_imports: list[str]
    dead_letter_reasons: Counter[str]
    other_dead_letters: Counter[str]  # messages that name no object of the scenario
    secrets: Counter[str]
    dead_but_imported: int  # dead-lettered objects that Wistia does hold: a redrive must adopt
    # Lambda on-failure records for objects that ended imported anyway (a repeat delivery that
    # kept finding the claim held): harmless to redrive, but noise in the queue.
    spurious_dead_letters: int
    duplicated_names: int  # media past the first per media name (a cross-check of `duplicated`)
    unsettled_records: Counter[str]  # IN_PROGRESS / PENDING_RETRY records at the end
    problems: list[str] = field(default_factory=list)

    @property
    def dead_lettered(self) -> int:
        return self.finals["FAILED"] + self.finals["DEAD"]


# --- reading the end state -------------------------------------------------------------------


def drain_dead_letters(queue_url: str) -> list[DeadLetter]:
    """Every message in the queue, classified, deleted as read (bounded)."""
    sqs = boto3.client("sqs")
    letters: list[DeadLetter] = []
    for _ in range(MAX_DRAIN_ROUNDS):
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            letters.append(classify_dead_letter(message["Body"]))
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )
    return letters


# Messages that keep the original event after its retries ran out: Lambda's on-failure
# record (Intake=Direct) and the event itself, redriven from the intake queue (Intake=Queue).
EVENTS_KEPT = ("lambda", "queue")


def classify_dead_letter(raw: str) -> DeadLetter:
    try:
        body = json.loads(raw)
    except ValueError:
        return DeadLetter(raw, None, "unreadable", (), "not JSON")
    if isinstance(body, dict) and "requestPayload" in body:
        payload = body.get("requestPayload")
        response = body.get("responsePayload") or {}
        reason = f"{response.get('errorType', '?')}: {_short(response.get('errorMessage', ''))}"
        return DeadLetter(raw, body, "lambda", tuple(identities_in(payload)), reason)
    if isinstance(body, dict) and "reason" in body:
        identity: tuple[Identity, ...] = ()
        if body.get("bucket") is not None:
            identity = (
                (str(body["bucket"]), str(body["object_key"]), str(body["object_version"])),
            )
        return DeadLetter(raw, body, "function", identity, _short(str(body.get("reason", ""))))
    if isinstance(body, dict) and isinstance(body.get("Records"), list):
        # An S3 event the intake queue redrove here after maxReceiveCount deliveries.
        reason = "delivered the intake queue's maxReceiveCount times"
        return DeadLetter(raw, body, "queue", tuple(identities_in(body)), reason)
    return DeadLetter(raw, body, "unreadable", (), "neither a dead letter nor an on-failure record")


def identities_in(payload: Any) -> list[Identity]:
    """The object versions an S3 notification or an EventBridge S3 event names (keys decoded
    as the function does)."""
    found: list[Identity] = []
    if isinstance(payload, dict) and payload.get("source") == "aws.s3":
        try:
            detail = payload["detail"]
            obj = detail["object"]
            version = obj.get("version-id") or obj.get("etag") or "unknown"
            found.append((str(detail["bucket"]["name"]), unquote_plus(obj["key"]), str(version)))
        except (KeyError, TypeError, AttributeError):
            pass
        return found
    records = payload.get("Records") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        return found
    for record in records:
        try:
            s3 = record["s3"]
            obj = s3["object"]
            version = obj.get("versionId") or obj.get("eTag") or "unknown"
            found.append((str(s3["bucket"]["name"]), unquote_plus(obj["key"]), str(version)))
        except (KeyError, TypeError, AttributeError):
            continue
    return found


def _short(text: str, limit: int = 90) -> str:
    text = GAVE_UP.sub("", URI_PREFIX.sub("", str(text)))
    text = text.split("; s3://", 1)[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def media_identity(media: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """The object version a media was imported from, from its (presigned) source URL."""
    url = media.get("source_url")
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    path = unquote(parts.path)
    bucket, _, key = path.lstrip("/").partition("/")
    version = parse_qs(parts.query).get("versionId", [None])[0]
    return (bucket, key, version)


def signatures_of(medias: Iterable[dict[str, Any]]) -> set[str]:
    """The presigned-URL signatures the function handed to Wistia."""
    values = set()
    for media in medias:
        url = media.get("source_url") or ""
        for value in parse_qs(urlsplit(url).query).get("X-Amz-Signature", []):
            values.add(value)
    return values


# --- the checks --------------------------------------------------------------------------------


def find_secrets(
    texts: dict[str, str], tokens: Sequence[str], aws_secret: str, signatures: set[str]
) -> Counter[str]:
    """Where a secret or a signature shows up: Counter of "what in where"."""
    hits: Counter[str] = Counter()
    for where, text in texts.items():
        for token in tokens:
            if token and token in text:
                hits[f"token in {where}"] += text.count(token)
        if aws_secret in text:
            hits[f"AWS secret key in {where}"] += 1
        for marker in ("X-Amz-Signature", "X-Amz-Credential", "x-amz-signature"):
            if marker in text:
                hits[f"{marker} in {where}"] += text.count(marker)
        leaked = [value for value in HEX64.findall(text) if value in signatures]
        if leaked:
            hits[f"signature value in {where}"] += len(leaked)
    return hits


def check(
    objects: Sequence[PlacedObject],
    records: Sequence[dict[str, Any]],
    dead_letters: Sequence[DeadLetter],
    medias: Sequence[dict[str, Any]],
    texts: dict[str, str],
    tokens: Sequence[str],
    aws_secret: str,
) -> Verdict:
    by_identity = {
        (str(r.get("bucket")), str(r.get("object_key")), str(r.get("object_version"))): r
        for r in records
    }
    medias_by_hashed = {str(m["hashed_id"]): m for m in medias}
    media_count: Counter[tuple[str, str, str | None]] = Counter()
    for media in medias:
        identity = media_identity(media)
        if identity is not None:
            media_count[identity] += 1
    letters_for: dict[Identity, list[DeadLetter]] = {}
    for letter in dead_letters:
        for identity in letter.identities:
            letters_for.setdefault(identity, []).append(letter)

    outcomes: list[ObjectOutcome] = []
    duplicated_objects: list[str] = []
    unexpected: list[str] = []
    reasons: Counter[str] = Counter()
    dead_but_imported = 0
    known: set[tuple[str, str, str | None]] = set()
    for placed in objects:
        identity = placed.identity
        media_key = (placed.bucket, placed.key, placed.uploaded.version_id)
        known.add(media_key)
        count = media_count[media_key]
        if count > 1:
            duplicated_objects.append(f"{placed.key} ({count} media)")
        if count and placed.plan.expect != "import":
            unexpected.append(f"{placed.key}: imported, but it should be {placed.plan.expect}")
        outcome = _judge(placed, by_identity.get(identity), letters_for.get(identity, []))
        if outcome.final == "SUBMITTED":
            outcome = _check_media(outcome, by_identity[identity], medias_by_hashed, media_key)
        record = by_identity.get(identity)
        status = str(record.get("status")) if record else None
        outcome = ObjectOutcome(
            identity, placed.plan.expect, outcome.final, count, outcome.detail, status
        )
        if outcome.final in ("FAILED", "DEAD"):
            letters = letters_for.get(identity, [])
            lambda_reason = next((x.reason for x in letters if x.kind in EVENTS_KEPT), None)
            if outcome.final == "FAILED":
                reasons[outcome.detail if not letters else _first_reason(letters)] += 1
            elif lambda_reason is not None:
                reasons[f"retries exhausted: {lambda_reason}"] += 1
            else:
                reasons[f"dead letter, record {status}: {outcome.detail}"] += 1
            if outcome.final == "DEAD" and count:
                dead_but_imported += 1
        outcomes.append(outcome)

    orphans = sum(n for identity, n in media_count.items() if identity not in known)
    if orphans:
        unexpected.append(f"{orphans} media fetched from no object of this scenario")
    duplicated = sum(max(0, media_count[k] - 1) for k in known) + orphans
    names = Counter(str(media.get("name")) for media in medias)
    others: Counter[str] = Counter(
        f"{letter.kind}: {letter.reason}" for letter in dead_letters if not letter.identities
    )
    finals: Counter[str] = Counter(outcome.final for outcome in outcomes)
    done = {o.identity for o in outcomes if o.final in ("SUBMITTED", "SKIPPED")}
    spurious = sum(
        1
        for letter in dead_letters
        if letter.kind in EVENTS_KEPT
        and letter.identities
        and all(identity in done for identity in letter.identities)
    )
    lost = [outcome for outcome in outcomes if outcome.final == "LOST"]
    unsettled = Counter(
        str(r.get("status")) for r in records if r.get("status") in ("IN_PROGRESS", "PENDING_RETRY")
    )
    secrets = find_secrets(texts, tokens, aws_secret, signatures_of(medias))
    verdict = Verdict(
        outcomes=outcomes,
        finals=finals,
        lost=lost,
        duplicated=duplicated,
        duplicated_objects=duplicated_objects,
        unexpected_imports=unexpected,
        dead_letter_reasons=reasons,
        other_dead_letters=others,
        secrets=secrets,
        dead_but_imported=dead_but_imported,
        spurious_dead_letters=spurious,
        duplicated_names=sum(count - 1 for count in names.values()),
        unsettled_records=unsettled,
    )
    verdict.problems = problems_of(verdict)
    return verdict


def _first_reason(letters: list[DeadLetter]) -> str:
    return next((x.reason for x in letters if x.kind == "function"), letters[0].reason)


def _judge(
    placed: PlacedObject, record: dict[str, Any] | None, letters: list[DeadLetter]
) -> ObjectOutcome:
    identity = placed.identity
    expect = placed.plan.expect
    status = str(record.get("status")) if record else None
    function_letters = [x for x in letters if x.kind == "function"]
    lambda_letters = [x for x in letters if x.kind in EVENTS_KEPT]

    def outcome(final: Final, detail: str) -> ObjectOutcome:
        return ObjectOutcome(identity, expect, final, 0, detail)

    if record is not None and status == "SUBMITTED":
        return outcome("SUBMITTED", str(record.get("wistia_hashed_id")))
    if record is not None and status == "SKIPPED":
        reason = str(record.get("error") or "")
        if not reason:
            return outcome("LOST", "SKIPPED without a reason")
        if expect == "import":
            return outcome("LOST", f"an object to import was SKIPPED: {reason}")
        return outcome("SKIPPED", reason)
    if record is not None and status == "FAILED":
        if not record.get("error"):
            return outcome("LOST", "FAILED without a reason")
        if function_letters:
            return outcome("FAILED", str(record.get("error")))
        if lambda_letters:
            return outcome("DEAD", lambda_letters[0].reason)
        return outcome("LOST", f"FAILED ({record.get('error')}) but no dead letter names it")
    if lambda_letters:
        return outcome("DEAD", lambda_letters[0].reason)
    if function_letters:
        return outcome("DEAD", function_letters[0].reason)
    return outcome("LOST", f"record {status or 'missing'} and no dead letter names it")


def _check_media(
    outcome: ObjectOutcome,
    record: dict[str, Any],
    medias_by_hashed: dict[str, dict[str, Any]],
    media_key: tuple[str, str, str | None],
) -> ObjectOutcome:
    hashed = str(record.get("wistia_hashed_id"))
    media = medias_by_hashed.get(hashed)
    if media is None:
        detail = f"SUBMITTED as media {hashed}, which Wistia does not hold"
        return ObjectOutcome(outcome.identity, outcome.expect, "LOST", 0, detail)
    if media_identity(media) != media_key:
        detail = f"SUBMITTED as media {hashed}, which is another object's: {media.get('name')!r}"
        return ObjectOutcome(outcome.identity, outcome.expect, "LOST", 0, detail)
    return outcome


def problems_of(verdict: Verdict) -> list[str]:
    problems = []
    for outcome in verdict.lost[:20]:
        problems.append(f"lost: {outcome.identity[1]!r}: {outcome.detail}")
    if len(verdict.lost) > 20:
        problems.append(f"... and {len(verdict.lost) - 20} more lost")
    for text in verdict.duplicated_objects[:20]:
        problems.append(f"duplicated: {text}")
    for text in verdict.unexpected_imports[:20]:
        problems.append(f"unexpected import: {text}")
    for what, count in sorted(verdict.secrets.items()):
        problems.append(f"secret: {what} ({count})")
    return problems
