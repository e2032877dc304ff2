"""moto's server on loopback, speaking the AWS protocols over real HTTP.

The function under test talks to it exactly as it talks to AWS: through boto3 and
`AWS_ENDPOINT_URL`. S3 presigned URLs are checked as S3 checks them (see presign_check).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote_plus

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3 import notifications as s3_notifications
from werkzeug.serving import BaseWSGIServer, make_server

from local_stack.aws_faults import AwsFaults, FaultInjection
from local_stack.presign_check import PresignedUrlCheck, SigningKey

REGION = "us-east-1"

_moto_s3_event = s3_notifications._get_s3_event


def _s3_event_as_aws_sends_it(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
    """moto's S3 notifications leave out versionId and sequencer and encode '/'; S3's do not."""
    event = _moto_s3_event(event_name, bucket, key, notification_id)
    obj = event["Records"][0]["s3"]["object"]
    obj["key"] = quote_plus(key.name, safe="/")
    if key.version_id and key.version_id != "null":
        obj["versionId"] = key.version_id
    obj["sequencer"] = uuid.uuid4().hex[:18].upper()
    return event


s3_notifications._get_s3_event = _s3_event_as_aws_sends_it
# The long-term key pair the local stack trusts. Any other key is refused like an unknown one.
ACCESS_KEY_ID = "AKIALOCALSTACKTEST01"
SECRET_ACCESS_KEY = "local-stack-secret-access-key-not-a-real-one"


class AtomicDynamoDB:
    """WSGI middleware: one DynamoDB request at a time.

    DynamoDB applies a conditional write atomically; moto's threaded server does not (two
    concurrent UpdateItems can both pass `attribute_not_exists`). Serialising DynamoDB
    calls gives the local stack the guarantee the function relies on in AWS.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # Consume the answer inside the lock: the write happens while it is produced.
            return list(self._app(environ, start_response))


class LocalAws:
    """A moto server in a background thread: `with LocalAws() as aws: aws.endpoint_url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.signing_keys: dict[str, SigningKey] = {
            ACCESS_KEY_ID: SigningKey(secret_key=SECRET_ACCESS_KEY)
        }
        # Seconds added to S3's clock, so tests can see a URL outlive its credentials.
        self.clock_skew = 0.0
        # Injected AWS errors (aws_faults.py); None, the default, lets every request through.
        self.faults: AwsFaults | None = None
        app = FaultInjection(
            PresignedUrlCheck(
                AtomicDynamoDB(DomainDispatcherApplication(create_backend_app)),
                self.signing_keys,
                clock=lambda: time.time() + self.clock_skew,
            ),
            lambda: self.faults,
        )
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalAws:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The standard AWS variables that point boto3 (and so the function) here."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def trust_key(self, access_key: str, secret_key: str) -> None:
        """Accept presigned URLs signed with another long-term key (an IAM user's)."""
        self.signing_keys[access_key] = SigningKey(secret_key)

    def trust_temporary_key(
        self, access_key: str, secret_key: str, session_token: str, expires_at: float
    ) -> None:
        """Accept presigned URLs signed with a temporary key until `expires_at`."""
        self.signing_keys[access_key] = SigningKey(secret_key, session_token, expires_at)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the old values after it."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
