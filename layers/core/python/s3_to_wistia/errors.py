"""The project's few exceptions. Adapters turn their own failures into these."""

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


class UnsupportedEvent(ValueError):
    """The event is not one this function accepts."""
