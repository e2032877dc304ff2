"""`make run`: the whole pipeline, offline, on the embedded local stack.

    python -m local_stack.run [--source DIR]     (make run [SOURCE=DIR])

moto's server plays AWS and the Wistia emulator plays Wistia, on loopback ports the OS
picks. template.yaml's resources are provisioned into moto; moto's S3 notifies a delivery
queue of every new object, and each notification invokes the real handler the way Lambda's
asynchronous invocation would (delivery.py). A table then shows where every object ended:
its import record, its Wistia media (asked over the Data API, as a user would) and the
dead-letter queue.

The emulator's signed webhooks go to the webhook receiver (the real handler behind a
loopback Function URL stand-in, function_url.py), so the table also shows each media's
processing status as the webhooks brought it into its record.

Without --source, sample media made on the fly cover what matters: awkward names, a
duplicate delivery, objects to skip, one file Wistia accepts but cannot process (it ends in
the dead-letter queue with its reason) and one upload over the account's video limit, and
the exit status says whether each ended where it should. With --source, every file under
DIR is uploaded (keys are the paths relative to DIR).
"""

from __future__ import annotations

import argparse
import logging
import os
import posixpath
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import boto3
from boto3.dynamodb.types import TypeDeserializer

from local_stack.aws import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, LocalAws, patched_environ
from local_stack.delivery import AsyncInvoker, Invocation, NotificationPump, object_keys
from local_stack.function_url import FunctionUrl
from local_stack.functions import Handler, load_handler
from local_stack.harness import all_records, drain
from local_stack.report import (
    Console,
    WistiaDataApi,
    check_samples,
    check_source,
    dead_letters_in,
    display_width,
    latest_records,
    pad,
    report_rows,
    show_report,
    show_verdict,
    wait_for_media_statuses,
    wait_for_processing,
)
from local_stack.run_backfill import (
    Existing,
    backfill_existing,
    describe_existing,
    existing_objects,
    show_backfill_verdict,
    upload_existing,
)
from local_stack.run_deletion import follow_a_deletion
from local_stack.run_overwrite import follow_an_overwrite
from local_stack.samples import Sample, avi_bytes, builtin_samples
from local_stack.template import Stack, function_setting, load_template, provision
from s3_to_wistia.cli.local import (
    SNAPSHOT,
    LocalStack,
    Snapshot,
    function_resources,
    local_dir,
    remove_description,
    write_description,
    write_snapshot,
)
from s3_to_wistia.redact import redact
from s3_to_wistia.times import iso_now
from wistia_emulator import WistiaEmulator

# .local/run in the checkout ($S3_TO_WISTIA_LOCAL_DIR/run when set, as the CLI reads it).
RUN_DIR = local_dir() / "run"
FUNCTION_LOG = RUN_DIR / "function.log"
SERVERS_LOG = RUN_DIR / "servers.log"
TOKEN = "local-run-token"
# The sample make run deletes at the end, its media deleted at Wistia (OnDelete=delete).
DELETED_SAMPLE = "audio/café déjà vu.wav"
# The sample make run uploads again with a new file, swapped into its media (OnOverwrite).
OVERWRITTEN_SAMPLE = "talks/C++ talk + Q&A.avi"
# What the user pastes into the webhook secret from Wistia's account settings.
WEBHOOK_KEY = "local-run-webhook-secret-key"
# Lambda waits 1 and 2 minutes before its two retries; seconds are enough here.
RETRY_DELAYS = (1.0, 2.0)
LAMBDA_INSTANCES = 4
OUTCOME_TIMEOUT = 20.0
PROCESSING_TIMEOUT = 15.0
SERVER_LOGGERS = ("werkzeug", "wistia_emulator")
# A Lambda function sees only its own configuration: none of the user's AWS profile,
# credentials, endpoints or Wistia settings may reach the local function (or real AWS).
FOREIGN_PREFIXES = (
    "AWS_",
    "WISTIA_",
    "POWERTOOLS_",
    "IMPORT_",
    "IMPORTS_",
    "DEAD_LETTER_",
    "PRESIGNED_",
    "LAMBDA_",
    "_X_AMZN_",
)
AWS_ISOLATION = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


