"""The local stack's DynamoDB keeps DynamoDB's item-level atomicity (AtomicDynamoDB): many
racers on one item, over real HTTP to moto's server. (Without the lock both tests fail:
two claims win, increments are lost.)"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_stack.aws import LocalAws

RACERS = 40


def client() -> Any:
    return boto3.session.Session().client(
        "dynamodb", config=Config(retries={"max_attempts": 1}, max_pool_connections=RACERS)
    )


def table(*key_schema: tuple[str, str]) -> str:
    name = f"atomic-{uuid.uuid4().hex[:8]}"
    boto3.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in key_schema],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in key_schema],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def race(count: int, run: Callable[[int], Any]) -> list[Any]:
    """`count` threads, released together, each running run(index) once."""
    gate = threading.Barrier(count)

    def racer(index: int) -> Any:
        gate.wait()
        return run(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(racer, range(count)))


def test_of_many_racers_claiming_one_new_item_exactly_one_wins(moto_server: LocalAws) -> None:
    name = table(("id", "HASH"))
    clients = [client() for _ in range(RACERS)]

    for round_ in range(3):

        def claim(index: int, key: str = f"object-{round_}") -> bool:
            try:
                clients[index].update_item(
                    TableName=name,
                    Key={"id": {"S": key}},
                    UpdateExpression="SET holder = :me",
                    ConditionExpression="attribute_not_exists(id)",
                    ExpressionAttributeValues={":me": {"S": str(index)}},
                )
            except ClientError as error:
                assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
                return False
            return True

        assert race(RACERS, claim).count(True) == 1


def test_increments_of_one_item_from_many_racers_are_never_lost(moto_server: LocalAws) -> None:
    name = table(("id", "HASH"))
    clients = [client() for _ in range(RACERS)]

    def add(index: int) -> None:
        for _ in range(10):
            clients[index].update_item(
                TableName=name,
                Key={"id": {"S": "counter"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    race(RACERS, add)

    answer = boto3.client("dynamodb").get_item(TableName=name, Key={"id": {"S": "counter"}})
    assert answer["Item"]["n"] == {"N": str(RACERS * 10)}


@pytest.fixture(autouse=True)
def _racy(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Threads switch every few microseconds instead of every 5 ms, so moto's server (in
    this process) is interrupted inside its writes and a missing lock shows."""
    caplog.set_level("ERROR", logger="werkzeug")
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_a_query_by_partition_key_answers_from_that_partition_as_dynamodb_does(
    moto_server: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local stack answers a table's Query from the partition it names (moto walks the
    whole table for each one): same items, order, range conditions and pages; an index's
    Query is still moto's own."""
    from local_stack import aws

    name = f"partitions-{uuid.uuid4().hex[:8]}"
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "uri", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"} for n in ("uri", "version", "media")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-media",
                "KeySchema": [{"AttributeName": "media", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for partition in range(30):
        for version in range(4):
            dynamodb.put_item(
                TableName=name,
                Item={
                    "uri": {"S": f"s3://bucket/key-{partition}"},
                    "version": {"S": f"v{version}"},
                    "media": {"S": f"media-{version}"},
                },
            )
    walks: list[str] = []
    walk_the_table = aws._moto_all_items

    def counted_walk(table: Any) -> Any:
        walks.append(table.name)
        return walk_the_table(table)

    monkeypatch.setattr(aws, "_moto_all_items", counted_walk)

    def versions(**request: Any) -> list[str]:
        pages = dynamodb.get_paginator("query").paginate(TableName=name, **request)
        return [item["version"]["S"] for page in pages for item in page["Items"]]

    one_partition = {
        "KeyConditionExpression": "uri = :uri",
        "ExpressionAttributeValues": {":uri": {"S": "s3://bucket/key-7"}},
    }
    assert versions(**one_partition) == ["v0", "v1", "v2", "v3"]
    assert versions(**one_partition, ScanIndexForward=False, Limit=1) == ["v3", "v2", "v1", "v0"]
    assert versions(
        KeyConditionExpression="uri = :uri AND version > :v",
        ExpressionAttributeValues={":uri": {"S": "s3://bucket/key-7"}, ":v": {"S": "v1"}},
    ) == ["v2", "v3"]
    assert (
        versions(
            KeyConditionExpression="uri = :uri",
            ExpressionAttributeValues={":uri": {"S": "s3://bucket/no-such-key"}},
        )
        == []
    )
    assert walks == []

    by_media = versions(
        IndexName="by-media",
        KeyConditionExpression="media = :m",
        ExpressionAttributeValues={":m": {"S": "media-2"}},
    )
    assert by_media == ["v2"] * 30
    assert walks == [name]
