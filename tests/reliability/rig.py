"""One scenario's local stack and the function's instances on it.

A Rig provisions a fresh copy of template.yaml's resources on the shared moto server, starts
its own Wistia emulator, and builds the function's concurrent instances: each is an Importer
made by local_stack.harness.make_importer (its own clients, HTTP pool and token cache) with its
own captured log, called through s3_to_wistia.dispatch.handle_event as the handler calls it.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3

from local_stack.aws import SECRET_ACCESS_KEY, LocalAws
from local_stack.aws_faults import AwsFaults
from local_stack.harness import (
    CapturedLogger,
    CountingMetrics,
    LambdaContext,
    all_records,
    make_importer,
)
from local_stack.sqs_source import SqsEventSource
from local_stack.template import Stack, provision
from reliability.driver import Handler, LambdaAsync
from reliability.invariants import DeadLetter, drain_dead_letters
from s3_to_wistia.config import Settings
from s3_to_wistia.dispatch import handle_event
from wistia_emulator import WistiaEmulator

TOKEN = "reliability-token-0001"
ROTATED_TOKEN = "reliability-token-0002-rotated"
SETTLE_SECONDS = 20.0
SERVER_LOGGERS = ("werkzeug", "wistia_emulator")
# The function's request budget where the emulator has no limit: never holds a request back.
UNLIMITED_REQUESTS_PER_MINUTE = 60_000


class RuntimeKilled(BaseException):
    """Lambda killing the runtime mid-invocation (a timeout, out of memory): nothing in the
    function gets to catch it, hand the claim back or finish a record."""


class InvocationKilled(RuntimeError):
    """What the Lambda stand-in sees of a killed runtime: the invocation failed."""


class Killer:
    """Kills a share of the invocations at the worst moment for the budget: right after
    their request's slot came, before the request went out."""

    def __init__(self, share: float, seed: int) -> None:
        self._share = share
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible workload
        self._lock = threading.Lock()
        self._armed = threading.local()
        self.killed = 0

    def arm(self) -> None:
        with self._lock:
            self._armed.value = self._rng.random() < self._share

    def after_take(self) -> None:
        if getattr(self._armed, "value", False):
            self._armed.value = False
            with self._lock:
                self.killed += 1
            raise RuntimeKilled("killed holding its slot of the request budget")


class KilledAfterTake:
    """A RateBudget whose takes may kill the invocation (see Killer)."""

    def __init__(self, budget: Any, killer: Killer) -> None:
        self._budget = budget
        self._killer = killer

    def take(self, caller: str, deadline: float) -> bool:
        took = bool(self._budget.take(caller, deadline))
        if took:
            self._killer.after_take()
        return took

    def pause(self, seconds: float) -> None:
        self._budget.pause(seconds)


