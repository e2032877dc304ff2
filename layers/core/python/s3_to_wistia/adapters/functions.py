"""Lambda: the deployed import function, invoked synchronously by the operators' tools."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from s3_to_wistia.redrive import Invocation

ERROR_TEXT_CHARS = 160


class LambdaInvoker:
    """The function, invoked with an event; its answer as an Invocation."""

    def __init__(self, lambda_client: Any, function_name: str) -> None:
        self._client = lambda_client
        self._function = function_name

    def __call__(self, event: dict[str, Any]) -> Invocation:
        try:
            answer = self._client.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(event).encode(),
            )
            payload = answer["Payload"].read()
        except ReadTimeoutError as error:
            # The function may be running still: what it changes stands.
            return Invocation(ok=False, error=f"no answer from the function in time: {error}")
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            return Invocation(ok=False, error=f"{code}: {_first_line(error)}", started=False)
        except BotoCoreError as error:
            return Invocation(ok=False, error=_first_line(error), started=False)
        if not answer.get("FunctionError"):
            return Invocation(ok=True)
        try:
            failure = json.loads(payload)
            text = f"{failure.get('errorType')}: {failure.get('errorMessage')}"
        except (ValueError, AttributeError):
            text = payload.decode("utf-8", errors="replace")[:ERROR_TEXT_CHARS]
        return Invocation(ok=False, error=text)


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:ERROR_TEXT_CHARS]
