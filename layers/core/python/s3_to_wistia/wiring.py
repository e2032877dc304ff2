"""Building the Importer from Settings: the only place that creates clients.

Cold start is the user's bill, so only what the happy path needs is created here:
the S3 and DynamoDB clients and the HTTP pool. SQS (failures only) and Secrets
Manager (first event) clients are created on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import boto3
import urllib3
from botocore.config import Config

from s3_to_wistia.adapters.dead_letters import DeadLetters
from s3_to_wistia.adapters.http import bounded_pool
from s3_to_wistia.adapters.records import Records
from s3_to_wistia.adapters.secrets import SecretReader, SigningKeys, TokenSource
from s3_to_wistia.adapters.storage import Storage
from s3_to_wistia.adapters.wistia import WistiaClient
from s3_to_wistia.backfill import BACKFILL_MAX_ATTEMPTS, BackfillSettings
from s3_to_wistia.config import Settings
from s3_to_wistia.importing import Importer
from s3_to_wistia.pacing import Pace, PacedWistia
from s3_to_wistia.ports import DeadLetterSink, Log, MetricSink

# Enough connections for a full SQS batch of 10 records handled at once.
POOL_SIZE = 10


@dataclass(frozen=True)
class ImportFunction:
    """What the import function's handler hands to dispatch."""

    importer: Importer
    dead_letters: DeadLetterSink


def build_importer(settings: Settings, log: Log, metrics: MetricSink) -> Importer:
    return build_import_function(settings, log, metrics).importer


def build_import_function(settings: Settings, log: Log, metrics: MetricSink) -> ImportFunction:
    session = boto3.session.Session(region_name=settings.aws_region)
    aws_config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=POOL_SIZE,
    )
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
    importer = Importer(
        settings=settings,
        storage=Storage(s3, session.get_credentials(), signer, http),
        records=Records(dynamodb, settings.imports_table_name),
        dead_letters=dead_letters,
        wistia=WistiaClient(
            http,
            settings.upload_url,
            urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout),
            api_url=settings.api_url,
        ),
        tokens=TokenSource(settings.token_secret_id, settings.token_cache_seconds, secrets),
        metrics=metrics,
        log=log,
    )
    return ImportFunction(importer, dead_letters)


def build_backfill_function(
    settings: Settings, backfill: BackfillSettings, log: Log, metrics: MetricSink
) -> ImportFunction:
    """The import function's Importer for S3 Batch Operations tasks: one attempt per
    invocation (S3 redrives a TemporaryFailure itself), every Wistia call taking its turn
    at the backfill's share of the account's rate."""
    function = build_import_function(
        replace(settings, max_attempts=BACKFILL_MAX_ATTEMPTS), log, metrics
    )
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
