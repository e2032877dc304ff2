"""moto's server on loopback, speaking the AWS protocols over real HTTP.

The function under test talks to it exactly as it talks to AWS: through boto3 and
`AWS_ENDPOINT_URL`. Where moto falls short of AWS, WSGI middlewares in front of it make the
local stack behave as AWS does:

- presigned URLs are refused as S3 refuses them: bad signature (over the headers the URL
  signs), expired URL, expired credentials, unknown key (presign_check);
- S3 serves objects as S3 does where moto does not (object_state): SSE-C objects only to
  reads that present their key, so never to a plain presigned URL; SSE-KMS objects under a
  customer-managed key only to a GET whose signer was granted kms:Decrypt on it
  (`allow_kms_decrypt`; aws/s3 needs no grant), and only to SigV4; Intelligent-Tiering
  objects moved to an archive tier (`archive`) report it on HEAD, refuse GET with
  InvalidObjectState, and come back after a RestoreObject (at once or after a delay);
- DynamoDB applies each conditional write atomically, item by item (AtomicDynamoDB);
- S3 notifications carry versionId, sequencer and S3's key encoding;
- a Query by partition key reads that partition, as DynamoDB does (moto walks and sorts
  every item of the table for every Query, so a key's Query slows as the table fills:
  a 10,000-object backfill's request rate fell by a quarter from its first minutes to its
  last, on the local stack only);
- ListObjectVersions answers without copying every object's bytes for every page (moto
  deep-copies each version to mark the latest, and a deep copy of a key reads its whole
  body: 10 pages over 10,000 objects of 2.5 GB read 25 GB);
- AWS errors can be injected per service and operation (aws_faults);
- SQS receives a message without computing all of its queue's attributes (moto walks
  every message of the queue three times for each message received: a queue of 2,000
  served 10 messages in about 1.5 s);
- requests are routed to their service at once (CachedDispatcher): moto's router lists its
  own package folder (some 200 entries, a stat each) for every request, under a lock every
  request takes, so moto served one request at a time however many came at once.

moto itself refuses GETs of GLACIER and DEEP_ARCHIVE objects until restored.
"""

from __future__ import annotations

import copy
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import unix_time
from moto.dynamodb.models.table import Table as DynamoTable
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3 import models as s3_models
from moto.s3 import notifications as s3_notifications
from moto.sqs import models as sqs_models
from werkzeug.serving import BaseWSGIServer, make_server

from local_stack.aws_faults import AwsFaults, FaultInjection
from local_stack.object_state import ObjectState
from local_stack.presign_check import PresignedUrlCheck, SigningKey

REGION = "us-east-1"
ACCOUNT_ID = DEFAULT_ACCOUNT_ID

_moto_s3_event = s3_notifications._get_s3_event


def _s3_event_as_aws_sends_it(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
    """moto's S3 notifications leave out versionId and sequencer and encode '/'; S3's do not."""
    event = _moto_s3_event(event_name, bucket, key, notification_id)
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = quote_plus(key.name, safe="/")
    if key.version_id and key.version_id != "null":
        obj["versionId"] = key.version_id
    obj["sequencer"] = next_sequencer()
    return event


class _Sequencer:
    """S3's sequencers: hex, later for every later write or deletion (S3 promises the order
    for one key; this stand-in keeps it for the whole process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> str:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return f"{self._last:018X}"


next_sequencer = _Sequencer().next


s3_notifications._get_s3_event = _s3_event_as_aws_sends_it


class _ListingCopies:
    """moto.s3.models' `copy` module, except that the deep copy ListObjectVersions makes of
    each key's versions (only to mark the latest of them) copies their attributes, never
    their bytes: the copies share the stored body, which a listing does not read."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, list) and all(
            isinstance(item, s3_models.FakeKey | s3_models.FakeDeleteMarker) for item in value
        ):
            return [_attributes_only(item) for item in value]
        return copy.deepcopy(value, memo)


