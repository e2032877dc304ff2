"""The floor: a hand-written minimal import doing the function's correct work, no more.

Per object: one conditional claim write (DynamoDB UpdateItem), one HEAD with VersionId,
one SigV4 presign, the one-byte GET through the presigned URL that shows S3 will serve
it (issue 10), the import POST (urllib3, form-encoded, Bearer token), the consistent
Query of the key's records that tells whether this version overwrites a media to replace
(ON_OVERWRITE=replace, the default), and one record write closing the claim with
Wistia's answer. `same_work=False` leaves out the probe and the Query: the import alone,
as the function did before those two, so the bench can say what they cost. The token is
read from Secrets Manager on the first event and kept, as the function does. No logging,
metrics or tracing: that is what the function adds, and what the ratios show. An SQS
batch runs its records in ten threads, as the function does.
"""

from __future__ import annotations

import json
import posixpath
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

import boto3
import urllib3
from botocore.config import Config

EXPIRES = 21600
LEASE_SECONDS = 62.0


def attribute(value: object) -> dict[str, Any]:
    """A JSON value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [attribute(item) for item in value]}
    if isinstance(value, dict):
        return {"M": {str(k): attribute(v) for k, v in value.items()}}
    return {"S": str(value)}


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Floor:
    def __init__(self, table: str, upload_url: str, secret_id: str, same_work: bool = True) -> None:
        self._table = table
        self._same_work = same_work
        self._upload_url = upload_url
        self._secret_id = secret_id
        self._session = boto3.session.Session()
        self._s3 = self._session.client("s3", config=Config(signature_version="s3v4"))
        self._db = self._session.client("dynamodb")
        self._http = urllib3.PoolManager()
        self._timeout = urllib3.Timeout(connect=3.05, read=30.0)
        self._token: str | None = None
        # SQS hands over up to 10 messages: each waits on the network, so all run at once.
        self._pool = ThreadPoolExecutor(max_workers=10)

    def token(self) -> str:
        if self._token is None:
            secrets = self._session.client("secretsmanager")
            raw = secrets.get_secret_value(SecretId=self._secret_id)["SecretString"].strip()
            self._token = json.loads(raw)["token"] if raw.startswith("{") else raw
        return self._token

    def handle(self, event: dict[str, Any]) -> list[dict[str, str]]:
        """One S3 notification: every record imported, or an exception."""
        return [self.import_object(record["s3"]) for record in event["Records"]]

    def handle_sqs(self, event: dict[str, Any]) -> list[dict[str, str]]:
        """An SQS batch of S3 notifications, every record at once; any failure raises."""
        records = [
            record["s3"]
            for message in event["Records"]
            for record in json.loads(message["body"])["Records"]
        ]
        return list(self._pool.map(self.import_object, records))

    def import_object(self, s3: dict[str, Any]) -> dict[str, str]:
        bucket = s3["bucket"]["name"]
        key = unquote_plus(s3["object"]["key"])
        version = s3["object"]["versionId"]
        item_key = {"object_uri": {"S": f"s3://{bucket}/{key}"}, "object_version": {"S": version}}
        claim = uuid.uuid4().hex
        now = time.time()
        self._db.update_item(
            TableName=self._table,
            Key=item_key,
            UpdateExpression=(
                "SET #s = :s, #b = :b, object_key = :k, claim_id = :c, lease_expires_at = :l, "
                "created_at = :t, updated_at = :t"
            ),
            # New, handed back for a retry, or claimed by an invocation that has since died.
            ConditionExpression=(
                "attribute_not_exists(object_uri) OR #s = :retry "
                "OR (#s = :s AND lease_expires_at < :n)"
            ),
            ExpressionAttributeNames={"#s": "status", "#b": "bucket"},
            ExpressionAttributeValues={
                ":s": {"S": "IN_PROGRESS"},
                ":retry": {"S": "PENDING_RETRY"},
                ":b": {"S": bucket},
                ":k": {"S": key},
                ":c": {"S": claim},
                ":l": {"N": f"{now + LEASE_SECONDS:.3f}"},
                ":n": {"N": f"{now:.3f}"},
                ":t": {"S": iso(now)},
            },
        )
        params = {"Bucket": bucket, "Key": key, "VersionId": version}
        head = self._s3.head_object(**params)
        if not head["ContentLength"]:
            raise ValueError(f"s3://{bucket}/{key} is empty")
        url = self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=EXPIRES)
        if self._same_work:
            self.probe(url)
        media = self.post(url, posixpath.basename(key))
        if self._same_work:
            self._db.query(
                TableName=self._table,
                KeyConditionExpression="object_uri = :u",
                ExpressionAttributeValues={":u": item_key["object_uri"]},
                ConsistentRead=True,
            )
        parts = urlsplit(url)
        done = time.time()
        self._db.update_item(
            TableName=self._table,
            Key=item_key,
            UpdateExpression=(
                "SET #s = :s, wistia_hashed_id = :h, wistia_media_id = :m, wistia_response = :r, "
                "source_url = :u, url_expires_at = :e, submitted_at = :t, updated_at = :t, "
                "attempts = :a REMOVE claim_id, lease_expires_at"
            ),
            ConditionExpression="claim_id = :c",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": "SUBMITTED"},
                ":h": {"S": str(media["hashed_id"])},
                ":m": attribute(media.get("id")),
                ":r": attribute(media),
                ":u": {"S": urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))},
                ":e": {"S": iso(now + EXPIRES)},
                ":t": {"S": iso(done)},
                ":a": {"N": "1"},
                ":c": {"S": claim},
            },
        )
        return {"status": "SUBMITTED", "hashed_id": str(media["hashed_id"]), "url": url}

    def presign(self, bucket: str, key: str, version: str) -> str:
        params = {"Bucket": bucket, "Key": key, "VersionId": version}
        return str(self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=EXPIRES))

    def probe(self, url: str) -> None:
        response = self._http.request(
            "GET",
            url,
            headers={"Range": "bytes=0-0"},
            timeout=self._timeout,
            retries=False,
            redirect=False,
        )
        if response.status not in (200, 206):
            raise RuntimeError(f"S3 answered the presigned URL {response.status}")

    def post(self, url: str, name: str) -> dict[str, Any]:
        response = self._http.request(
            "POST",
            self._upload_url,
            body=urlencode({"url": url, "name": name}),
            headers={
                "Authorization": f"Bearer {self.token()}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            timeout=self._timeout,
            retries=False,
            redirect=False,
        )
        if response.status != 200:
            raise RuntimeError(f"Wistia answered {response.status}: {response.data[:200]!r}")
        media: dict[str, Any] = json.loads(response.data)
        return media