# --- entry point -----------------------------------------------------------------------------


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.run",
        description="Run the import pipeline end to end on moto and the Wistia emulator.",
    )
    parser.add_argument(
        "--source",
        metavar="DIR",
        type=Path,
        help="upload every file under DIR instead of the built-in samples",
    )
    arguments = parser.parse_args(argv)
    if arguments.source is not None:
        source = arguments.source.resolve()
        if not source.is_dir():
            parser.error(f"--source {arguments.source} is not a directory")
        if not source_files(source):
            parser.error(f"--source {arguments.source} holds no files")
        if source == RUN_DIR or RUN_DIR in source.parents:
            parser.error(f"--source cannot be inside {RUN_DIR}: it is emptied on every run")
        arguments.source = source
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    started = time.monotonic()
    try:
        with sigterm_as_interrupt():
            code = run(arguments.source)
    except KeyboardInterrupt as interrupt:
        print("\nInterrupted; the local stack is stopped.", file=sys.stderr)
        return 128 + (interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT)
    finally:
        print(f"\nFunction log (Powertools JSON, metrics): {relative(FUNCTION_LOG)}")
        print(f"Server log (moto and Wistia emulator requests): {relative(SERVERS_LOG)}")
    print(f"Finished in {time.monotonic() - started:.1f} s; nothing is left running.")
    if (RUN_DIR / SNAPSHOT).is_file():
        print(
            "Its records, any time: .venv/bin/s3-to-wistia status --local "
            f"(from {relative(RUN_DIR / SNAPSHOT)}; `make local` keeps a stack up)"
        )
    return code


def run(source: Path | None) -> int:
    shutil.rmtree(RUN_DIR, ignore_errors=True)
    RUN_DIR.mkdir(parents=True)
    samples = builtin_samples() if source is None else []
    uploads = [(s.key, s.body) for s in samples] if source is None else source_files(source)
    keys = [key for key, _ in uploads]
    # The samples fill the account so that exactly the last one is over the limit.
    video_limit = sum(s.importable for s in samples) - 1 if samples else None
    # With the samples, a few objects are in the bucket before the function is wired up:
    # a backfill brings them in once the events are done.
    existing = existing_objects() if samples else []

    with ExitStack() as cleanup:
        cleanup.enter_context(server_logs_to(SERVERS_LOG))
        console = Console(cleanup.enter_context(function_output_to(FUNCTION_LOG)))
        cleanup.enter_context(temp_files_in(RUN_DIR / "tmp"))
        pipeline = start_pipeline(
            cleanup,
            console,
            samples,
            video_limit,
            keys,
            existing=existing,
            on_delete="delete" if samples else "keep",
        )
        # Described while it runs, so the CLI's --local can reach it; gone when it stops.
        description = described(pipeline, "make run")
        write_description(RUN_DIR, description)
        cleanup.callback(remove_description, RUN_DIR)
        if samples:
            missing = upload_samples(pipeline, samples, video_limit)
        else:
            console.line(f"\nUploading {len(uploads)} files from {source}:")
            missing = upload_and_wait(pipeline, uploads, {})
        code = report_outcome(pipeline, keys, samples, missing, description)
        if existing:
            code = max(code, backfill(pipeline, existing, keys, video_limit))
        if samples:
            overwritten = follow_an_overwrite(
                console,
                pipeline.stack,
                pipeline.emulator,
                status_poller(pipeline),
                OVERWRITTEN_SAMPLE,
                avi_bytes(hue=200),
            )
            code = max(code, overwritten)
            handled = pipeline.outcomes.handled(DELETED_SAMPLE)
            deleted = follow_a_deletion(
                console,
                pipeline.stack,
                pipeline.emulator,
                pipeline.pump.queue_url,
                DELETED_SAMPLE,
                # The invocation's own line first, then the verdict.
                landed=lambda: pipeline.outcomes.wait_for({DELETED_SAMPLE: handled + 1}, 5),
            )
            code = max(code, deleted)
        return code


def status_poller(pipeline: Pipeline) -> Handler:
    """The status poller's handler (on demand here; on its schedule in AWS)."""
    environment = {
        **pipeline.stack.environments["PollerFunction"],
        "WISTIA_API_URL": pipeline.wistia_url,
        "STATUS_POLL_AFTER_SECONDS": "0",
    }
    with patched_environ(environment):
        return load_handler("PollerFunction")


