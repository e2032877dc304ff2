"""Building the Importer from Settings: the only place that creates clients.

Cold start is the user's bill, so only what the happy path needs is created here:
the S3 and DynamoDB clients and the HTTP pool. SQS (failures only) and Secrets
Manager (first event) clients are created on first use.

Every caller of Wistia builds its request budget with `build_rate_budget` (the one
schedule of the account, in the budget table), and asks it before each request.

Each builder imports the modules of its own entry point: a function's cold start pays for
its own code, not for the others' (the webhook receiver never loads the importer, the
import function never loads the webhook receiver or the poller).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import boto3
import urllib3
from botocore.config import Config

from s3_to_wistia.adapters.dead_letters import DeadLetters
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.adapters.secrets import SecretReader, TokenSource, WebhookKeySource
from s3_to_wistia.config import Settings

if TYPE_CHECKING:
    from s3_to_wistia.adapters.wistia import CallTrace
    from s3_to_wistia.backfill import BackfillSettings
    from s3_to_wistia.deletions import RemovalFollower
    from s3_to_wistia.importing import Importer
    from s3_to_wistia.media_status import StatusUpdater
    from s3_to_wistia.polling import PollerSettings, StatusPoller
    from s3_to_wistia.ports import (
        DeadLetterSink,
        Log,
        MetricSink,
        RateBudget,
        RequestBudget,
    )
    from s3_to_wistia.webhooks import WebhookReceiver, WebhookSettings

# The AWS clients' connections when nothing asks for more (botocore's own default).
AWS_POOL_CONNECTIONS = 10
# The medias of one webhook POST (or of one poller request) are applied at once, this many
# at a time (Wistia batches events; each media costs an index query and a conditional write).
WEBHOOK_WORKERS = 8


@dataclass(frozen=True)
class ImportFunction:
    """What the import function's handler hands to dispatch."""

    importer: Importer
    dead_letters: DeadLetterSink
    # Follows deletion events (ON_DELETE); built from the importer's own clients.
    removals: RemovalFollower | None = None


def build_importer(settings: Settings, log: Log, metrics: MetricSink) -> Importer:
    return build_import_function(settings, log, metrics).importer


def aws_client_config(max_pool_connections: int = AWS_POOL_CONNECTIONS) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=max_pool_connections,
        # The adapters send fixed shapes; botocore's walk over every parameter of every
        # request is a tenth of the function's CPU per object. AWS still validates them.
        parameter_validation=False,
    )


def build_rate_budget(
    settings: Settings | PollerSettings,
    dynamodb_client: Any = None,
    session: Any = None,
) -> RateBudget:
    """The account's request budget for this process: the shared schedule in the budget
    table (RATE_BUDGET_TABLE_NAME), or one in memory when no table is configured. Build it
    once per process: it keeps the slots booked ahead for this process's threads."""
    from s3_to_wistia.adapters.budget import DynamoDBSchedule
    from s3_to_wistia.budget import MemorySchedule, SharedBudget
    from s3_to_wistia.budget import Pace as BudgetPace

    pace = BudgetPace.of(settings.requests_per_minute, settings.rate_window_seconds)
    if settings.rate_budget_table is None:
        return SharedBudget(MemorySchedule(), pace)
    if dynamodb_client is None:
        session = session or boto3.session.Session(region_name=settings.aws_region)
        dynamodb_client = session.client("dynamodb", config=aws_client_config())
    return SharedBudget(DynamoDBSchedule(dynamodb_client, settings.rate_budget_table), pace)