class _ListedKey(s3_models.FakeKey):
    """A FakeKey's attributes for a listing: it shares the stored body and so must never
    dispose of it (a FakeKey closes its body when it is garbage-collected)."""

    def dispose(self, garbage: bool = False) -> None:
        pass

    def __del__(self) -> None:
        pass


def _attributes_only(item: Any) -> Any:
    kind = _ListedKey if isinstance(item, s3_models.FakeKey) else type(item)
    clone = object.__new__(kind)
    clone.__dict__.update(item.__dict__)
    return clone


s3_models.copy = _ListingCopies()  # type: ignore[assignment]


# The partition a table's Query is reading on this thread, for all_items (moto serves
# requests on many threads at once).
_queried = threading.local()
_moto_query = DynamoTable.query
_moto_all_items = DynamoTable.all_items


def _query_by_partition(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    """moto's Query, over the one partition a table's Query names (not an index's)."""
    positional_index_name = args[6] if len(args) > 6 else None
    if hash_key is None or positional_index_name or kwargs.get("index_name"):
        return _moto_query(self, hash_key, *args, **kwargs)
    _queried.partition = (self, hash_key)
    try:
        return _moto_query(self, hash_key, *args, **kwargs)
    finally:
        _queried.partition = None


def _items_of_queried_partition(self: Any) -> Any:
    table_and_key = getattr(_queried, "partition", None)
    if table_and_key is None or table_and_key[0] is not self:
        return _moto_all_items(self)
    partition = self.items.get(table_and_key[1])
    if partition is None:
        return []
    items = list(partition.values()) if self.range_key_attr else [partition]
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


DynamoTable.query = _query_by_partition  # type: ignore[method-assign]
DynamoTable.all_items = _items_of_queried_partition  # type: ignore[method-assign]


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    """moto's own check, which reads the queue's retention period through its every
    attribute: three walks of all its messages (for the approximate counts) for each
    message it receives."""
    retention = self.get_queue(queue_name).message_retention_period
    return bool(retention + message.sent_timestamp / 1000 > unix_time())


sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
# The long-term key pair the local stack trusts. Any other key is refused like an unknown one.
ACCESS_KEY_ID = "AKIALOCALSTACKTEST01"
SECRET_ACCESS_KEY = "local-stack-secret-access-key-not-a-real-one"


# Requests on one item: they hold that item's lock, and may run beside other items'.
ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem"})


class _SharedOrExclusive:
    """A readers-writer lock: many shared holders, or one exclusive one (writers first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._exclusive_waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._exclusive_waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._exclusive_waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class _KeyedLocks:
    """One lock per key, made when first needed and dropped when nobody holds or waits."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], tuple[threading.Lock, int]] = {}

    @contextmanager
    def held(self, key: tuple[str, str]) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class AtomicDynamoDB:
    """WSGI middleware: DynamoDB's atomic conditional writes on moto, item by item.

    DynamoDB applies each write to an item atomically; moto's threaded server does not (two
    concurrent UpdateItems can both pass `attribute_not_exists`). Here a request on one item
    (GetItem, PutItem, UpdateItem, DeleteItem) holds the lock of its table and partition key
    while moto handles it, so requests on one item never interleave, while requests on
    other items run at once. The partition key rather than the whole key, because moto
    files a table's items by partition: items of one partition (versions of one object)
    are written one at a time. Every other request (Query, Scan, batches, transactions,
    table management) runs alone: moto walks whole tables for them, which a concurrent
    write could change under it. The key schemas are learnt from the CreateTable requests
    moto is sent; an item of a table created otherwise is handled alone too.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._tables = _SharedOrExclusive()
        self._items = _KeyedLocks()
        self._partition_keys: dict[str, str] = {}  # table name -> its partition key attribute

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self._app(environ, start_response)
        operation = target.rpartition(".")[2]
        body = _read_body(environ)
        item = self._item_of(operation, body)
        if item is None:
            with self._tables.exclusive():
                answer = list(self._app(environ, start_response))
            self._learn(operation, body)
            return answer
        with self._tables.shared(), self._items.held(item):
            # Consume the answer inside the lock: the write happens while it is produced.
            return list(self._app(environ, start_response))

    def _item_of(self, operation: str, body: dict[str, Any]) -> tuple[str, str] | None:
        """(table, partition key value) of a single-item request, else None."""
        if operation not in ITEM_OPERATIONS:
            return None
        table = str(body.get("TableName", ""))
        attribute = self._partition_keys.get(table)
        fields = body.get("Item" if operation == "PutItem" else "Key")
        if attribute is None or not isinstance(fields, dict) or attribute not in fields:
            return None
        return table, json.dumps(fields[attribute], sort_keys=True)

    def _learn(self, operation: str, body: dict[str, Any]) -> None:
        if operation != "CreateTable":
            return
        for element in body.get("KeySchema", []):
            if element.get("KeyType") == "HASH":
                self._partition_keys[str(body.get("TableName"))] = str(element["AttributeName"])


def _read_body(environ: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON body, leaving it readable again for moto."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, each host's service looked up once.

    moto's lookup lists the moto package's folder and stats every entry of it for each
    request, holding the lock every request takes to find its service (about 4 ms a request
    here): with the rest of a request's work that lock's queue was the local stack's limit
    on concurrent requests, where AWS serves them side by side. The answer for a host never
    changes while the server runs, so it is kept.
    """

    def __init__(self, create_app: Callable[..., Any]) -> None:
        super().__init__(create_app)
        self._backends: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


class LocalAws:
    """A moto server in a background thread: `with LocalAws() as aws: aws.endpoint_url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.signing_keys: dict[str, SigningKey] = {
            ACCESS_KEY_ID: SigningKey(secret_key=SECRET_ACCESS_KEY)
        }
        # Seconds added to S3's clock, so tests can see a URL outlive its credentials.
        self.clock_skew = 0.0
        # Injected AWS errors (aws_faults.py); None, the default, lets every request through.
        self.faults: AwsFaults | None = None
        clock = self._clock
        # SSE-C, kms:Decrypt and Intelligent-Tiering archive tiers (object_state.py).
        self.object_state = ObjectState(
            AtomicDynamoDB(CachedDispatcher(create_backend_app)),
            self.signing_keys,
            account_id=ACCOUNT_ID,
            region=REGION,
            clock=clock,
        )
        app = FaultInjection(
            PresignedUrlCheck(self.object_state, self.signing_keys, clock=clock),
            lambda: self.faults,
        )
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _clock(self) -> float:
        return time.time() + self.clock_skew

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalAws:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 (and so the function) here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def trust_key(self, access_key: str, secret_key: str) -> None:
        """Accept presigned URLs signed with another long-term key (an IAM user's)."""
        self.signing_keys[access_key] = SigningKey(secret_key)

    def trust_temporary_key(
        self, access_key: str, secret_key: str, session_token: str, expires_at: float
    ) -> None:
        """Accept presigned URLs signed with a temporary key until `expires_at`."""
        self.signing_keys[access_key] = SigningKey(secret_key, session_token, expires_at)

    def allow_kms_decrypt(self, access_key_id: str, key_id: str) -> None:
        """Grant kms:Decrypt on a customer-managed KMS key (its ID, ARN, alias or alias ARN)
        to whoever signs with `access_key_id`. Without a grant, S3 refuses such a key's
        objects to GET; the AWS-managed key aws/s3 needs none."""
        self.object_state.allow_kms_decrypt(access_key_id, key_id)

    def archive(
        self,
        bucket: str,
        key: str,
        tier: str = "ARCHIVE_ACCESS",
        version_id: str | None = None,
        restore_delay: float = 0.0,
    ) -> None:
        """Move an INTELLIGENT_TIERING object version (the current one by default) to the
        ARCHIVE_ACCESS or DEEP_ARCHIVE_ACCESS tier, as S3 does to objects left unread for 90
        or 180 days in a bucket that opted in. A RestoreObject for it completes
        `restore_delay` seconds later on S3's clock (which `clock_skew` moves)."""
        self.object_state.archive(bucket, key, tier, version_id, restore_delay)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the old values after it."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