def backfill(
    pipeline: Pipeline, existing: list[Existing], handled: list[str], video_limit: int | None
) -> int:
    """The objects from before the wiring, brought in by a backfill job (run_backfill.py)."""
    assert pipeline.emulator is not None
    problems = backfill_existing(
        pipeline.console,
        pipeline.stack,
        pipeline.emulator,
        pipeline.wistia,
        existing,
        handled,
        video_limit,
    )
    show_backfill_verdict(pipeline.console, problems, existing, handled)
    return 1 if problems else 0


@dataclass(frozen=True)
class Pipeline:
    """The running local stack and the function wired to it."""

    console: Console
    stack: Stack
    wistia: WistiaDataApi
    outcomes: Outcomes
    pump: NotificationPump
    emulator: WistiaEmulator
    webhooks: FunctionUrl
    aws_endpoint: str = ""
    wistia_url: str = ""
    function_timeout: float = 60.0


def start_pipeline(
    cleanup: ExitStack,
    console: Console,
    samples: list[Sample],
    video_limit: int | None,
    keys: list[str],
    folder: Path = RUN_DIR,
    existing: Sequence[Existing] = (),
    on_delete: str = "keep",
) -> Pipeline:
    """Start moto and the emulator, provision the template, put the `existing` objects in the
    bucket, and only then subscribe the function to it; everything started is stopped by
    `cleanup`, last started first. The emulator keeps what it fetches under `folder`.
    `on_delete`: the stack's OnDelete; followed deletions reach the function by the same
    queue as the uploads (standing in for the template's EventBridge rule)."""
    aws = LocalAws().start()
    cleanup.callback(aws.stop)
    cleanup.enter_context(lambda_like_environment(aws.environment()))
    emulator = WistiaEmulator(tokens=(TOKEN,), video_limit=video_limit, data_dir=str(folder))
    cleanup.callback(emulator.start().stop)

    template = load_template()
    stack = provision(
        token=TOKEN,
        template=template,
        parameters={"OnDelete": on_delete},
        secrets={"WistiaWebhookSecret": WEBHOOK_KEY},
    )
    upload_existing(stack.bucket, existing)
    delivery_queue = deliver_object_created_events_to_queue(
        stack.bucket, removed_too=on_delete != "keep"
    )
    function_environment = stack.environment_for(emulator.url)
    cleanup.enter_context(patched_environ(function_environment))
    # Imported once, as a new execution environment does, with its variables set.
    handler = load_handler("ImportFunction", template)
    # The webhook receiver, behind its Function URL: Wistia's webhooks are sent there.
    with patched_environ(stack.environments["WebhookFunction"]):
        receiver = load_handler("WebhookFunction", template)
    webhooks = FunctionUrl(
        receiver,
        timeout_seconds=float(
            function_setting(template, "Timeout", default=3, logical_id="WebhookFunction")
        ),
    )
    cleanup.callback(webhooks.start().stop)
    emulator.set_webhook(webhooks.url, WEBHOOK_KEY)

    outcomes = Outcomes(console, stack, key_width=max(map(display_width, keys), default=0))
    invoker = AsyncInvoker(
        handler,
        failure_queue_url=stack.queue_url,
        timeout_seconds=function_timeout(template),
        on_result=outcomes.landed,
        on_retry=outcomes.retrying,
        retry_delays=RETRY_DELAYS,
        instances=LAMBDA_INSTANCES,
    )
    cleanup.callback(invoker.start().stop)
    twice = {sample.key for sample in samples if sample.delivered_twice}
    pump = NotificationPump(
        delivery_queue,
        invoker,
        deliveries=lambda event: 2 if twice & set(object_keys(event)) else 1,
    )
    cleanup.callback(pump.start().stop)
    describe_stack(console, aws, emulator, stack, video_limit, webhooks)
    if existing:
        describe_existing(console, existing)
    return Pipeline(
        console,
        stack,
        WistiaDataApi(emulator.url, TOKEN),
        outcomes,
        pump,
        emulator,
        webhooks,
        aws_endpoint=aws.endpoint_url,
        wistia_url=emulator.url,
        function_timeout=function_timeout(template),
    )


