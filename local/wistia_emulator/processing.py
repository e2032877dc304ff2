"""What happens after Wistia answers 200: the media moves queued -> processing -> ready
or failed, in the background, like the real service.

Imports fetch their URL with a small pool of worker threads (2,000 imports do not start
2,000 threads). State changes wait `processing_delay` on one scheduler thread, so waiting
never holds a worker. A fetched or uploaded file whose first bytes are not an audio or
video container ends `failed`, as a file Wistia cannot transcode does. Background jobs
(swap, archive) finish `processing_delay` after they are queued.
"""

from __future__ import annotations

import builtins
import hashlib
import heapq
import itertools
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import urllib3

from wistia_emulator.loopback import is_loopback_host, route_localhost_names
from wistia_emulator.multipart import CHUNK_SIZE, StoredFile
from wistia_emulator.sniff import HEAD_BYTES, container_of
from wistia_emulator.state import Account

__all__ = ["MediaProcessor", "is_loopback_host"]

logger = logging.getLogger("wistia_emulator")

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
ERROR_BODY_PREVIEW = 300  # characters of a refusal's body kept in the media's error
REMOTE_FETCH_DISABLED = "remote fetch disabled in the emulator (only loopback URLs are fetched)"
MISSING_EXTENSION = "The file URL must end in the correct file extension, for example .mp4"
NOT_MEDIA = "the file is not audio or video Wistia can process"


def has_file_extension(url: str) -> bool:
    last_segment = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    stem, dot, extension = last_segment.rpartition(".")
    return bool(dot and stem and extension.isalnum())


