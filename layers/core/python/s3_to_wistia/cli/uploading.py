"""Uploading local files through the Upload API's multipart file upload, with retries.

Each try streams the file from disk again (adapters/multipart.py), so memory holds one
chunk whatever the size. 429 and 5xx answers and connection failures are retried with
full-jitter exponential backoff, never sooner than Wistia's Retry-After, a bounded
number of times; a Retry-After longer than `RetryPolicy.longest_wait` gives up instead
of hanging the operator's terminal.

Wistia has no idempotency key: when the answer to a try is lost after the whole file was
sent, Wistia may have created the media, and sending the file again may create a second
one. The upload is retried anyway (the operator asked for the file to be in Wistia), and
the outcome says `possible_duplicate` so the operator can check.
"""

from __future__ import annotations

import os
import random
import stat
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import urllib3

from s3_to_wistia.adapters.multipart import MultipartFile, SourceFileError
from s3_to_wistia.adapters.wistia import WistiaClient, WistiaUnreachable
from s3_to_wistia.budget import CLI, pause_if_told
from s3_to_wistia.cli.output import ProgressTask
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.rules import MAX_NAME_LENGTH, judge, retry_delay

if TYPE_CHECKING:
    from s3_to_wistia.ports import RateBudget

# Sending can take long for a big file; after its last byte Wistia may take a while to
# answer. A try that times out may still have created the media, so wait generously.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 600.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    longest_wait: float = 120.0  # the longest Retry-After honoured
    base_delay: float = 0.5
    max_delay: float = 20.0


@dataclass(frozen=True)
class LocalFile:
    """A file checked for upload: a regular, readable, non-empty file."""

    path: str
    size: int
    name: str  # the media's name in Wistia


@dataclass
class UploadOutcome:
    file: str
    name: str
    bytes: int
    hashed_id: str | None = None
    media_id: int | None = None
    type: str | None = None
    attempts: int = 0
    # The answer to an earlier try was lost after the whole file was sent: Wistia may hold
    # the file twice now.
    possible_duplicate: bool = False
    error: str | None = None
    http_status: int | None = None
    # A refusal that the next files would get too (token, plan, video limit): stop the run.
    stops_run: bool = False

    @property
    def ok(self) -> bool:
        return self.hashed_id is not None

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        del document["stops_run"]
        return document