def report_outcome(
    pipeline: Pipeline,
    keys: list[str],
    samples: list[Sample],
    missing: list[str],
    description: LocalStack | None = None,
) -> int:
    """Show where every object ended; the exit status: 0 when each ended where it should.
    With the stack's `description`, a snapshot of it is saved for `status --local`."""
    console, stack, wistia = pipeline.console, pipeline.stack, pipeline.wistia
    records = latest_records(stack.table_name)
    hashed_ids = [r["wistia_hashed_id"] for r in records.values() if "wistia_hashed_id" in r]
    console.line(f"\nWaiting for Wistia to process {len(hashed_ids)} media...")
    medias = wait_for_processing(wistia, hashed_ids, PROCESSING_TIMEOUT)
    pipeline.emulator.wait_until_webhooks_delivered(timeout=PROCESSING_TIMEOUT)
    records = wait_for_media_statuses(stack.table_name, PROCESSING_TIMEOUT)
    console.line(webhook_summary(pipeline.webhooks))
    # How many media a twice-delivered object made, asked by name as a user would.
    twice_named = {
        s.key: len(wistia.medias_named(posixpath.basename(s.key)))
        for s in samples
        if s.delivered_twice
    }
    notes = {
        key: f"delivered twice; {n} Wistia media by this name" for key, n in twice_named.items()
    }
    rows = report_rows(keys, records, medias, notes)
    bodies = drain(stack.queue_url)
    dead_letters = dead_letters_in(bodies)
    show_report(console, rows, dead_letters)
    if description is not None:
        save_snapshot(RUN_DIR, description, stack, bodies, medias)

    problems = [f"{key}: no outcome within {OUTCOME_TIMEOUT:g} s" for key in missing]
    problems += [f"S3 event delivery: {error}" for error in pipeline.pump.errors]
    if samples:
        problems += check_samples(samples, rows, dead_letters, twice_named)
    else:
        problems += check_source(rows)
    show_verdict(console, problems, len(keys))
    return 1 if problems else 0


# --- the local stack -------------------------------------------------------------------------


def described(pipeline: Pipeline, started_by: str) -> LocalStack:
    """The running stack, as the CLI's --local reads it (s3_to_wistia.cli.local)."""
    stack = pipeline.stack
    webhook_secrets = [
        environment["WISTIA_WEBHOOK_SECRET"]
        for environment in stack.environments.values()
        if environment.get("WISTIA_WEBHOOK_SECRET")
    ]
    return LocalStack(
        started_by=started_by,
        pid=os.getpid(),
        started_at=iso_now(),
        endpoint_url=pipeline.aws_endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
        resources=function_resources(
            bucket=stack.bucket,
            table=stack.table_name,
            queue_url=stack.queue_url,
            token_secret=stack.secret_id,
            wistia_url=pipeline.wistia_url,
            extra=[("webhook_secret", secret) for secret in webhook_secrets[:1]],
        ),
        function_environment=stack.environment_for(pipeline.wistia_url),
        function_timeout=pipeline.function_timeout,
    )


def save_snapshot(
    folder: Path,
    description: LocalStack,
    stack: Stack,
    dead_letters: list[dict[str, Any]],
    medias: Mapping[str, dict[str, Any] | None],
) -> Path:
    """What the stack holds, for `status --local` once it is stopped."""
    snapshot = Snapshot(
        taken_at=iso_now(),
        stack=description,
        records=all_records(stack.table_name),
        dead_letters=dead_letters,
        medias={hashed_id: media for hashed_id, media in medias.items() if media},
    )
    return write_snapshot(folder, snapshot)


def deliver_object_created_events_to_queue(bucket: str, removed_too: bool = False) -> str:
    """Have moto's S3 send every ObjectCreated notification (and ObjectRemoved, with
    `removed_too`) to a new queue; its URL.

    The queue stands in for S3's own delivery of events to Lambda: it is not part of the
    template, which subscribes the function to the bucket directly."""
    sqs = boto3.client("sqs")
    queue_url = str(sqs.create_queue(QueueName=f"{bucket}-s3-events")["QueueUrl"])
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": attributes["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"]
                    + (["s3:ObjectRemoved:*"] if removed_too else []),
                }
            ]
        },
    )
    return queue_url


def function_timeout(template: dict[str, Any]) -> float:
    """The function's Timeout from the template (Lambda's default is 3 seconds)."""
    return float(function_setting(template, "Timeout", default=3))


