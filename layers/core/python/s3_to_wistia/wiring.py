"""Building the Importer from Settings: the only place that creates clients.

Cold start is the user's bill, so only what the happy path needs is created here:
the S3 and DynamoDB clients and the HTTP pool. SQS (failures only) and Secrets
Manager (first event) clients are created on first use.

Every caller of Wistia builds its request budget with `build_rate_budget` (the one
schedule of the account, in the budget table), and asks it before each request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import urllib3
from botocore.config import Config

from s3_to_wistia.adapters.budget import DynamoDBSchedule
from s3_to_wistia.adapters.dead_letters import DeadLetters
from s3_to_wistia.adapters.http import bounded_pool
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.adapters.secrets import SecretReader, SigningKeys, TokenSource
from s3_to_wistia.adapters.storage import Storage
from s3_to_wistia.adapters.wistia import WistiaClient
from s3_to_wistia.budget import IMPORTS, MemorySchedule, Pace, SharedBudget
from s3_to_wistia.config import Settings
from s3_to_wistia.importing import READ_THREADS, Importer
from s3_to_wistia.ports import DeadLetterSink, Log, MetricSink, RateBudget, WistiaApi

# Enough connections for a full SQS batch of 10 records, each reading S3 twice at once.
POOL_SIZE = READ_THREADS


@dataclass(frozen=True)
class ImportFunction:
    """What the import function's handler hands to dispatch."""

    importer: Importer
    dead_letters: DeadLetterSink


def build_importer(settings: Settings, log: Log, metrics: MetricSink) -> Importer:
    return build_import_function(settings, log, metrics).importer


def aws_client_config() -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=POOL_SIZE,
        # The adapters send fixed shapes; botocore's walk over every parameter of every
        # request is a tenth of the function's CPU per object. AWS still validates them.
        parameter_validation=False,
    )


def build_rate_budget(
    settings: Settings, dynamodb_client: Any = None, session: boto3.session.Session | None = None
) -> RateBudget:
    """The account's request budget for this process: the shared schedule in the budget
    table (RATE_BUDGET_TABLE_NAME), or one in memory when no table is configured. Build it
    once per process: it keeps the slots booked ahead for this process's threads."""
    pace = Pace.of(settings.requests_per_minute, settings.rate_window_seconds)
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
    tracer: Any = None,
    caller: str = IMPORTS,
) -> ImportFunction:
    """`tracer`: Powertools' Tracer when tracing is Active (adds subsegments around the
    Wistia calls); `caller`: the budget's name for this entry point (budget.SHARES)."""
    session = boto3.session.Session(region_name=settings.aws_region)
    aws_config = aws_client_config()
    s3 = session.client("s3", config=aws_config.merge(Config(signature_version="s3v4")))
    dynamodb = session.client("dynamodb", config=aws_config)
    # One pool for Wistia and the URL probes; each call ends by its deadline.
    http = bounded_pool(maxsize=POOL_SIZE, block=False)
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
    client = WistiaClient(
        http,
        settings.upload_url,
        urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
        api_url=settings.api_url,
    )
    wistia: WistiaApi = client
    if tracer is not None:
        from s3_to_wistia.adapters.tracing import TracedWistia

        wistia = TracedWistia(client, tracer)
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
        caller=caller,
    )
    return ImportFunction(importer, dead_letters)


class LockedMetrics:
    """Powertools Metrics, safe to count from the threads of an SQS batch."""

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        with self._lock:
            self._metrics.add_metric(name=name, unit=unit, value=value)


def _lazy_client(session: boto3.session.Session, service: str, config: Config) -> Callable[[], Any]:
    """A factory that creates the client once, on first call, safely across threads."""
    lock = threading.Lock()
    client: list[Any] = []

    def get() -> Any:
        with lock:
            if not client:
                client.append(session.client(service, config=config))
            return client[0]

    return get