@contextmanager
def quiet_servers() -> Iterator[None]:
    """moto's and the emulator's request lines would bury the results."""
    loggers = [logging.getLogger(name) for name in SERVER_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@dataclass
class EndState:
    records: list[dict[str, Any]]
    dead_letters: list[DeadLetter]
    medias: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    texts: dict[str, str]


@dataclass
class Rig:
    aws: LocalAws
    emulator: WistiaEmulator
    stack: Stack
    tokens: list[str] = field(default_factory=lambda: [TOKEN])
    logs: list[CapturedLogger] = field(default_factory=list)
    metrics: CountingMetrics = field(default_factory=CountingMetrics)
    drivers: list[LambdaAsync] = field(default_factory=list)
    sources: list[SqsEventSource] = field(default_factory=list)
    # The emulator's account limit: requests per window (None: no limit).
    rate_limit: int | None = None
    rate_window: float = 60.0

    @classmethod
    def start(
        cls,
        aws: LocalAws,
        rate_limit: int | None = None,
        rate_window: float = 60.0,
        processing_delay: float = 0.01,
        video_limit: int | None = None,
    ) -> Rig:
        stack = provision(token=TOKEN)
        emulator = WistiaEmulator(
            tokens=(TOKEN,),
            rate_limit=rate_limit,
            rate_window=rate_window,
            processing_delay=processing_delay,
            video_limit=video_limit,
        ).start()
        return cls(aws, emulator, stack, rate_limit=rate_limit, rate_window=rate_window)

    def stop(self) -> None:
        for driver in self.drivers:
            driver.stop(timeout=10.0)
        for source in self.sources:
            source.stop(timeout=10.0)
        self.aws.faults = None
        self.emulator.stop()

    # --- the function ----------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        """The function's settings as the template sets them, pointed at this emulator, its
        request budget set to the emulator's limit (as an operator sets
        WistiaRequestsPerMinute to the account's)."""
        environment = self.stack.environment_for(self.emulator.url)
        budget: dict[str, Any] = {"requests_per_minute": UNLIMITED_REQUESTS_PER_MINUTE}
        if self.rate_limit is not None:
            budget = {
                "requests_per_minute": round(self.rate_limit * 60 / self.rate_window),
                "rate_window_seconds": self.rate_window,
            }
        return replace(Settings.from_env(environment), **{**budget, **overrides})

    def sqs_source(
        self,
        concurrency: int,
        settings: Settings,
        timeout_seconds: float,
        killer: Killer | None = None,
    ) -> SqsEventSource:
        """Intake=Queue: the event source mapping on this stack's intake queue, handing
        batches of ten to `concurrency` instances (each with its own threads for a batch's
        records, as each Lambda environment has); failed records come back one function
        timeout later, as the template's VisibilityTimeout says. Stopped with the rig."""
        queue_url = self.stack.resources["IntakeQueue"]
        boto3.client("sqs").set_queue_attributes(
            QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(round(timeout_seconds))}
        )
        handlers = [
            handler
            for _, handler in self.instances(concurrency, settings, killer, own_records_pool=True)
        ]
        source = SqsEventSource(handlers, queue_url, timeout_seconds)
        self.sources.append(source)
        return source

    def instances(
        self,
        count: int,
        settings: Settings,
        killer: Killer | None = None,
        own_records_pool: bool = False,
    ) -> list[tuple[str, Handler]]:
        """`count` warm instances of the function, each with its own clients and caches (and
        its own view of the account's request budget, as Lambda's environments have)."""
        built: list[tuple[str, Handler]] = []
        for number in range(count):
            log = CapturedLogger.create()
            importer = make_importer(settings, log.logger)
            importer.metrics = self.metrics
            if killer is not None:
                importer.budget = KilledAfterTake(importer.budget, killer)
            self.logs.append(log)
            pool = ThreadPoolExecutor(max_workers=10) if own_records_pool else None

            def handler(
                event: Any,
                context: LambdaContext,
                importer: Any = importer,
                log: Any = log,
                pool: Any = pool,
            ) -> Any:
                if killer is not None:
                    killer.arm()
                try:
                    return handle_event(
                        event,
                        context,
                        importer,
                        importer.dead_letters,
                        log.logger,
                        records_pool=pool,
                    )
                except RuntimeKilled as killed:
                    raise InvocationKilled(str(killed)) from None

            built.append((f"i{len(self.logs)}-{number}", handler))
        return built

    def lambda_async(
        self,
        instances: list[tuple[str, Handler]],
        timeout_seconds: float,
        retry_delays: tuple[float, ...],
    ) -> LambdaAsync:
        """A Lambda stand-in for these instances, failing over to this stack's queue; stopped
        with the rig."""
        driver = LambdaAsync(instances, self.stack.queue_url, timeout_seconds, retry_delays)
        self.drivers.append(driver)
        return driver

    def failing_instances(
        self, count: int, environment: Mapping[str, str]
    ) -> list[tuple[str, Handler]]:
        """Instances whose cold start fails: Lambda runs the init again on every invocation,
        and the invocation fails with the init's error."""

        def handler(event: Any, context: LambdaContext) -> Any:
            Settings.from_env(environment)  # raises ConfigError
            raise AssertionError("the broken configuration was accepted")

        return [(f"broken-{n}", handler) for n in range(count)]

    def rotate_token(self) -> None:
        """Rotate the API token as an operator would: the secret first, then Wistia drops
        the old token. Instances keep the cached old token until Wistia refuses it."""
        boto3.client("secretsmanager").put_secret_value(
            SecretId=self.stack.secret_id, SecretString=json.dumps({"token": ROTATED_TOKEN})
        )
        self.emulator.set_tokens(ROTATED_TOKEN)
        self.tokens.append(ROTATED_TOKEN)

    def arm_aws(self, faults: AwsFaults | None) -> None:
        self.aws.faults = faults

    # --- the operator ------------------------------------------------------------------------

    def requeue(self, letters: list[DeadLetter]) -> None:
        """Put messages read by collect() back in the dead-letter queue, as they were."""
        sqs = boto3.client("sqs")
        for start in range(0, len(letters), 10):
            entries = [
                {"Id": str(n), "MessageBody": letter.raw}
                for n, letter in enumerate(letters[start : start + 10])
            ]
            sqs.send_message_batch(QueueUrl=self.stack.queue_url, Entries=entries)

    def redrive(self, handler: Handler, timeout_seconds: float) -> list[str]:
        """`make redrive`, the operator's tool (s3_to_wistia.cli.redrive), with the function
        invoked synchronously in process by `handler`; its summary lines."""
        from s3_to_wistia import redrive
        from s3_to_wistia.adapters.dead_letters import DeadLetterQueue
        from s3_to_wistia.adapters.records import Records
        from s3_to_wistia.cli.redrive import run

        def invoke(event: dict[str, Any]) -> redrive.Invocation:
            try:
                handler(event, LambdaContext(timeout_seconds=timeout_seconds))
            except Exception as error:
                return redrive.Invocation(ok=False, error=f"{type(error).__name__}: {error}")
            return redrive.Invocation(ok=True)

        queue = DeadLetterQueue(boto3.client("sqs"), self.stack.queue_url, wait_seconds=0)
        records = Records(boto3.client("dynamodb"), self.stack.table_name)
        lines: list[str] = []
        run(queue, records, invoke, lines.append)
        return [line for line in lines if not line.startswith(" ")][:1]

    # --- the end state -----------------------------------------------------------------------

    def collect(self, settle: bool = True) -> EndState:
        """Records, dead letters (drained), Wistia's medias and requests, and the logs;
        `settle` first waits (bounded) for Wistia to finish fetching what it was given."""
        if settle:
            self.emulator.wait_until_settled(timeout=SETTLE_SECONDS)
        records = all_records(self.stack.table_name)
        letters = drain_dead_letters(self.stack.queue_url)
        medias = self.emulator.medias()
        requests = self.emulator.requests()
        texts = {
            "logs": self.log_text(),
            "records": json.dumps(records, default=str, ensure_ascii=False),
            "dead letters": "\n".join(letter.raw for letter in letters),
        }
        return EndState(records, letters, medias, requests, texts)

    def log_text(self) -> str:
        return "".join(log.text() for log in self.logs)

    def write_logs(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.log_text(), encoding="utf-8")

    @property
    def aws_secret(self) -> str:
        return SECRET_ACCESS_KEY