def check_file(path: str, name: str | None = None) -> LocalFile:
    """The file as it will be uploaded; ValueError saying why it cannot be."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path}: is a directory; give the files in it instead")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file")
    if info.st_size == 0:
        raise ValueError(f"{path}: the file is empty; Wistia cannot process an empty file")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    media_name = name if name is not None else os.path.basename(path)
    return LocalFile(path=path, size=info.st_size, name=media_name[:MAX_NAME_LENGTH])


@dataclass(frozen=True)
class _Retry:
    """A try that failed in a way a later try may not."""

    reason: str
    lost_after_sending: bool = False  # the whole file went out before the answer was lost
    retry_after: float | None = None  # seconds Wistia asked to wait


class Uploader:
    """Uploads one file at a time to Wistia, retrying what may succeed later."""

    def __init__(
        self,
        wistia: WistiaClient,
        token: str,
        token_secret: str,
        policy: RetryPolicy = RetryPolicy(),
        warn: Callable[[str], None] = lambda message: None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        budget: RateBudget | None = None,
    ) -> None:
        # The account's request budget (the stack's, when there is one): each try books a
        # slot as the command line, and a 429 or 503 with Retry-After pauses it for all.
        self._budget = budget
        self._wistia = wistia
        self._token = token
        self._token_secret = token_secret
        self._policy = policy
        self._warn = warn
        self._sleep = sleep
        self._jitter = jitter
        self._timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)

    def upload(
        self, file: LocalFile, project_id: str | None, progress: ProgressTask
    ) -> UploadOutcome:
        fields = {"name": file.name}
        if project_id:
            fields["project_id"] = project_id
        outcome = UploadOutcome(file=file.path, name=file.name, bytes=file.size)
        for attempt in range(1, self._policy.max_attempts + 1):
            outcome.attempts = attempt
            if not self._slot(outcome):
                return outcome
            retry = self._try(file, fields, outcome, progress)
            if retry is None or self._gives_up(outcome, retry, attempt):
                return outcome
            self._wait(file, outcome, retry, attempt)
        raise AssertionError("the loop returns on its last attempt")

    def _slot(self, outcome: UploadOutcome) -> bool:
        """Wait for this try's slot in the account's request budget (False, with the
        outcome's error, when none comes within the longest wait)."""
        if self._budget is None:
            return True
        try:
            if self._budget.take(CLI, time.time() + self._policy.longest_wait):
                return True
        except RetryableError as error:
            outcome.error = f"{error}; not uploaded"
            return False
        outcome.error = (
            f"the account's request budget had no slot for {self._policy.longest_wait:.0f} s "
            "(the functions are using it all): try later"
        )
        return False

    def _try(
        self,
        file: LocalFile,
        fields: dict[str, str],
        outcome: UploadOutcome,
        progress: ProgressTask,
    ) -> _Retry | None:
        """One try, streamed from disk afresh: what to retry, or None once the outcome is
        final (accepted, refused, or the file could not be read)."""
        body = MultipartFile(file.path, os.path.basename(file.path), file.size, fields=fields)
        progress.restart()
        try:
            answer = self._wistia.upload_file(body, self._token, progress.advance, self._timeout)
        except SourceFileError as error:
            outcome.error = f"{error}; not uploaded"
            return None
        except WistiaUnreachable as error:
            reason = f"{error.reason} (check your network and --upload-url)"
            return _Retry(reason, lost_after_sending=body.sent_everything)
        verdict = judge(answer)
        if verdict.accepted:
            self._accepted(outcome, verdict.body)
            progress.finish()
            return None
        outcome.http_status = answer.status
        if not verdict.retryable:
            self._refused(outcome, answer.status, verdict.reason, verdict.video_limit)
            return None
        retry_after = pause_if_told(self._budget, answer, time.time())
        return _Retry(verdict.reason, retry_after=retry_after)

    def _gives_up(self, outcome: UploadOutcome, retry: _Retry, attempt: int) -> bool:
        """True (with the outcome's error set) when this failure is the last."""
        if attempt == self._policy.max_attempts:
            tries = "1 try" if attempt == 1 else f"{attempt} tries"
            outcome.error = f"{retry.reason}; gave up after {tries}"
            return True
        if retry.retry_after is not None and retry.retry_after > self._policy.longest_wait:
            outcome.error = (
                f"{retry.reason}, and Wistia asks to wait {retry.retry_after:.0f} s: try later"
            )
            return True
        return False

    def _wait(self, file: LocalFile, outcome: UploadOutcome, retry: _Retry, attempt: int) -> None:
        policy = self._policy
        delay = retry_delay(
            attempt, retry.retry_after, self._jitter(), policy.base_delay, policy.max_delay
        )
        self._warn(self._retry_message(file, retry.reason, attempt, delay, retry.retry_after))
        if retry.lost_after_sending:
            outcome.possible_duplicate = True
            self._warn(
                f"{file.path}: the answer was lost after the whole file was sent, so Wistia "
                "may have created the media anyway: sending it again may leave two medias "
                f"named {file.name!r} (Wistia has no way to upload exactly once)"
            )
        self._sleep(delay)

    def _retry_message(
        self, file: LocalFile, reason: str, attempt: int, delay: float, retry_after: float | None
    ) -> str:
        asked = " as Wistia asked (Retry-After)" if retry_after is not None else ""
        return (
            f"{file.path}: {reason}; try {attempt + 1} of {self._policy.max_attempts} "
            f"in {delay:.1f} s{asked}"
        )

    @staticmethod
    def _accepted(outcome: UploadOutcome, media: Any) -> None:
        outcome.hashed_id = str(media["hashed_id"])
        if media.get("id") is not None:
            outcome.media_id = int(media["id"])
        if media.get("type"):
            outcome.type = str(media["type"])
        if media.get("name"):
            outcome.name = str(media["name"])

    def _refused(self, outcome: UploadOutcome, status: int, reason: str, video_limit: bool) -> None:
        outcome.stops_run = status in (401, 403) or video_limit
        if status == 401:
            outcome.error = (
                f"Wistia rejected the API token in the secret {self._token_secret!r} (401): "
                "put a valid token with upload permission in it"
            )
        elif video_limit:
            outcome.error = f"{reason}: delete medias or raise the account's limit, then retry"
        else:
            outcome.error = reason
