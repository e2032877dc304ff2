"""The webhook receiver's floor (see bench.receiver), kept to boto3 and the standard library
so its process imports nothing the work does not need."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import boto3

# The key the bench pastes into the stack's webhook secret and signs with.
KEY = "bench-webhook-secret-key"


class ReceiverFloor:
    """Verify, parse, one conditional write per event (keys known; optionally looked up)."""

    def __init__(self, table: str, key: str) -> None:
        self._table = table
        self._key = key.encode()
        self._db = boto3.session.Session().client("dynamodb")

    def handle(self, event: dict[str, Any], keys: dict[str, list[str]], lookup: bool) -> int:
        body = event["body"].encode()
        expected = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(event["headers"]["x-wistia-signature"], expected):
            return 401
        for item in json.loads(body)["events"]:
            hashed_id = item["payload"]["media"]["id"]
            if lookup:
                found = self._db.query(
                    TableName=self._table,
                    IndexName="by-wistia-hashed-id",
                    KeyConditionExpression="wistia_hashed_id = :h",
                    ExpressionAttributeValues={":h": {"S": hashed_id}},
                    Limit=10,
                )["Items"]
                uri, version = found[0]["object_uri"]["S"], found[0]["object_version"]["S"]
            else:
                uri, version = keys[hashed_id]
            order = f"{item['generated_at']} 1 {item['uuid']}"
            self._db.update_item(
                TableName=self._table,
                Key={"object_uri": {"S": uri}, "object_version": {"S": version}},
                UpdateExpression="SET media_status = :s, media_status_at = :t, media_event = :o",
                ConditionExpression=(
                    "wistia_hashed_id = :h AND "
                    "(attribute_not_exists(media_event) OR media_event < :o)"
                ),
                ExpressionAttributeValues={
                    ":s": {"S": "processing"},
                    ":t": {"S": item["generated_at"]},
                    ":o": {"S": order},
                    ":h": {"S": hashed_id},
                },
            )
        return 200