def webhook_summary(webhooks: FunctionUrl) -> str:
    answers = Counter(invocation.status for invocation in webhooks.invocations)
    shown = ", ".join(f"{count} answered {status}" for status, count in sorted(answers.items()))
    return f"Wistia's webhooks: {sum(answers.values())} signed POSTs to the receiver ({shown})"


def describe_stack(
    console: Console,
    aws: LocalAws,
    emulator: WistiaEmulator,
    stack: Stack,
    limit: int | None,
    webhooks: FunctionUrl,
) -> None:
    limit_text = "no video limit" if limit is None else f"video limit {limit} media"
    delays = " and ".join(f"{delay:g} s" for delay in RETRY_DELAYS)
    console.line("Local stack on loopback (nothing leaves this machine):")
    console.line(f"  AWS (moto)       {aws.endpoint_url}  resources from template.yaml")
    console.line(f"    bucket {stack.bucket}, table {stack.table_name},")
    console.line(f"    dead-letter queue {stack.queue_url.rsplit('/', 1)[-1]}")
    console.line(f"  Wistia emulator  {emulator.url}  {limit_text}")
    console.line("  S3 -> function   s3:ObjectCreated:* notifications via an SQS delivery queue,")
    console.line(f"    {LAMBDA_INSTANCES} Lambda instances, retries after {delays}")
    console.line(f"  Webhooks         {webhooks.url}  the receiver's Function URL; the emulator")
    console.line("    signs each POST with the key pasted into the stack's webhook secret")


# --- uploading and following the outcomes ----------------------------------------------------


def source_files(source: Path) -> list[tuple[str, bytes | Path]]:
    files = sorted(
        path for path in source.rglob("*") if path.is_file() and RUN_DIR not in path.parents
    )
    return [(path.relative_to(source).as_posix(), path) for path in files]


def upload_samples(pipeline: Pipeline, samples: list[Sample], limit: int | None) -> list[str]:
    """Upload the samples, the one over the video limit last, once the others are handled,
    so it is always that one that finds the account full."""
    deliveries = {sample.key: 2 if sample.delivered_twice else 1 for sample in samples}
    first = [(s.key, s.body) for s in samples if not s.trips_video_limit]
    last = [(s.key, s.body) for s in samples if s.trips_video_limit]
    console = pipeline.console
    console.line(f"\nUploading {len(first)} samples; S3 notifies the function of each:")
    missing = upload_and_wait(pipeline, first, deliveries)
    if last:
        console.line(f"\nUploading {len(last)} more, now that the account holds {limit} media:")
        missing += upload_and_wait(pipeline, last, deliveries)
    return missing


def upload_and_wait(
    pipeline: Pipeline,
    uploads: Sequence[tuple[str, bytes | Path]],
    deliveries: Mapping[str, int],
) -> list[str]:
    """Put the objects and wait for the function to finish with each; the keys it did not."""
    s3 = boto3.client("s3")
    bucket = pipeline.stack.bucket
    for key, body in uploads:
        if isinstance(body, Path):
            with body.open("rb") as stream:
                s3.put_object(Bucket=bucket, Key=key, Body=stream)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    expected = {key: deliveries.get(key, 1) for key, _ in uploads}
    return pipeline.outcomes.wait_for(expected, OUTCOME_TIMEOUT)


