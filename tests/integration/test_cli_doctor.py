"""`s3-to-wistia doctor` against a deployment in moto's server and the Wistia emulator: each
thing a deployment needs, found OK, or broken and named with what to fix."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from integration.clitools import Deployment, Run, deploy, posts
from local_stack.template import Stack
from s3_to_wistia.adapters.secrets import PLACEHOLDER_TOKEN
from s3_to_wistia.cli.local import LocalStack
from wistia_emulator import WistiaEmulator

CliRun = Callable[..., Run]
TOKEN = "test-token"


@pytest.fixture
def deployed(stack: Stack, wistia_emulator: WistiaEmulator) -> Deployment:
    """A new-bucket deployment: the bucket notifies the function."""
    return deploy(stack, wistia_emulator.url, notify=True)


def doctor(run_cli: CliRun, deployment: Deployment, *extra: str) -> tuple[Run, dict[str, Any]]:
    run = run_cli("doctor", *deployment.target, *deployment.wistia, *extra, "--json")
    return run, {c["check"]: c for c in run.json()["checks"]}


def test_a_healthy_deployment_is_ok_line_by_line(
    run_cli: CliRun, deployed: Deployment, wistia_emulator: WistiaEmulator
) -> None:
    run, checks = doctor(run_cli, deployed)
    text = run_cli("doctor", *deployed.target, *deployed.wistia)

    assert run.code == text.code == 0, text.out
    assert {name: c["status"] for name, c in checks.items()} == {
        "stack": "ok",
        "token secret": "ok",
        "token": "ok",
        "Wistia": "ok",
        "URL signing": "warn",  # 6 h asked, signed with the role's short-lived credentials
        "table": "ok",
        "queue": "ok",
        "events": "ok",
        "webhooks": "skip",
    }
    assert checks["events"]["detail"] == (
        f"bucket {deployed.stack.bucket} notifies {deployed.function_name} of every new object"
    )
    assert checks["webhooks"]["detail"].startswith("not deployed")
    assert run.json()["ok"] is True
    lines = text.out.splitlines()
    assert len(lines) == 9
    assert lines[0].startswith("OK    stack ")
    assert "nothing to fix, 1 warning(s)" in text.err
    # It imported nothing and told Wistia nothing it could keep
    assert wistia_emulator.medias() == []
    assert TOKEN not in text.out + text.err


def test_the_stacks_placeholder_token_is_named_with_how_to_replace_it(
    run_cli: CliRun, deployed: Deployment
) -> None:
    secret = deployed.stack.secret_id
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret, SecretString=json.dumps({"token": PLACEHOLDER_TOKEN})
    )

    run, checks = doctor(run_cli, deployed)

    assert run.code == 1
    assert checks["token"] == {
        "check": "token",
        "status": "fix",
        "detail": "the secret still holds the placeholder the stack created: paste your Wistia "
        f"API token: aws secretsmanager put-secret-value --secret-id {secret} --secret-string "
        '\'{"token": "..."}\'',
    }
    assert checks["Wistia"]["status"] == "skip"


@pytest.mark.parametrize(
    ("rights", "status", "words"),
    [
        ("upload", "warn", "an upload-only token: Wistia accepts it for imports, but its Data API"),
        ("read", "fix", "a read-only token: Wistia lets it read, but refuses it imports"),
        (None, "fix", "Wistia rejects the token (401 from both of its APIs)"),
    ],
)
def test_a_token_wistia_refuses_is_told_apart_by_its_rights(
    run_cli: CliRun,
    deployed: Deployment,
    wistia_emulator: WistiaEmulator,
    rights: str | None,
    status: str,
    words: str,
) -> None:
    if rights is None:
        wistia_emulator.set_tokens("another-token")
    else:
        wistia_emulator.set_tokens(rights={TOKEN: rights})

    run, checks = doctor(run_cli, deployed)

    assert checks["Wistia"]["status"] == status
    assert checks["Wistia"]["detail"].startswith(words)
    assert run.code == (1 if status == "fix" else 0)
    # Two calls at most, and the Upload API was sent nothing to import
    assert len(wistia_emulator.requests()) == 2
    [upload] = posts(wistia_emulator.requests())
    assert upload["status"] in (400, 401)
    assert wistia_emulator.medias() == []


def test_wistia_unreachable_is_a_line_to_fix(run_cli: CliRun, deployed: Deployment) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"

    run = run_cli("doctor", *deployed.target, "--api-url", closed, "--upload-url", closed, "--json")

    checks = {c["check"]: c for c in run.json()["checks"]}
    assert run.code == 1
    assert checks["Wistia"]["status"] == "fix"
    assert checks["Wistia"]["detail"].startswith("Wistia is unreachable: could not connect")


def test_a_table_without_its_index_and_a_queue_with_dead_letters(
    run_cli: CliRun, deployed: Deployment
) -> None:
    dynamodb = boto3.client("dynamodb")
    name = f"no-index-{deployed.stack.table_name}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "object_uri", "KeyType": "HASH"},
            {"AttributeName": "object_version", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "object_uri", "AttributeType": "S"},
            {"AttributeName": "object_version", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("sqs").send_message(QueueUrl=deployed.stack.queue_url, MessageBody="{}")

    run, checks = doctor(run_cli, deployed, "--table", name)

    assert run.code == 1
    assert checks["table"]["status"] == "fix"
    assert checks["table"]["detail"] == (
        f"table {name} has no index by-wistia-hashed-id: update the stack (sam deploy)"
    )
    assert checks["queue"]["status"] == "warn"
    assert checks["queue"]["detail"].startswith("1 dead letter(s) wait in")
    assert "s3-to-wistia redrive --dry-run" in checks["queue"]["detail"]


def test_a_bucket_that_notifies_nothing(
    run_cli: CliRun, stack: Stack, wistia_emulator: WistiaEmulator
) -> None:
    silent = deploy(stack, wistia_emulator.url, notify=False)

    run, checks = doctor(run_cli, silent)

    assert run.code == 1
    assert checks["events"]["status"] == "fix"
    assert checks["events"]["detail"].startswith(
        f"nothing sends bucket {stack.bucket}'s new objects to {silent.function_name}"
    )


def test_an_existing_bucket_whose_eventbridge_notifications_are_off(
    run_cli: CliRun, stack: Stack, wistia_emulator: WistiaEmulator
) -> None:
    # The stack's rule for an existing bucket, enabled and aimed at the function; the
    # bucket's own "send to EventBridge" switch is off (moto cannot show it on).
    existing = deploy(stack, wistia_emulator.url, notify=False)
    events = boto3.client("events")
    rule = f"rule-{stack.table_name}"
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {"source": ["aws.s3"], "detail": {"bucket": {"name": [stack.bucket]}}}
        ),
        State="ENABLED",
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "import", "Arn": existing.function_arn}])

    run, checks = doctor(run_cli, existing)

    assert run.code == 1
    assert checks["events"]["detail"] == (
        f"EventBridge rule {rule} waits for bucket {stack.bucket}'s events, but the bucket "
        'does not send them: turn on its "Amazon EventBridge" event notifications (S3 '
        "console, Properties, Event notifications)"
    )


def test_signing_credentials_are_checked_with_aws(
    run_cli: CliRun, stack: Stack, wistia_emulator: WistiaEmulator
) -> None:
    secrets = boto3.client("secretsmanager")
    good = secrets.create_secret(
        Name=f"signing-{stack.table_name}",
        SecretString=json.dumps(
            {"access_key_id": "AKIASIGNINGUSER00001", "secret_access_key": "signing-secret-value"}
        ),
    )["ARN"]
    bad = secrets.create_secret(Name=f"bad-signing-{stack.table_name}", SecretString="nope")["ARN"]
    signed = deploy(
        stack,
        wistia_emulator.url,
        environment={"SIGNING_CREDENTIALS_SECRET": good, "PRESIGNED_URL_EXPIRES": "604800"},
        notify=True,
    )

    run, checks = doctor(run_cli, signed)
    boto3.client("lambda").update_function_configuration(
        FunctionName=signed.function_name,
        Environment={
            "Variables": {
                **stack.environment_for(signed.wistia_url),
                "SIGNING_CREDENTIALS_SECRET": bad,
            }
        },
    )
    broken, broken_checks = doctor(run_cli, signed)

    assert checks["URL signing"]["status"] == "ok"
    assert checks["URL signing"]["detail"].startswith(
        f"URLs live 7 d, signed with the keys in {good} (arn:"
    )
    assert "signing-secret-value" not in run.out + run.err
    assert broken.code == 1
    assert broken_checks["URL signing"]["detail"] == (
        f"the signing secret {bad!r} must be JSON with access_key_id and secret_access_key"
    )


def test_the_webhook_secret_once_the_receiver_is_deployed(
    run_cli: CliRun, stack: Stack, wistia_emulator: WistiaEmulator
) -> None:
    secrets = boto3.client("secretsmanager")
    empty = secrets.create_secret(
        Name=f"hook-{stack.table_name}", SecretString='{"secret_key": ""}'
    )
    url = "https://abc.lambda-url.us-east-1.on.aws/"
    hooked = deploy(
        stack,
        wistia_emulator.url,
        outputs={"WebhookUrl": url, "WistiaWebhookSecretArn": empty["ARN"]},
        notify=True,
    )

    unset, unset_checks = doctor(run_cli, hooked)
    secrets.put_secret_value(SecretId=empty["ARN"], SecretString='{"secret_key": "wistia-key-1"}')
    set_, set_checks = doctor(run_cli, hooked)

    assert unset.code == 1
    assert unset_checks["webhooks"]["status"] == "fix"
    assert "paste the secret key of Wistia's webhook" in unset_checks["webhooks"]["detail"]
    assert set_checks["webhooks"] == {
        "check": "webhooks",
        "status": "ok",
        "detail": f"the webhook secret {empty['ARN']} is set; Wistia's webhook must POST to {url}",
    }
    assert "wistia-key-1" not in set_.out + set_.err


def test_no_such_stack_is_one_line_to_fix(run_cli: CliRun, moto_server: Any) -> None:
    run = run_cli("doctor", "--stack", "no-such-stack")

    assert run.code == 1
    lines = run.out.splitlines()
    assert lines == [
        "FIX   stack         no stack 'no-such-stack' in us-east-1: pass --stack NAME (and "
        "--region), or give --token-secret, --table, --queue-url, --function, --bucket, "
        "--webhook-secret",
        "--                  the 8 other checks need a stack to check",
    ]


def test_local_checks_the_local_stack(run_cli: CliRun, stack: Stack, local_up: LocalStack) -> None:
    # The test's stack has no delivery queue: its bucket notifies nothing
    run = run_cli("doctor", "--local", "--json")

    checks = {c["check"]: c["status"] for c in run.json()["checks"]}
    assert checks["stack"] == checks["token"] == checks["Wistia"] == checks["table"] == "ok"
    assert checks["events"] == "fix"
