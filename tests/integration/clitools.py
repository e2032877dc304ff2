"""What the CLI's integration tests share: a run of `s3-to-wistia` and what it printed (to
pipes, or to a terminal), a deployment in moto's server as `sam deploy` leaves one (a
CloudFormation stack whose Outputs name the resources, the import function as Lambda holds
it, the bucket notifying it), and a local stack described as `make local` describes its
own."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from local_stack.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from local_stack.harness import CapturedLogger, LambdaContext
from local_stack.template import Stack
from s3_to_wistia.cli.local import LocalStack, function_resources, write_description
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.importing import Importer
from s3_to_wistia.times import iso_now

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20
VIDEO_LIMIT = "This account has exceeded its video limit. Please upgrade to upload more videos."
ERROR_PREFIX = "s3-to-wistia: error: "
CLI = Path(sys.executable).parent / "s3-to-wistia"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(ERROR_PREFIX)]

    def json(self) -> Any:
        return json.loads(self.out)


def run_on_terminal(*args: str) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """`s3-to-wistia ARGS...` with stderr on a pseudo-terminal (where progress is drawn)
    and stdout on a pipe: the finished process, and what the terminal showed."""
    controller, terminal = pty.openpty()
    screen = bytearray()

    def read_screen() -> None:
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # the terminal closed
                return
            if not data:
                return
            screen.extend(data)

    reader = threading.Thread(target=read_screen, daemon=True)
    reader.start()
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TTY_INTERACTIVE")}
    try:
        done = subprocess.run(  # noqa: S603 - our own console script
            [str(CLI), *args],
            stdout=subprocess.PIPE,
            stderr=terminal,
            env={**environment, "TERM": "xterm-256color", "COLUMNS": "120"},
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        reader.join(timeout=5)
        os.close(controller)
    return done, screen.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Deployment:
    """A stack as deployed: its name, its resources, its function."""

    name: str
    stack: Stack
    function_name: str
    function_arn: str
    wistia_url: str

    @property
    def target(self) -> tuple[str, ...]:
        return ("--stack", self.name)

    @property
    def wistia(self) -> tuple[str, ...]:
        """The Wistia URLs, for commands that take them (the emulator, not Wistia's own)."""
        return ("--api-url", self.wistia_url, "--upload-url", self.wistia_url)


def deploy(
    stack: Stack,
    wistia_url: str,
    *,
    environment: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    notify: bool = False,
) -> Deployment:
    """The import function in Lambda (its code never runs in moto: the CLI reads its
    configuration), the bucket notifying it when `notify` (moto then tries to run it, in
    Docker, for every object put), and the stack's Outputs."""
    suffix = stack.table_name
    role = boto3.client("iam").create_role(
        RoleName=f"role-{suffix}"[:64],
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return {}\n")
    function = boto3.client("lambda").create_function(
        FunctionName=f"import-{suffix}",
        Runtime="python3.13",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=60,
        Environment={"Variables": {**stack.environment_for(wistia_url), **(environment or {})}},
    )
    if notify:
        boto3.client("s3").put_bucket_notification_configuration(
            Bucket=stack.bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {"LambdaFunctionArn": function["FunctionArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
    name = f"deployed-{suffix}"
    values = {
        "BucketName": stack.bucket,
        "ImportFunctionName": function["FunctionName"],
        "ImportFunctionArn": function["FunctionArn"],
        "ImportsTableName": stack.table_name,
        "DeadLetterQueueUrl": stack.queue_url,
        "WistiaTokenSecretArn": stack.secret_id,
        **(outputs or {}),
    }
    boto3.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {key: {"Value": value} for key, value in values.items()},
            }
        ),
    )
    return Deployment(
        name, stack, function["FunctionName"], function["FunctionArn"], wistia_url.rstrip("/") + "/"
    )


def describe_local_stack(
    folder: Path, stack: Stack, endpoint_url: str, wistia_url: str, pid: int | None = None
) -> LocalStack:
    """`stack`, described as up in `folder` as make local describes its own (this process
    serving it, unless `pid` says another)."""
    description = LocalStack(
        started_by="make local",
        pid=os.getpid() if pid is None else pid,
        started_at=iso_now(),
        endpoint_url=endpoint_url,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        resources=function_resources(
            bucket=stack.bucket,
            table=stack.table_name,
            queue_url=stack.queue_url,
            token_secret=stack.secret_id,
            wistia_url=wistia_url,
        ),
        function_environment=stack.environment_for(wistia_url),
    )
    write_description(folder / "live", description)
    return description


def deliver(event: Any, importer: Importer, log: CapturedLogger) -> Any:
    """The function's handling of one event, in this process."""
    return handle_event(
        event, LambdaContext(timeout_seconds=30), importer, importer.dead_letters, log.logger
    )


def queued(queue_url: str) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def posts(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Upload API requests Wistia received."""
    return [r for r in requests if r["method"] == "POST" and r["path"] == "/"]
