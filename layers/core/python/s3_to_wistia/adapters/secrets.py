"""Secrets Manager through Powertools parameters: the Wistia token, and optional
long-term keys for signing presigned URLs.

Powertools caches each secret for `max_age` seconds, so a rotated value is picked up
without a redeploy; after a 401 the import reads the token once more with force_fetch.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from s3_to_wistia.errors import PermanentError, RetryableError
from s3_to_wistia.redact import register_secret

NOT_FOUND_OR_DENIED = ("ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure")


class SecretReader:
    """One Powertools SecretsProvider, created on first use and shared by every reader."""

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._client_factory = client_factory
        self._provider: Any = None
        # One reader at a time: concurrent records share one fetch instead of racing.
        self._lock = threading.Lock()

    def read(self, secret_id: str, max_age: int, refresh: bool = False) -> str:
        # Imported on first use: only the first event of an environment pays for it.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        with self._lock:
            if self._provider is None:
                self._provider = SecretsProvider(boto3_client=self._client_factory())
            try:
                raw = self._provider.get(secret_id, max_age=max_age, force_fetch=refresh)
            except GetParameterError as error:
                cause = repr(error.__cause__ or error)
                if any(code in cause for code in NOT_FOUND_OR_DENIED):
                    raise PermanentError(
                        f"cannot read the secret {secret_id!r}: {cause[:200]}"
                    ) from error
                raise RetryableError(f"could not read the secret {secret_id!r}") from error
        return raw.decode() if isinstance(raw, bytes) else str(raw or "")


class TokenSource:
    def __init__(self, secret_id: str, max_age: int, reader: SecretReader) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._reader = reader

    def get(self, refresh: bool = False) -> str:
        raw = self._reader.read(self._secret_id, self._max_age, refresh)
        try:
            return token_from_secret(raw, self._secret_id)
        except PermanentError:
            if refresh:
                raise
            # An unusable value may have been fixed since it was cached (say, just before
            # a redrive): read the secret again before failing the object for good.
            return token_from_secret(
                self._reader.read(self._secret_id, self._max_age, refresh=True), self._secret_id
            )


# What the stack puts in the token secret it creates, until someone pastes the real token.
PLACEHOLDER_TOKEN = "PASTE_YOUR_WISTIA_API_TOKEN_HERE"  # noqa: S105 - a placeholder, not a secret
# A token goes into an HTTP header: visible ASCII only, no space, no control character.
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]+")


def token_from_secret(raw: object, secret_id: str) -> str:
    """The token from a SecretString that is either the token or {"token": "..."}.

    Every problem names the secret, never its value; the token is registered for
    redaction before anything else can quote it."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    register_secret(text)
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise PermanentError(
                f"the Wistia token secret {secret_id!r} is not valid JSON"
            ) from None
        text = str(document.get("token", "")).strip() if isinstance(document, dict) else ""
        if not text:
            raise PermanentError(f'the Wistia token secret {secret_id!r} has no "token" field')
    if not text:
        raise PermanentError(f"the Wistia token secret {secret_id!r} is empty")
    register_secret(text)
    if text == PLACEHOLDER_TOKEN:
        raise PermanentError(
            f"the Wistia token secret {secret_id!r} still holds the placeholder the stack "
            "created: paste your Wistia API token into it (aws secretsmanager "
            f"put-secret-value --secret-id {secret_id} --secret-string "
            '\'{"token": "..."}\'), then redrive'
        )
    if not _TOKEN_SHAPE.fullmatch(text):
        raise PermanentError(
            f"the Wistia token secret {secret_id!r} holds a character no API token has "
            "(a space, a line break or a control character inside it): put the token alone "
            "in the secret"
        )
    return text


# What the stack puts in the webhook secret it creates, until someone pastes Wistia's key.
PLACEHOLDER_WEBHOOK_KEY = "PASTE_YOUR_WISTIA_WEBHOOK_SECRET_KEY_HERE"


class WebhookKeySource:
    """The webhook's secret key (SecretString plain or {"secret_key": "..."}), cached by
    Powertools for `max_age` seconds: a rotated key is used within that time, without a
    redeploy, and the old one stops working."""

    def __init__(self, secret_id: str, max_age: int, reader: SecretReader) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._reader = reader

    def get(self, refresh: bool = False) -> str:
        return webhook_key_from_secret(
            self._reader.read(self._secret_id, self._max_age, refresh), self._secret_id
        )


def webhook_key_from_secret(raw: object, secret_id: str) -> str:
    """The secret key from a SecretString that is the key or {"secret_key": "..."}. The
    placeholder is refused: anyone who read the template could sign with it."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    register_secret(text)
    text = text.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError:
            raise PermanentError(f"the webhook secret {secret_id!r} is not valid JSON") from None
        value = document.get("secret_key", "") if isinstance(document, dict) else ""
        text = str(value).strip()
        if not text:
            raise PermanentError(f'the webhook secret {secret_id!r} has no "secret_key" field')
    if not text:
        raise PermanentError(f"the webhook secret {secret_id!r} is empty")
    register_secret(text)
    if text == PLACEHOLDER_WEBHOOK_KEY:
        raise PermanentError(
            f"the webhook secret {secret_id!r} still holds the placeholder the stack created: "
            "paste the secret key of Wistia's webhook (Account Settings > Webhooks) into it"
        )
    return text


class SigningKeys:
    """An S3 client that signs with an IAM user's long-term keys kept in a secret.

    A role's temporary credentials die within hours, and every URL they signed with them;
    an IAM user's keys sign URLs that live up to 7 days. The client is rebuilt when the
    keys in the secret change.
    """

    def __init__(
        self,
        secret_id: str,
        max_age: int,
        reader: SecretReader,
        make_client: Callable[[str, str], Any],
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._reader = reader
        self._make_client = make_client
        self._lock = threading.Lock()
        self._keys: tuple[str, str] | None = None
        self._client: Any = None

    def client(self) -> Any:
        keys = signing_keys_from_secret(
            self._reader.read(self._secret_id, self._max_age), self._secret_id
        )
        with self._lock:
            if keys != self._keys:
                self._client = self._make_client(*keys)
                self._keys = keys
            return self._client


def signing_keys_from_secret(raw: str, secret_id: str) -> tuple[str, str]:
    register_secret(raw)
    try:
        document = json.loads(raw)
        keys = (str(document["access_key_id"]).strip(), str(document["secret_access_key"]).strip())
    except (ValueError, TypeError, KeyError):
        raise PermanentError(
            f"the signing secret {secret_id!r} must be JSON with access_key_id and "
            "secret_access_key"
        ) from None
    if not all(keys):
        raise PermanentError(f"the signing secret {secret_id!r} has an empty key")
    register_secret(keys[1])
    return keys
