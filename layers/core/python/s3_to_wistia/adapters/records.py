"""DynamoDB: the import records, one item per object version.

The record is also the claim that makes imports happen once: a conditional write turns
a new record IN_PROGRESS for one invocation only, so a duplicate or concurrent delivery
of the same object version never reaches Wistia a second time. Unlike a TTL'd
idempotency store, the guard never expires.

It also follows the media's processing at Wistia: found by hashed id (by-wistia-hashed-id),
each status written only when newer than the one held (one conditional write), and while a
final status is awaited the record is in the sparse index by-media-watch (partition
`media_watch`, present only then; sort `media_checked_at`), which the poller queries.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from s3_to_wistia.contracts import (
    MEDIA_FAILED_REASON,
    MEDIA_WATCHING,
    PREVIOUS_MEDIA_ATTRIBUTES,
    SWAP_WATCHING,
    ImportRecord,
    MediaStatusChange,
    RecordFields,
    StatusWrite,
)
from s3_to_wistia.errors import AlreadyHandled, ClaimedElsewhere, RetryableError
from s3_to_wistia.model import Claim, ObjectRef, PendingMedia, RecordKey, Status
from s3_to_wistia.times import iso_now

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
MEDIA_INDEX = "by-wistia-hashed-id"
PENDING_INDEX = "by-media-watch"
# What a released dead letter's due time becomes: before any lease, so taken at once.
RELEASED = "1970-01-01T00:00:00.000Z"
QUERY_PAGE = 500
BATCH_GET_KEYS = 100  # DynamoDB's most per BatchGetItem
BATCH_GET_ATTEMPTS = 8
FINAL_STATUSES = frozenset(
    {Status.SUBMITTED.value, Status.FAILED.value, Status.SKIPPED.value, Status.DELETED.value}
)
# What an import wrote about its outcome: `reopen_settled` clears it for the next one.
FORGOTTEN_ON_REOPEN = (
    "error",
    "http_status",
    "attempts",
    "unanswered_submits",
    "first_submit_at",
    "timed_out_at",
    "wistia_hashed_id",
    "wistia_media_id",
    "wistia_response",
    "source_url",
    "url_expires_at",
    "submitted_at",
    "recovered_lost_answer",
    "version_pinned",
    "media_status",
    "media_status_at",
    "media_ready_at",
)
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def record_key(obj: ObjectRef) -> dict[str, Any]:
    """The record's DynamoDB key: s3://bucket/key and the object version."""
    return {"object_uri": {"S": obj.uri}, "object_version": {"S": obj.version}}


