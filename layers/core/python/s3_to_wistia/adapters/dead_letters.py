"""SQS: the dead-letter queue that keeps every object the function could not import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from s3_to_wistia.contracts import DeadLetterMessage
from s3_to_wistia.errors import RetryableError

if TYPE_CHECKING:
    from s3_to_wistia.redrive import DeadLetter

# Long enough for one message's invocation (Lambda's longest timeout is 900 s): a message
# read in a redrive is not read again by it. Those left in the queue are released at the end.
REDRIVE_VISIBILITY_SECONDS = 960


class DeadLetters:
    def __init__(self, sqs_client_factory: Callable[[], Any], queue_url: str) -> None:
        # Only failures send here, so the client is created on first use, not at cold start.
        self._client_factory = sqs_client_factory
        self._queue_url = queue_url

    def send(self, message: DeadLetterMessage) -> None:
        try:
            self._client_factory().send_message(
                QueueUrl=self._queue_url, MessageBody=message.to_json()
            )
        except (ClientError, BotoCoreError) as error:
            # The queue is the last place an object can go: if it is unreachable the
            # invocation must fail so Lambda keeps the event.
            raise RetryableError(f"could not write to the dead-letter queue: {error}") from error


class DeadLetterQueue:
    """The queue as the redrive reads it: each message once per run, deleted or left."""

    def __init__(self, sqs_client: Any, queue_url: str, wait_seconds: int = 2) -> None:
        self._sqs = sqs_client
        self.url = queue_url
        self._wait_seconds = wait_seconds
        self._seen: set[str] = set()
        self._held: dict[str, str] = {}

    def messages(self) -> Iterator[dict[str, Any]]:
        """Every message in the queue, once, until no message is left to read."""
        while True:
            answer = self._sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=REDRIVE_VISIBILITY_SECONDS,
                WaitTimeSeconds=self._wait_seconds,
                MessageAttributeNames=["All"],
            )
            received = answer.get("Messages", [])
            if not received:
                return
            fresh = []
            for message in received:
                if message["MessageId"] in self._seen:
                    # Visible again after a long run: not read twice, but only the latest
                    # receipt handle can release or delete it.
                    if message["MessageId"] in self._held:
                        self._held[message["MessageId"]] = message["ReceiptHandle"]
                    continue
                self._seen.add(message["MessageId"])
                # Held until deleted; released (visible again) at the end of the run, also
                # when the run stops before handling it.
                self._held[message["MessageId"]] = message["ReceiptHandle"]
                fresh.append(message)
            yield from fresh

    def delete(self, letter: DeadLetter) -> None:
        handle = self._held.pop(letter.message_id, letter.receipt_handle)
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=handle)

    def release(self) -> None:
        """Make every message read and left in the queue visible again at once."""
        handles = list(self._held.values())
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for n, handle in enumerate(handles[start : start + 10])
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
        self._held.clear()
