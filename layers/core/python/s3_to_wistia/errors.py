"""Every exception the core catches. Adapters raise these (`raise ... from` their own error),
so the core never sees a botocore or urllib3 exception and depends on no adapter."""

from __future__ import annotations


class ImporterError(Exception):
    """Base class; not raised itself."""


class RetryableError(ImporterError):
    """May succeed later: the event must come back (Lambda retry or SQS redelivery)."""


class PermanentError(ImporterError):
    """Retrying cannot fix it: the object goes to the dead-letter queue."""

    def __init__(self, reason: str, http_status: int | None = None, wistia_error: object = None):
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status
        self.wistia_error = wistia_error


class ClaimedElsewhere(RetryableError):
    """Another invocation is importing this object version right now."""


class AlreadyHandled(ImporterError):
    """Another delivery of this object version already finished it."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class ObjectGone(ImporterError):
    """The object version named by the event is no longer in the bucket (or was replaced)."""


class WistiaUnreachable(ImporterError):
    """No answer from Wistia.

    `maybe_received` is True when the request may have reached Wistia (the connection
    dropped or timed out after sending): Wistia may have created the media anyway.
    `still_working` is True after a timeout: Wistia had the whole request and may still be
    creating the media.
    """

    def __init__(self, reason: str, maybe_received: bool, still_working: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_received = maybe_received
        self.still_working = still_working


class UnsupportedEvent(ValueError):
    """The event is not one this function accepts."""


class NotAWebhook(ValueError):
    """A correctly signed body that is not a Wistia webhook body (not JSON, no `events`, an
    event without what its type needs): answered 400, nothing changes."""