class Outcomes:
    """One progress line per object as its invocation finishes; lets the run wait for them."""

    def __init__(self, console: Console, stack: Stack, key_width: int) -> None:
        self._console = console
        self._stack = stack
        self._key_width = key_width
        self._finished: Counter[str] = Counter()
        self._changed = threading.Condition()
        # Made here: creating boto3 clients from the worker threads is not thread-safe.
        self._dynamodb = boto3.client("dynamodb")

    def landed(self, invocation: Invocation) -> None:
        for line in self._describe(invocation):
            self._console.line(line)
        with self._changed:
            self._finished.update(invocation.keys)
            self._changed.notify_all()

    def retrying(self, invocation: Invocation, delay: float) -> None:
        error = invocation.error
        for key in invocation.keys:
            self._console.line(
                self._line(
                    "retry",
                    key,
                    f"attempt {invocation.attempts} raised {type(error).__name__}: {error}; "
                    f"Lambda tries again in {delay:g} s",
                )
            )

    def handled(self, key: str) -> int:
        """How many deliveries naming `key` were handled so far."""
        with self._changed:
            return self._finished[key]

    def wait_for(self, deliveries: Mapping[str, int], timeout: float) -> list[str]:
        """Wait until every key had its deliveries handled; the keys still short after timeout."""

        def short() -> list[str]:
            return [key for key, count in deliveries.items() if self._finished[key] < count]

        with self._changed:
            self._changed.wait_for(lambda: not short(), timeout)
            return short()

    def _describe(self, invocation: Invocation) -> list[str]:
        again = "same notification again: " if invocation.delivery > 1 else ""
        if not invocation.succeeded:
            error = invocation.error
            detail = (
                f"Lambda gave up after {invocation.attempts} attempts "
                f"({type(error).__name__}: {error}); on-failure record sent to the DLQ"
            )
            return [self._line("FAILED", key, again + detail) for key in invocation.keys]
        response = invocation.response if isinstance(invocation.response, dict) else {}
        lines = []
        for result in response.get("results", []):
            key = result["object"].removeprefix(f"s3://{self._stack.bucket}/")
            record = self._record(key, result["version"]) or {}
            detail = (
                f"Wistia media {record['wistia_hashed_id']}"
                if record.get("wistia_hashed_id")
                else str(record.get("error", ""))
            )
            if record.get("media_action"):  # a deletion's record
                detail = (
                    f"media {record.get('media_action_hashed_id', '-')} {record['media_action']}"
                )
            lines.append(self._line(result["status"], key, again + detail))
        return lines

    def _line(self, status: str, key: str, detail: str) -> str:
        return f"  {status:<9}  {pad(key, self._key_width)}  {detail}".rstrip()

    def _record(self, key: str, version: str) -> dict[str, Any] | None:
        item = self._dynamodb.get_item(
            TableName=self._stack.table_name,
            Key={
                "object_uri": {"S": f"s3://{self._stack.bucket}/{key}"},
                "object_version": {"S": version},
            },
            ConsistentRead=True,
        ).get("Item")
        deserialize = TypeDeserializer().deserialize
        return {name: deserialize(value) for name, value in item.items()} if item else None


# --- keeping the run to itself ---------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C, so the servers are stopped on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def function_output_to(path: Path) -> Iterator[TextIO]:
    """Lambda sends a function's stdout (Powertools' JSON logs, EMF metrics) and warnings to
    CloudWatch Logs; here they go to a file. Yields the terminal for the run's own output."""
    console = sys.stdout
    py_warnings = logging.getLogger("py.warnings")
    with path.open("w", encoding="utf-8", buffering=1) as log:
        handler = logging.StreamHandler(log)
        py_warnings.addHandler(handler)
        py_warnings.propagate = False
        logging.captureWarnings(True)
        sys.stdout = log
        try:
            yield console
        finally:
            sys.stdout = console
            logging.captureWarnings(False)
            py_warnings.removeHandler(handler)
            py_warnings.propagate = True


@contextmanager
def server_logs_to(path: Path) -> Iterator[None]:
    """One line per request to moto and the emulator, in a file instead of the terminal,
    scrubbed as the function's own log is: a request line quotes its presigned URL."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(ScrubbingFormatter("%(asctime)s %(name)s %(message)s"))
    saved = []
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
        handler.close()


class ScrubbingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@contextmanager
def temp_files_in(directory: Path) -> Iterator[None]:
    """Temporary files (moto spools large objects to disk) stay under .local/run."""
    directory.mkdir(parents=True, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = str(directory)
    try:
        yield
    finally:
        tempfile.tempdir = previous


@contextmanager
def lambda_like_environment(aws_variables: Mapping[str, str]) -> Iterator[None]:
    """Only the local stack's AWS settings: no profile, config file, credentials or endpoint
    of the user's can point the run at real AWS, and no stray setting reaches the function."""
    foreign = {
        name: value for name, value in os.environ.items() if name.startswith(FOREIGN_PREFIXES)
    }
    for name in foreign:
        del os.environ[name]
    try:
        with patched_environ({**AWS_ISOLATION, **aws_variables}):
            forget_boto3_session()
            yield
    finally:
        os.environ.update(foreign)
        forget_boto3_session()


def forget_boto3_session() -> None:
    """boto3's default session keeps the credentials it first found; make it look again."""
    boto3.DEFAULT_SESSION = None


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
