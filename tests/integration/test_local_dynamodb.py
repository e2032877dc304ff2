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
