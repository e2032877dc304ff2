"""With the template's Tracing at Active, every call to Wistia, from every function that
makes one, reaches X-Ray as a subsegment of its own: the import, the deletion's archive,
the poller's status lookup. The real X-Ray SDK sends them over UDP to the daemon address,
here a socket of the test's; none carries the token or the signed URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from local_stack.template import Stack
from wistia_emulator import WistiaEmulator

TOKEN = "test-token"  # the stack's token (tests/conftest.py)
LAMBDA = {
    "AWS_LAMBDA_FUNCTION_NAME": "s3-to-wistia-traced",
    "LAMBDA_TASK_ROOT": "/var/task",
    "_X_AMZN_TRACE_ID": (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    ),
    "TRACING_MODE": "Active",
}


@pytest.fixture
def xray_daemon() -> Iterator[socket.socket]:
    """Where the X-Ray SDK sends segments (AWS_XRAY_DAEMON_ADDRESS), on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(0.5)
        yield daemon


def received(daemon: socket.socket) -> list[str]:
    documents: list[str] = []
    while True:
        try:
            datagram = daemon.recv(65535).decode()
        except TimeoutError:
            return documents
        # '{"format": "json", "version": 1}\n' then the (sub)segment
        documents.append(datagram.split("\n", 1)[1])


def subsegments(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield document
    for child in document.get("subsegments", []):
        yield from subsegments(child)


def test_with_tracing_active_every_wistia_call_is_a_subsegment_without_secrets(
    stack: Stack, wistia_emulator: WistiaEmulator, xray_daemon: socket.socket
) -> None:
    address = "{}:{}".format(*xray_daemon.getsockname())
    tracing = {**LAMBDA, "AWS_XRAY_DAEMON_ADDRESS": address}
    importer = {**stack.environment_for(wistia_emulator.url), **tracing, "ON_DELETE": "archive"}
    poller = {
        **stack.environment_of("PollerFunction", wistia_emulator.url),
        **tracing,
        "STATUS_POLL_AFTER_SECONDS": "0",
    }
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)

    done = subprocess.run(  # noqa: S603 - the project's own module, our interpreter
        [
            sys.executable,
            "-m",
            "integration.traced_functions",
            json.dumps(importer),
            json.dumps(poller),
            stack.bucket,
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.splitlines()[-1])
    assert [a["results"][0]["status"] for a in answers["imported"]] == ["SUBMITTED"] * 2
    assert answers["removed"]["results"][0]["status"] == "DELETED"
    assert answers["polled"]["requests"] == 1
    documents = received(xray_daemon)
    wistia = [
        s for d in documents for s in subsegments(json.loads(d)) if s["name"].startswith("Wistia")
    ]
    assert sorted({(s["name"], s["http"]["response"]["status"]) for s in wistia}) == [
        ("Wistia GET /v1/medias.json", 200),  # the poller's lookup
        ("Wistia POST /", 200),  # the imports
        ("Wistia PUT /modern/medias/archive", 200),  # the deletion followed
    ]
    assert all(s["namespace"] == "remote" for s in wistia)
    # botocore's calls are traced as well (S3, DynamoDB)
    names = {s["name"] for d in documents for s in subsegments(json.loads(d))}
    assert {"s3", "dynamodb", "secretsmanager"} <= names
    sent = "\n".join(documents)
    assert TOKEN not in sent
    assert "X-Amz-Signature" not in sent
