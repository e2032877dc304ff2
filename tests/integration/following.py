"""What the processing-status tests share: a stack provisioned with a webhook secret key, the
real handlers loaded as Lambda loads them, the receiver behind the Function URL stand-in,
and signed POSTs to it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
import urllib3

from local_stack.aws import patched_environ
from local_stack.function_url import FunctionUrl
from local_stack.functions import Handler, load_handler
from local_stack.harness import LambdaContext, record_of
from local_stack.template import Stack, provision
from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from s3_to_wistia.redrive import Invocation, Summary, redrive
from s3_to_wistia.signatures import signature

TOKEN = "test-token"
WEBHOOK_KEY = "whsec-integration-key-0001"
HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0))


def webhook_stack() -> Stack:
    """template.yaml's resources, the webhook secret holding the key pasted from Wistia."""
    return provision(token=TOKEN, secrets={"WistiaWebhookSecret": WEBHOOK_KEY})


def handler_of(logical_id: str, environment: Mapping[str, str]) -> Handler:
    """The function's handler, freshly imported (a cold start) with this environment."""
    with patched_environ(dict(environment)):
        return load_handler(logical_id)


@contextmanager
def receiver(stack: Stack, **variables: str) -> Iterator[FunctionUrl]:
    """The webhook receiver behind a Function URL on loopback."""
    environment = {**stack.environments["WebhookFunction"], **variables}
    with FunctionUrl(handler_of("WebhookFunction", environment)) as url:
        yield url


def poller(stack: Stack, wistia_url: str, **variables: str) -> Callable[[], dict[str, Any]]:
    """One scheduled run of the status poller per call; its report."""
    environment = {
        **stack.environments["PollerFunction"],
        "WISTIA_API_URL": wistia_url,
        "STATUS_POLL_AFTER_SECONDS": "0",
        **variables,
    }
    handler = handler_of("PollerFunction", environment)

    def run() -> dict[str, Any]:
        event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
        answer: dict[str, Any] = handler(event, LambdaContext(timeout_seconds=60))
        return answer

    return run


def post(
    url: str, body: bytes, key: str | None = WEBHOOK_KEY, **headers: str
) -> tuple[int, dict[str, Any]]:
    """POST a body to the receiver, signed with `key` (unsigned when None)."""
    sent = {"Content-Type": "application/json", "User-Agent": "Wistia-Webhooks/0.0.47", **headers}
    if key is not None:
        sent["X-Wistia-Signature"] = signature(body, key)
    answer = HTTP.request("POST", url, body=body, headers=sent)
    try:
        document = json.loads(answer.data) if answer.data else {}
    except ValueError:
        document = {"raw": answer.data.decode(errors="replace")}
    return answer.status, document


def webhook_body(hashed_id: str, *events: tuple[str, str], uuid_prefix: str = "t") -> bytes:
    """A webhook body like Wistia's: (type, generated_at) events for one media."""
    return json.dumps(
        {
            "hook": {"uuid": "hook-under-test"},
            "events": [
                {
                    "uuid": f"{uuid_prefix}-{n}-{event_type}",
                    "type": event_type,
                    "generated_at": generated_at,
                    "metadata": {"account_id": "acct"},
                    "payload": {"media": {"id": hashed_id, "name": "clip.mp4"}},
                }
                for n, (event_type, generated_at) in enumerate(events)
            ],
        }
    ).encode()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def record(stack: Stack, key: str, version: str | None) -> dict[str, Any]:
    found = record_of(stack.table_name, stack.bucket, key, version or "")
    assert found is not None
    return found


def redrive_queue(stack: Stack, importer: Importer, log: Any) -> Summary:
    """`make redrive` on the stack's queue, the function invoked in process."""

    def invoke(event: dict[str, Any]) -> Invocation:
        try:
            handle_event(
                event,
                LambdaContext(timeout_seconds=30),
                importer,
                importer.dead_letters,
                log.logger,
            )
        except Exception as error:
            return Invocation(ok=False, error=f"{type(error).__name__}: {error}")
        return Invocation(ok=True)

    queue = DeadLetterQueue(boto3.client("sqs"), stack.queue_url, wait_seconds=0)
    records = Records(boto3.client("dynamodb"), stack.table_name)
    return redrive(queue, records, invoke, lambda letter, outcome: None)