class Records:
    def __init__(self, dynamodb_client: Any, table_name: str) -> None:
        self._db = dynamodb_client
        self._table = table_name

    def claim(self, obj: ObjectRef, lease_until: float) -> Claim:
        claim_id = uuid.uuid4().hex
        now = time.time()
        sequencer_set, sequencer_value = _sequencer_written(obj)
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=record_key(obj),
                UpdateExpression=(
                    "SET #status = :in_progress, #bucket = :bucket, object_key = :key, "
                    "claim_id = :claim, lease_expires_at = :lease, updated_at = :now_iso, "
                    "created_at = if_not_exists(created_at, :now_iso)"
                    + sequencer_set
                    + " REMOVE object_deleted_at"
                ),
                # A record whose object was deleted (and its media with it) is imported
                # again when the same bytes come back under the same ETag.
                ConditionExpression=(
                    "attribute_not_exists(object_uri) OR #status = :pending_retry "
                    "OR (#status = :in_progress AND lease_expires_at < :now) "
                    "OR attribute_exists(object_deleted_at)"
                ),
                # "bucket" and "status" are DynamoDB reserved words.
                ExpressionAttributeNames={"#status": "status", "#bucket": "bucket"},
                ExpressionAttributeValues=_values(
                    in_progress=Status.IN_PROGRESS.value,
                    pending_retry=Status.PENDING_RETRY.value,
                    bucket=obj.bucket,
                    key=obj.key,
                    claim=claim_id,
                    lease=_epoch(lease_until),
                    now=_epoch(now),
                    now_iso=iso_now(),
                    **sequencer_value,
                ),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                old = _plain(error.response.get("Item") or {})
                status = str(old.get("status", ""))
                if status in FINAL_STATUSES:
                    raise AlreadyHandled(status) from error
                # In progress elsewhere, or a state we cannot read: let the event come back.
                raise ClaimedElsewhere(
                    "another invocation is importing this object version"
                ) from error
            raise _classified(error, "claim the import record") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB claim failed: {error}") from error
        old = _plain(answer.get("Attributes") or {})
        unanswered = int(old.get("unanswered_submits", 0))
        first_submit_at = old.get("first_submit_at")
        if old.get("status") == Status.IN_PROGRESS.value:
            # Taking over an invocation that died holding the claim: it may have submitted
            # the import before it died, so the media must be looked for first.
            unanswered = max(unanswered, 1)
            first_submit_at = first_submit_at or old.get("updated_at")
        return Claim(
            claim_id=claim_id,
            earlier_attempts=unanswered,
            first_submit_at=first_submit_at,
            timed_out_at=old.get("timed_out_at"),
        )

    def record_skipped(self, obj: ObjectRef, reason: str) -> None:
        """A SKIPPED record decided from the event alone; a duplicate writes the same."""
        now = iso_now()
        self._put(
            obj,
            {"status": Status.SKIPPED.value, "error": reason, "created_at": now, "updated_at": now},
        )

    def finish(self, obj: ObjectRef, claim: Claim, status: Status, fields: RecordFields) -> None:
        """Close the claim with the final status and what we learned. A new media starts its
        processing status afresh: what the record said of the one before goes."""
        values = {**fields.attributes(), "status": status.value, "updated_at": iso_now()}
        names = {f"#f{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(values)))
        removed = ["claim_id", "lease_expires_at"]
        if fields.wistia_hashed_id is not None:
            removed += PREVIOUS_MEDIA_ATTRIBUTES
        try:
            self._db.update_item(
                TableName=self._table,
                Key=record_key(obj),
                UpdateExpression=f"SET {sets} REMOVE {', '.join(removed)}",
                ConditionExpression="claim_id = :claim",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    **{f":f{i}": _serializer.serialize(v) for i, v in enumerate(values.values())},
                    ":claim": {"S": claim.claim_id},
                },
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                raise RetryableError(
                    "lost the claim on the import record (the invocation overran its lease)"
                ) from error
            raise _classified(error, "write the import record") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error

    def release(self, obj: ObjectRef, claim: Claim, fields: RecordFields) -> None:
        """Hand the object back for a later retry, remembering submissions of unknown fate,
        so the retry looks for the media they may have created before submitting again."""
        self.finish(obj, claim, Status.PENDING_RETRY, fields)

    def recorded_media(self, hashed_ids: list[str]) -> set[str]:
        """Which of these Wistia medias a record already holds (the hashed-id index)."""
        found = set()
        for hashed_id in dict.fromkeys(hashed_ids):
            try:
                answer = self._db.query(
                    TableName=self._table,
                    IndexName=MEDIA_INDEX,
                    KeyConditionExpression="wistia_hashed_id = :h",
                    ExpressionAttributeValues={":h": {"S": hashed_id}},
                    Limit=1,
                )
            except ClientError as error:
                raise _classified(error, "look up a media's record") from error
            except BotoCoreError as error:
                raise RetryableError(f"DynamoDB query failed: {error}") from error
            if answer.get("Items"):
                found.add(hashed_id)
        return found

    def get(self, obj: ObjectRef) -> ImportRecord | None:
        """The record as stored now (a consistent read), or None."""
        try:
            answer = self._db.get_item(
                TableName=self._table, Key=record_key(obj), ConsistentRead=True
            )
        except ClientError as error:
            raise _classified(error, "read the import record") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB read failed: {error}") from error
        item = answer.get("Item")
        return ImportRecord.from_attributes(_plain(item)) if item else None

    def get_many(self, objects: list[ObjectRef]) -> dict[tuple[str, str], ImportRecord]:
        """The records of these object versions that exist, by (object_uri, object_version)."""
        keys = list({(o.uri, o.version): record_key(o) for o in objects}.values())
        return {
            (key.object_uri, key.object_version): record
            for key, record in self._read_batches(keys, consistent=False)
        }

    def _read_batches(
        self, keys: list[dict[str, Any]], consistent: bool
    ) -> list[tuple[RecordKey, ImportRecord]]:
        """The records found, each with its key as stored: BatchGetItem, 100 keys a
        request, what DynamoDB leaves unprocessed asked again."""
        found: list[tuple[RecordKey, ImportRecord]] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            chunk = {"Keys": keys[start : start + BATCH_GET_KEYS], "ConsistentRead": consistent}
            pending: dict[str, Any] = {self._table: chunk}
            for attempt in range(BATCH_GET_ATTEMPTS):
                answer = self._batch_get(pending)
                found += [
                    (_record_key(item), ImportRecord.from_attributes(_plain(item)))
                    for item in answer.get("Responses", {}).get(self._table, [])
                ]
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
            if pending:
                raise RetryableError("DynamoDB left keys unprocessed (throttled): try again")
        return found

    def _batch_get(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self._db.batch_get_item(RequestItems=request)
        except ClientError as error:
            raise _classified(error, "read import records") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB read failed: {error}") from error
        return answer

    def reopen_for_reimport(self, obj: ObjectRef, hashed_id: str) -> bool:
        """SUBMITTED -> PENDING_RETRY for an object whose media Wistia could not process, so
        the next delivery (a backfill) imports it again with a fresh URL. Forgets what was
        known of the failed media's processing and of lost answers: the new import starts
        clean. False when the record is not SUBMITTED with that media any more."""
        now = iso_now()
        return self._transition(
            obj,
            "SET #status = :pending, updated_at = :now, reimport_requested_at = :now "
            "REMOVE unanswered_submits, first_submit_at, timed_out_at, media_status, "
            "media_status_at, media_ready_at",
            "#status = :submitted AND wistia_hashed_id = :hashed_id",
            _values(
                pending=Status.PENDING_RETRY.value,
                submitted=Status.SUBMITTED.value,
                hashed_id=hashed_id,
                now=now,
            ),
        )

    def reopen(self, obj: ObjectRef) -> bool:
        """FAILED -> PENDING_RETRY, the one status besides "new" that the claim accepts, so
        a redriven event is imported again. False when the record was not FAILED any more."""
        now = iso_now()
        return self._transition(
            obj,
            "SET #status = :pending, updated_at = :now, redriven_at = :now ADD redrives :one",
            "#status = :failed",
            _values(pending=Status.PENDING_RETRY.value, failed=Status.FAILED.value, now=now, one=1),
        )

    def reopen_settled(self, obj: ObjectRef, seen: ImportRecord) -> bool:
        """SUBMITTED, FAILED or SKIPPED -> PENDING_RETRY, for an operator who imports the
        object again on purpose (`s3-to-wistia import --again`), and only while the record
        is exactly as `seen` (same status, same updated_at): two operators cannot both
        reopen it, nor can one reopen what an invocation changed meanwhile. The earlier
        outcome is forgotten (a later claim starts afresh, with no lost answer to look
        for), except the media it created: its hashed id moves to
        replaced_wistia_hashed_ids. False when the record is not as seen any more."""
        now = iso_now()
        sets = ["#status = :pending", "updated_at = :now", "redriven_at = :now"]
        values: dict[str, Any] = {
            "pending": Status.PENDING_RETRY.value,
            "now": now,
            "one": 1,
            "seen": seen.status,
        }
        if seen.wistia_hashed_id:
            sets.append(
                "replaced_wistia_hashed_ids = list_append("
                "if_not_exists(replaced_wistia_hashed_ids, :none), :replaced)"
            )
            values.update(none=[], replaced=[seen.wistia_hashed_id])
        condition = "#status = :seen AND "
        if seen.updated_at is None:
            condition += "attribute_not_exists(updated_at)"
        else:
            condition += "updated_at = :seen_at"
            values["seen_at"] = seen.updated_at
        # Placeholders: "error" and others are DynamoDB reserved words.
        forgotten = {f"#r{i}": name for i, name in enumerate(FORGOTTEN_ON_REOPEN)}
        return self._transition(
            obj,
            f"SET {', '.join(sets)} ADD redrives :one REMOVE {', '.join(forgotten)}",
            condition,
            _values(**values),
            forgotten,
        )

    def undo_reopen(self, obj: ObjectRef) -> bool:
        """PENDING_RETRY -> FAILED, when a redrive reopened the record and could not go on
        (its invocation failed to start): the record says FAILED again, as before."""
        return self._transition(
            obj,
            "SET #status = :failed, updated_at = :now",
            "#status = :pending",
            _values(pending=Status.PENDING_RETRY.value, failed=Status.FAILED.value, now=iso_now()),
        )

    # --- the media's processing at Wistia ------------------------------------------------

    def mark_object_deleted(self, record: ImportRecord) -> None:
        """The object of this (unversioned) record was deleted and its media with it: the
        next upload of the same bytes, under the same ETag, is imported again."""
        self._call(
            "mark the record's object deleted",
            self._db.update_item,
            Key={
                "object_uri": {"S": record.object_uri},
                "object_version": {"S": record.object_version},
            },
            UpdateExpression="SET object_deleted_at = :now",
            ConditionExpression="attribute_exists(object_uri)",
            ExpressionAttributeValues={":now": {"S": iso_now()}},
        )

    def records_of_key(self, bucket: str, key: str) -> list[ImportRecord]:
        """Every record of one key: each version's import and each deletion (consistent)."""
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = self._call(
                "read the key's records",
                self._db.query,
                KeyConditionExpression="object_uri = :uri",
                ExpressionAttributeValues={":uri": {"S": f"s3://{bucket}/{key}"}},
                ConsistentRead=True,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return [ImportRecord.from_attributes(_plain(item)) for item in items]

    def records_of_media(self, hashed_id: str) -> list[RecordKey]:
        answer = self._call(
            "look up a media's record",
            self._db.query,
            IndexName=MEDIA_INDEX,
            KeyConditionExpression="wistia_hashed_id = :h",
            ExpressionAttributeValues={":h": {"S": hashed_id}},
            Limit=10,
        )
        return [_record_key(item) for item in answer.get("Items", [])]

    def apply_media_status(
        self, key: RecordKey, hashed_id: str, change: MediaStatusChange
    ) -> StatusWrite:
        update, names, values = _status_update(change)
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=_dynamodb_key(key),
                UpdateExpression=update,
                # Still this media's record, and the change newer than the status it holds.
                ConditionExpression=(
                    "attribute_exists(object_uri) AND wistia_hashed_id = :hashed "
                    "AND (attribute_not_exists(media_event) OR media_event < :order)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(hashed=hashed_id, order=change.order, **values),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise _classified(error, "write the media's status") from error
            return StatusWrite(False, _holding(error.response.get("Item"), hashed_id))
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error
        return StatusWrite(True, _holding(answer.get("Attributes"), hashed_id))

    def claim_media_failure(
        self, key: RecordKey, hashed_id: str, now: str, stale_before: str
    ) -> ImportRecord | None:
        try:
            answer = self._db.update_item(
                TableName=self._table,
                Key=_dynamodb_key(key),
                UpdateExpression=(
                    "SET #status = :failed, #error = :reason, media_dead_letter_due = :now, "
                    "updated_at = :now"
                ),
                ConditionExpression=(
                    "wistia_hashed_id = :hashed AND media_status = :media_failed "
                    "AND attribute_exists(media_watch) AND (#status = :submitted "
                    "OR (#status = :failed AND media_dead_letter_due < :stale))"
                ),
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=_values(
                    failed=Status.FAILED.value,
                    submitted=Status.SUBMITTED.value,
                    reason=MEDIA_FAILED_REASON,
                    now=now,
                    stale=stale_before,
                    hashed=hashed_id,
                    media_failed="failed",
                ),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return None  # dead-lettered already, or being sent by another caller
            raise _classified(error, "mark the import record FAILED") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error
        return ImportRecord.from_attributes(_plain(answer["Attributes"]))

    def settle_media_failure(self, key: RecordKey, hashed_id: str, claimed_at: str) -> None:
        self._media_transition(
            key,
            "REMOVE media_watch, media_dead_letter_due",
            "media_dead_letter_due = :claimed AND wistia_hashed_id = :hashed",
            _values(claimed=claimed_at, hashed=hashed_id),
        )

    def release_media_failure(self, key: RecordKey, hashed_id: str, claimed_at: str) -> None:
        self._media_transition(
            key,
            "SET media_dead_letter_due = :released",
            "media_dead_letter_due = :claimed AND wistia_hashed_id = :hashed",
            _values(claimed=claimed_at, hashed=hashed_id, released=RELEASED),
        )

    def mark_swap_due(self, key: RecordKey, hashed_id: str, now: str) -> bool:
        """A replacement's media is ready: list it for the poller to swap in (the
        by-media-watch index's `swap` partition). False when it is no longer due."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_dynamodb_key(key),
                UpdateExpression=(
                    "SET media_watch = :swap, media_checked_at = :now, swap_status = :due"
                ),
                ConditionExpression=(
                    "wistia_hashed_id = :hashed AND attribute_exists(replaces_wistia_hashed_id) "
                    "AND attribute_not_exists(swap_status)"
                ),
                ExpressionAttributeValues=_values(
                    swap=SWAP_WATCHING, now=now, due="due", hashed=hashed_id
                ),
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise _classified(error, "list the replacement for its swap") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error
        return True

    def swaps_due(self, limit: int) -> list[ImportRecord]:
        """Replacements waiting for their swap (or for its background job), oldest first."""
        answer = self._call(
            "list the swaps due",
            self._db.query,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="media_watch = :swap",
            ExpressionAttributeValues=_values(swap=SWAP_WATCHING),
            Limit=limit,
        )
        keys = [_record_key(item) for item in answer.get("Items", [])]
        found = self.get_many_keys(keys)
        return [r for r in found if r.swap_status in ("due", "requested")]

    def get_many_keys(self, keys: list[RecordKey]) -> list[ImportRecord]:
        """The records of these keys, read consistently (the index holds only keys), in the
        keys' order."""
        unique = list(dict.fromkeys(keys))  # BatchGetItem refuses a key asked twice
        found = dict(self._read_batches([_dynamodb_key(key) for key in unique], consistent=True))
        return [found[key] for key in keys if key in found]

    def set_swap(self, key: RecordKey, status: str, fields: dict[str, str], done: bool) -> None:
        """Write how the swap went; `done` takes the record off the swap list."""
        values = {"swap_status": status, "updated_at": iso_now(), **fields}
        names = {f"#w{i}": name for i, name in enumerate(values)}
        sets = ", ".join(f"#w{i} = :w{i}" for i in range(len(values)))
        self._call(
            "write the swap's outcome",
            self._db.update_item,
            Key=_dynamodb_key(key),
            UpdateExpression=f"SET {sets}" + (" REMOVE media_watch" if done else ""),
            ConditionExpression="attribute_exists(object_uri)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={
                f":w{i}": _serializer.serialize(v) for i, v in enumerate(values.values())
            },
        )

    def pending_media(self, checked_before: str, limit: int) -> list[PendingMedia]:
        found: list[PendingMedia] = []
        start: dict[str, Any] | None = None
        while len(found) < limit:
            page = {"ExclusiveStartKey": start} if start else {}
            answer = self._call(
                "list the records awaiting their media's status",
                self._db.query,
                IndexName=PENDING_INDEX,
                KeyConditionExpression="media_watch = :watching AND media_checked_at < :cutoff",
                ExpressionAttributeValues=_values(watching=MEDIA_WATCHING, cutoff=checked_before),
                ScanIndexForward=True,
                Limit=min(QUERY_PAGE, limit - len(found)),
                **page,
            )
            for item in answer.get("Items", []):
                plain = _plain(item)
                if plain.get("wistia_hashed_id"):
                    found.append(
                        PendingMedia(
                            key=_record_key(item),
                            hashed_id=str(plain["wistia_hashed_id"]),
                            media_status=plain.get("media_status"),
                            checked_at=str(plain.get("media_checked_at", "")),
                        )
                    )
            start = answer.get("LastEvaluatedKey")
            if not start:
                break
        return found[:limit]

    def _media_transition(
        self, key: RecordKey, update: str, condition: str, values: dict[str, Any]
    ) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=_dynamodb_key(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return  # another caller took the failure over after its lease: theirs now
            raise _classified(error, "update the import record") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error

    def _call(self, doing: str, operation: Any, **arguments: Any) -> Any:
        try:
            return operation(TableName=self._table, **arguments)
        except ClientError as error:
            raise _classified(error, doing) from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB could not {doing}: {error}") from error

    def _transition(
        self,
        obj: ObjectRef,
        update: str,
        condition: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=record_key(obj),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#status": "status", **(names or {})},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise _classified(error, "update the import record") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error
        return True

    def _put(self, obj: ObjectRef, fields: dict[str, Any]) -> None:
        item = {"bucket": obj.bucket, "object_key": obj.key, **fields}
        try:
            self._db.put_item(
                TableName=self._table,
                Item={**record_key(obj), **{k: _serializer.serialize(v) for k, v in item.items()}},
                # A record handed back for a retry (or reopened by redrive) may be skipped
                # now, e.g. after the extension filter changed; any other decision stands.
                ConditionExpression="attribute_not_exists(object_uri) OR #status = :pending_retry",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":pending_retry": {"S": Status.PENDING_RETRY.value}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return  # a record already exists; the first decision stands
            raise _classified(error, "write the import record") from error
        except BotoCoreError as error:
            raise RetryableError(f"DynamoDB write failed: {error}") from error


def _status_update(change: MediaStatusChange) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The update expression writing `change`, its attribute names and values."""
    sets = {**change.sets(), "updated_at": change.checked_at}
    first = change.sets_if_absent()
    removes = change.removes()
    names = {f"#s{i}": name for i, name in enumerate(sets)}
    names |= {f"#a{i}": name for i, name in enumerate(first)}
    names |= {f"#r{i}": name for i, name in enumerate(removes)}
    values = {f"s{i}": value for i, value in enumerate(sets.values())}
    values |= {f"a{i}": value for i, value in enumerate(first.values())}
    assignments = [f"#s{i} = :s{i}" for i in range(len(sets))]
    assignments += [f"#a{i} = if_not_exists(#a{i}, :a{i})" for i in range(len(first))]
    update = "SET " + ", ".join(assignments)
    if removes:
        update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
    return update, names, values


def _dynamodb_key(key: RecordKey) -> dict[str, Any]:
    return {"object_uri": {"S": key.object_uri}, "object_version": {"S": key.object_version}}


def _record_key(item: dict[str, Any]) -> RecordKey:
    return RecordKey(item["object_uri"]["S"], item["object_version"]["S"])


def _holding(item: dict[str, Any] | None, hashed_id: str) -> ImportRecord | None:
    """The record as read, if it (still) holds this media."""
    if not item:
        return None
    plain = _plain(item)
    if plain.get("wistia_hashed_id") != hashed_id:
        return None
    return ImportRecord.from_attributes(plain)


def _epoch(seconds: float) -> Decimal:
    return Decimal(f"{seconds:.3f}")


def _sequencer_written(obj: ObjectRef) -> tuple[str, dict[str, str]]:
    """The claim writes the event's sequencer, so a deletion of the key handled at the same
    time sees that the key was written again."""
    if not obj.sequencer:
        return "", {}
    return ", sequencer = :sequencer", {"sequencer": obj.sequencer}


def _values(**values: Any) -> dict[str, Any]:
    return {f":{name}": _serializer.serialize(value) for name, value in values.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))


def _classified(error: ClientError, doing: str) -> RetryableError:
    # Without its record an object can be neither imported safely nor marked failed, so
    # every DynamoDB failure fails the invocation: Lambda keeps the event and retries it.
    code = _code(error)
    hint = (
        "" if code in RETRYABLE_CODES else "; check the table name and the function's permissions"
    )
    return RetryableError(f"DynamoDB could not {doing} ({code}){hint}")