class Scheduler:
    """Runs short callbacks at their due time on one daemon thread."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wakeup = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="wistia-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopped = True
            self._due.clear()
            self._wakeup.notify()

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        with self._wakeup:
            if not self._stopped:
                heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), callback))
                self._wakeup.notify()

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopped and (not self._due or self._due[0][0] > time.monotonic()):
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wakeup.wait(timeout)
                if self._stopped:
                    return
                _, _, callback = heapq.heappop(self._due)
            try:
                callback()
            except Exception:
                logger.exception("a scheduled media update failed")


class WorkerPool:
    """A fixed number of daemon threads taking jobs from a queue."""

    def __init__(self, size: int) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"wistia-import-{n}", daemon=True)
            for n in range(size)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:
                logger.exception("an import job failed")


@dataclass
class FetchOutcome:
    bytes: int = 0
    sha256: str | None = None
    error: str | None = None  # None: the source answered 200 with a body
    head: builtins.bytes = b""  # the first bytes, to tell whether the file is media


class UrlFetcher:
    """GETs an import URL as Wistia would, from loopback only, into a temp file it deletes."""

    def __init__(self, data_dir: str, stopping: threading.Event) -> None:
        self._data_dir = data_dir
        self._stopping = stopping
        self._http = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(connect=5.0, read=30.0)
        )

    def fetch(self, url: str) -> FetchOutcome:
        try:
            return self._fetch(url)
        except (urllib3.exceptions.HTTPError, ValueError, OSError) as error:
            return FetchOutcome(error=f"could not fetch the file: {error}")

    def _fetch(self, url: str) -> FetchOutcome:
        for _ in range(MAX_REDIRECTS + 1):
            host = urlsplit(url).hostname or ""
            if not is_loopback_host(host):
                return FetchOutcome(error=REMOTE_FETCH_DISABLED)
            target, headers = route_localhost_names(url)
            response = self._http.request(
                "GET", target, headers=headers, preload_content=False, redirect=False
            )
            try:
                location = response.headers.get("Location")
                if response.status in REDIRECT_STATUSES and location:
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    preview = response.read(4 * ERROR_BODY_PREVIEW).decode("utf-8", "replace")
                    preview = " ".join(preview.split())[:ERROR_BODY_PREVIEW]
                    return FetchOutcome(
                        error=f"the file URL answered HTTP {response.status}: {preview}"
                    )
                return self._save(response)
            finally:
                # Closed, not drained: an unread body (a refusal, a stop) is not worth reading,
                # and a half-read connection must not go back to the pool.
                response.close()
                response.release_conn()
        return FetchOutcome(error=f"more than {MAX_REDIRECTS} redirects")

    def _save(self, response: urllib3.BaseHTTPResponse) -> FetchOutcome:
        digest = hashlib.sha256()
        size = 0
        head = bytearray()
        # Streamed to disk like a real import, so memory stays flat whatever the size.
        with tempfile.NamedTemporaryFile(dir=self._data_dir, prefix="import-") as sink:
            for chunk in response.stream(CHUNK_SIZE):
                if self._stopping.is_set():
                    return FetchOutcome(bytes=size, error="the emulator stopped during the fetch")
                digest.update(chunk)
                size += len(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                sink.write(chunk)
        if size == 0:
            return FetchOutcome(error="the file URL answered HTTP 200 with an empty body")
        return FetchOutcome(bytes=size, sha256=digest.hexdigest(), head=bytes(head))


def read_head(path: str) -> bytes:
    with open(path, "rb") as stream:
        return stream.read(HEAD_BYTES)


class MediaProcessor:
    """Moves medias through their statuses in the background."""

    def __init__(self, account: Account, data_dir: str, delay: float, workers: int) -> None:
        self._account = account
        self._delay = delay
        self._stopping = threading.Event()
        self._scheduler = Scheduler()
        self._pool = WorkerPool(workers)
        self._fetcher = UrlFetcher(data_dir, self._stopping)

    def start(self) -> None:
        self._scheduler.start()
        self._pool.start()

    def stop(self) -> None:
        self._stopping.set()
        self._scheduler.stop()
        self._pool.stop()

    def process_upload(self, hashed_id: str, stored: StoredFile) -> None:
        """An upload arrives `processing`; after a delay it is ready, or failed when empty or
        not media."""

        def finish() -> None:
            try:
                head = read_head(stored.path)
            finally:
                stored.delete()  # size and sha256 were counted on the way in
            if stored.size == 0:
                self._account.update_media(hashed_id, "failed", error="the uploaded file is empty")
            elif problem := self._not_media(head):
                self._account.update_media(hashed_id, "failed", error=problem)
            else:
                self._account.update_media(hashed_id, "ready")

        self._scheduler.call_later(self._delay, finish)

    def run_job_later(self, job_id: int) -> None:
        """A swap or archive job runs after the processing delay, like Wistia's background
        jobs."""
        self._scheduler.call_later(self._delay, lambda: self._account.run_job(job_id))

    def process_import(self, hashed_id: str, url: str) -> None:
        """An import is `queued` until a worker takes it, `processing` while it fetches."""

        def fetch() -> None:
            if not self._account.update_media(hashed_id, "processing"):
                return  # forgotten by reset()
            if has_file_extension(url):
                outcome = self._fetcher.fetch(url)
            else:
                outcome = FetchOutcome(error=MISSING_EXTENSION)
            self._scheduler.call_later(self._delay, lambda: self._finish_import(hashed_id, outcome))

        self._scheduler.call_later(self._delay, lambda: self._pool.submit(fetch))

    def _not_media(self, head: bytes) -> str | None:
        """Why the file is not media Wistia can process, or None when it is (or not asked)."""
        if not self._account.sniffs_media or container_of(head) is not None:
            return None
        return f"{NOT_MEDIA} (it starts with {head[:16]!r})"

    def _finish_import(self, hashed_id: str, outcome: FetchOutcome) -> None:
        if outcome.error is None and (problem := self._not_media(outcome.head)):
            # Fetched whole, then refused by the transcoder.
            logger.info("import %s failed: %s", hashed_id, problem)
            self._account.update_media(
                hashed_id, "failed", bytes=outcome.bytes, sha256=outcome.sha256, error=problem
            )
        elif outcome.error is None:
            self._account.update_media(
                hashed_id, "ready", bytes=outcome.bytes, sha256=outcome.sha256
            )
        else:
            logger.info("import %s failed: %s", hashed_id, outcome.error)
            self._account.update_media(
                hashed_id, "failed", bytes=outcome.bytes, error=outcome.error
            )