def build_import_function(
    settings: Settings,
    log: Log,
    metrics: MetricSink,
    session: Any = None,
    tracer: Any = None,
    caller: str | None = None,
) -> ImportFunction:
    """`session`: the function's own by default; the operators' CLI passes its own (its
    profile, or the local stack's endpoint) to run the function's code path. `tracer`:
    Powertools' Tracer when tracing is Active (adds subsegments around the Wistia calls);
    `caller`: the budget's name for this entry point (budget.SHARES; IMPORTS by default)."""
    from s3_to_wistia.adapters.http import bounded_pool
    from s3_to_wistia.adapters.secrets import SigningKeys
    from s3_to_wistia.adapters.storage import Storage
    from s3_to_wistia.adapters.wistia import WistiaClient
    from s3_to_wistia.budget import IMPORTS
    from s3_to_wistia.deletions import RemovalFollower
    from s3_to_wistia.importing import READ_THREADS, Importer

    session = session or boto3.session.Session(region_name=settings.aws_region)
    # Enough connections for a full SQS batch of 10 records, each reading S3 twice at once.
    aws_config = aws_client_config(max_pool_connections=READ_THREADS)
    s3 = session.client("s3", config=aws_config.merge(Config(signature_version="s3v4")))
    dynamodb = session.client("dynamodb", config=aws_config)
    # One pool for Wistia and the URL probes; each call ends by its deadline.
    http = bounded_pool(maxsize=READ_THREADS, block=False)
    secrets = SecretReader(_lazy_client(session, "secretsmanager", aws_config))
    signer = None
    if settings.signing_credentials_secret:
        s3_config = aws_config.merge(Config(signature_version="s3v4"))
        signer = SigningKeys(
            settings.signing_credentials_secret,
            settings.token_cache_seconds,
            secrets,
            lambda key_id, secret: session.client(
                "s3",
                aws_access_key_id=key_id,
                aws_secret_access_key=secret,
                config=s3_config,
            ),
        ).client
    dead_letters = DeadLetters(
        _lazy_client(session, "sqs", aws_config), settings.dead_letter_queue_url
    )
    wistia = WistiaClient(
        http,
        settings.upload_url,
        urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
        api_url=settings.api_url,
        trace=_wistia_trace(tracer),
    )
    importer = Importer(
        settings=settings,
        storage=Storage(s3, session.get_credentials(), signer, http),
        records=Records(dynamodb, settings.imports_table_name),
        dead_letters=dead_letters,
        wistia=wistia,
        tokens=TokenSource(settings.token_secret_id, settings.token_cache_seconds, secrets),
        metrics=metrics,
        log=log,
        budget=build_rate_budget(settings, dynamodb),
        caller=caller or IMPORTS,
    )
    removals = RemovalFollower(
        settings=settings,
        storage=importer.storage,
        records=importer.records,  # type: ignore[arg-type]  # Records: every KeyRecords call
        dead_letters=dead_letters,
        wistia=wistia,
        tokens=importer.tokens,
        metrics=metrics,
        log=log,
        budget=importer.budget,
        caller=importer.caller,
    )
    return ImportFunction(importer, dead_letters, removals)


def _wistia_trace(tracer: Any) -> CallTrace | None:
    """With tracing Active, a subsegment for every call to Wistia; off, nothing."""
    if tracer is None:
        return None
    from s3_to_wistia.adapters.tracing import wistia_calls

    return wistia_calls(tracer)


def build_webhook_receiver(
    settings: WebhookSettings, log: Log, metrics: MetricSink
) -> WebhookReceiver:
    """The receiver: DynamoDB at cold start (every POST writes), Secrets Manager on the
    first POST, SQS on the first failed media."""
    from s3_to_wistia.webhooks import WebhookReceiver

    session = boto3.session.Session(region_name=settings.aws_region)
    aws_config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=WEBHOOK_WORKERS,
    )
    records = Records(session.client("dynamodb", config=aws_config), settings.imports_table_name)
    metrics = LockedMetrics(metrics)
    updater = _status_updater(
        session, aws_config, records, settings.dead_letter_queue_url, metrics, log
    )
    secrets = SecretReader(_lazy_client(session, "secretsmanager", aws_config))
    return WebhookReceiver(
        secret=WebhookKeySource(settings.webhook_secret_id, settings.secret_cache_seconds, secrets),
        updater=updater,
        metrics=metrics,
        log=log,
        max_body_bytes=settings.max_body_bytes,
    )


def _status_updater(
    session: Any,
    aws_config: Config,
    records: Records,
    dead_letter_queue_url: str,
    metrics: MetricSink,
    log: Log,
) -> StatusUpdater:
    """What the receiver and the poller apply media statuses with: the medias of one POST
    (or of one Data API answer, up to 100) at once, SQS created on the first failed media."""
    from s3_to_wistia.media_status import StatusUpdater

    return StatusUpdater(
        records=records,
        dead_letters=DeadLetters(_lazy_client(session, "sqs", aws_config), dead_letter_queue_url),
        metrics=metrics,
        log=log,
        parallel=ThreadPoolExecutor(WEBHOOK_WORKERS, thread_name_prefix="media").map,
    )


