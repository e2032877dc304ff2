"""The Wistia API token, from Secrets Manager through Powertools parameters.

Powertools caches the secret for `max_age` seconds, so a rotated token is picked up
without a redeploy; after a 401 the import reads it once more with force_fetch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from importer.errors import PermanentError, RetryableError

NOT_FOUND_OR_DENIED = ("ResourceNotFoundException", "AccessDeniedException", "DecryptionFailure")


class TokenSource:
    def __init__(self, secret_id: str, max_age: int, client_factory: Callable[[], Any]) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        self._client_factory = client_factory
        self._provider: Any = None
        # One reader at a time: concurrent records share one fetch instead of racing.
        self._lock = threading.Lock()

    def get(self, refresh: bool = False) -> str:
        # Imported on first use: only the first event of an environment pays for it.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        with self._lock:
            if self._provider is None:
                self._provider = SecretsProvider(boto3_client=self._client_factory())
            try:
                raw = self._provider.get(
                    self._secret_id, max_age=self._max_age, force_fetch=refresh
                )
            except GetParameterError as error:
                cause = repr(error.__cause__ or error)
                if any(code in cause for code in NOT_FOUND_OR_DENIED):
                    raise PermanentError(
                        f"cannot read the Wistia token secret {self._secret_id!r}: {cause[:200]}"
                    ) from error
                raise RetryableError("could not read the Wistia token secret") from error
        return token_from_secret(raw, self._secret_id)


def token_from_secret(raw: object, secret_id: str) -> str:
    """The token from a SecretString that is either the token or {"token": "..."}."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
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
    return text