@dataclass(frozen=True)
class PollFunction:
    """What the poller's handler runs: the poller, and a request budget for each run."""

    poller: StatusPoller
    max_requests: int
    # The account's shared budget, when the deployment has a budget table.
    shared: RateBudget | None = None

    def budget(self) -> RequestBudget:
        """At most `max_requests` in the run; with a budget table, each of them booked on
        the account's schedule at the poller's priority (it takes what imports leave)."""
        from s3_to_wistia.budget import POLLER
        from s3_to_wistia.polling import BookedRun, RunAllowance

        if self.shared is None:
            return RunAllowance(self.max_requests)
        return BookedRun(RunAllowance(self.max_requests), self.shared, POLLER)


def build_status_poller(
    settings: PollerSettings, log: Log, metrics: MetricSink, tracer: Any = None
) -> PollFunction:
    from s3_to_wistia.adapters.http import bounded_pool
    from s3_to_wistia.adapters.wistia import WistiaClient
    from s3_to_wistia.polling import StatusPoller
    from s3_to_wistia.swaps import Swapper

    session = boto3.session.Session(region_name=settings.aws_region)
    aws_config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=WEBHOOK_WORKERS,
    )
    metrics = LockedMetrics(metrics)
    dynamodb = session.client("dynamodb", config=aws_config)
    records = Records(dynamodb, settings.imports_table_name)
    wistia = WistiaClient(
        bounded_pool(maxsize=2, block=False),
        settings.api_url,
        urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
        api_url=settings.api_url,
        trace=_wistia_trace(tracer),
    )
    updater = _status_updater(
        session, aws_config, records, settings.dead_letter_queue_url, metrics, log
    )
    secrets = SecretReader(_lazy_client(session, "secretsmanager", aws_config))
    tokens = TokenSource(settings.token_secret_id, settings.token_cache_seconds, secrets)
    poller = StatusPoller(
        records=records,
        wistia=wistia,
        tokens=tokens,
        updater=updater,
        metrics=metrics,
        log=log,
        poll_after_seconds=settings.poll_after_seconds,
        max_requests=settings.max_requests,
        swapper=Swapper(
            records=records,
            wistia=wistia,
            tokens=tokens,
            dead_letters=updater.dead_letters,
            metrics=metrics,
            log=log,
        ),
    )
    shared = None
    if settings.rate_budget_table is not None:
        shared = build_rate_budget(settings, dynamodb)
    return PollFunction(poller, settings.max_requests, shared)


def build_backfill_function(
    settings: Settings,
    backfill: BackfillSettings,
    log: Log,
    metrics: MetricSink,
    tracer: Any = None,
) -> ImportFunction:
    """The import function's Importer for S3 Batch Operations tasks: one attempt per
    invocation (S3 redrives a TemporaryFailure itself). With a budget table every Wistia
    call books on the account's schedule at the backfill's priority; without one, each
    instance keeps to its share of the rate (BACKFILL_REQUESTS_PER_MINUTE over
    BACKFILL_CONCURRENCY instances)."""
    from s3_to_wistia.backfill import BACKFILL_MAX_ATTEMPTS
    from s3_to_wistia.budget import BACKFILL
    from s3_to_wistia.pacing import Pace, PacedWistia

    function = build_import_function(
        replace(settings, max_attempts=BACKFILL_MAX_ATTEMPTS),
        log,
        metrics,
        tracer=tracer,
        caller=BACKFILL,
    )
    if settings.rate_budget_table is not None:
        return function
    importer = function.importer
    paced = PacedWistia(importer.wistia, Pace(backfill.pace_interval))
    return replace(function, importer=replace(importer, wistia=paced))


class LockedMetrics:
    """Powertools Metrics, safe to count from the threads of an SQS batch."""

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        with self._lock:
            self._metrics.add_metric(name=name, unit=unit, value=value)


def _lazy_client(session: Any, service: str, config: Config) -> Callable[[], Any]:
    """A factory that creates the client once, on first call, safely across threads."""
    lock = threading.Lock()
    client: list[Any] = []

    def get() -> Any:
        with lock:
            if not client:
                client.append(session.client(service, config=config))
            return client[0]

    return get
