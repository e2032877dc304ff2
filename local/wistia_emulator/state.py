"""The emulated Wistia account: its medias, projects, tokens, limits, faults, background jobs
and request log.

One condition variable (`Account.lock`) guards all of it. Methods hand out JSON-ready
copies, never the live objects, so callers need no lock. Every change a webhook reports
hands an event to the account's event sink while the lock is held, so an event is queued
before anyone can see the change it reports.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wistia_emulator.faults import Fault, FaultBook
from wistia_emulator.ratelimit import SlidingWindowRateLimiter

MEDIA_STATUSES = ("queued", "processing", "ready", "failed")
UNSETTLED_STATUSES = frozenset({"queued", "processing"})
# The event a change of status sends (queued is where a media starts: media.created).
STATUS_EVENTS = {"processing": "media.processing", "ready": "media.ready", "failed": "media.failed"}
SWAPPABLE_TYPES = frozenset({"Video", "Audio"})
MAX_BULK_IDS = 100  # hashed_ids[] in a list, hashed_ids in an archive
# An API token's permission level. Wistia's labels: "Upload media" (upload), "Read all data"
# (read), "Read, update & delete anything" (full). A plain token string gets full rights.
TOKEN_RIGHTS = ("upload", "read", "full")
PERMITS = {
    "upload": frozenset({"upload"}),
    "read": frozenset({"read"}),
    "full": frozenset({"upload", "read", "write"}),
}
VIDEO_LIMIT_MESSAGE = (
    "This account has exceeded its video limit. Please upgrade to upload more videos."
)
OWNER_CONTACT_ID = 1  # Wistia files media under the account owner's contact when none is given
SECRET_PARAMETERS = frozenset({"access_token", "api_password"})
_HASHED_ID_ALPHABET = string.ascii_lowercase + string.digits

VIDEO_EXTENSIONS = frozenset(
    {
        *("mp4", "m4v", "mov", "qt", "avi", "wmv", "flv", "f4v", "mkv", "webm", "mpg", "mpeg"),
        *("mpe", "m2v", "3gp", "3g2", "ogv", "mts", "m2ts", "ts", "mxf", "vob", "dv"),
    }
)
AUDIO_EXTENSIONS = frozenset(
    {"mp3", "m4a", "aac", "wav", "aif", "aiff", "flac", "ogg", "oga", "opus", "wma"}
)


def iso8601(epoch: float) -> str:
    """Wistia's timestamp format: 2012-10-26T16:47:09+00:00."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def media_type(filename: str, content_type: str | None = None) -> str:
    """The media type Wistia reports: Video, Audio or UnknownType (extension, then MIME)."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in VIDEO_EXTENSIONS:
        return "Video"
    if extension in AUDIO_EXTENSIONS:
        return "Audio"
    major = (content_type or "").split("/", 1)[0].lower()
    if major == "video":
        return "Video"
    if major == "audio":
        return "Audio"
    return "UnknownType"


def event_timestamp(epoch_ms: int) -> str:
    """A webhook's generated_at: ISO-8601 UTC with milliseconds, 2020-03-31T21:56:45.123Z."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def token_rights(tokens: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    """Token -> permission level. A mapping gives each token's level; plain strings are
    full-rights tokens (how every token behaved before levels existed)."""
    if isinstance(tokens, Mapping):
        table = {str(t): str(r) for t, r in tokens.items()}
    elif isinstance(tokens, str):
        raise TypeError("tokens must be a collection of tokens, not one string")
    else:
        table = {str(t): "full" for t in tokens}
    for token, rights in table.items():
        if not token:
            raise ValueError("a token cannot be empty")
        if rights not in TOKEN_RIGHTS:
            raise ValueError(f"token rights must be one of {TOKEN_RIGHTS}, not {rights!r}")
    return table


def parse_token_spec(spec: str) -> tuple[str, str]:
    """`TOKEN` or `TOKEN:RIGHTS` (the CLI's --token): the token and its permission level.
    Only a known level after the last colon is taken as one, so tokens may contain colons."""
    token, colon, rights = spec.rpartition(":")
    if colon and token and rights in TOKEN_RIGHTS:
        return token, rights
    return spec, "full"


def redact(params: dict[str, str]) -> dict[str, str]:
    """A copy with credentials masked, for the request log."""
    return {k: ("[redacted]" if k in SECRET_PARAMETERS else v) for k, v in params.items()}


class UploadRejected(Exception):
    """The Upload API answers 400 with this message."""


class ApiError(Exception):
    """A Data API call refused: answered with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Project:
    id: int
    hashed_id: str
    name: str
    created_at: float

    def snapshot(self) -> dict[str, Any]:
        return {
            "hashed_id": self.hashed_id,
            "id": self.id,
            "name": self.name,
            "created": iso8601(self.created_at),
        }


@dataclass
class MediaDraft:
    """What an accepted upload or import asks for, before it is a media."""

    name: str
    type: str
    project_hashed_id: str | None  # None: today's Uploads_YYYY-MM-DD project
    description: str = ""
    contact_id: int = OWNER_CONTACT_ID
    low_priority: bool = False
    source_url: str | None = None  # imports only
    bytes: int = 0  # uploads: known as soon as the body is read
    sha256: str | None = None


@dataclass
class Media:
    id: int
    hashed_id: str
    name: str
    type: str
    project: Project
    description: str
    contact_id: int
    low_priority: bool
    source_url: str | None
    status: str
    created_at: float
    updated_at: float
    thumbnail_url: str
    bytes: int = 0
    sha256: str | None = None
    error: str | None = None
    deleted: bool = False
    archived: bool = False

    @property
    def live(self) -> bool:
        return not self.deleted

    @property
    def progress(self) -> float:
        return {"queued": 0.0, "processing": 0.5, "ready": 1.0}.get(self.status, 0.0)

    def snapshot(self) -> dict[str, Any]:
        """Everything the emulator knows, for tests (emu.medias())."""
        return {
            "hashed_id": self.hashed_id,
            "id": self.id,
            "name": self.name,
            "project_id": self.project.hashed_id,
            "description": self.description,
            "contact_id": self.contact_id,
            "type": self.type,
            "status": self.status,
            "source_url": self.source_url,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "created": iso8601(self.created_at),
            "updated": iso8601(self.updated_at),
            "error": self.error,
            "low_priority": self.low_priority,
            "deleted": self.deleted,
            "archived": self.archived,
        }

    def upload_answer(self) -> dict[str, Any]:
        """The Upload API's 200 body: the seed's shape, no `status`, progress 0.0."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "created": iso8601(self.created_at),
            "updated": iso8601(self.updated_at),
            "duration": 0.0,
            "hashed_id": self.hashed_id,
            "progress": 0.0,
            "thumbnail": self._thumbnail(),
        }

    def data_api_json(self) -> dict[str, Any]:
        """The Data API's media object (the subset a client needs)."""
        return {
            "id": self.id,
            "hashed_id": self.hashed_id,
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "archived": self.archived,
            "progress": self.progress,
            "duration": 0.0,
            "description": self.description,
            "created": iso8601(self.created_at),
            "updated": iso8601(self.updated_at),
            "thumbnail": self._thumbnail(),
            "project": {
                "id": self.project.id,
                "name": self.project.name,
                "hashed_id": self.project.hashed_id,
            },
        }

    def webhook_json(self, base_url: str) -> dict[str, Any]:
        """`payload.media` of a webhook event: what Wistia's webhooks carry."""
        return {
            "id": self.hashed_id,
            "name": self.name,
            "url": f"{base_url}medias/{self.hashed_id}",
            "duration": 0.0,
            "thumbnail": {"url": self.thumbnail_url},
        }

    def _thumbnail(self) -> dict[str, Any]:
        return {"url": self.thumbnail_url, "width": 100, "height": 60}


@dataclass
class BackgroundJob:
    """A swap or an archive: queued when asked, finished (or failed) processing_delay later."""

    id: int
    hashed_id: str
    kind: str  # "swap" or "archive"
    created_at: float
    media_ids: list[str]  # swap: [original, replacement]; archive: the hashed ids asked
    status: str = "queued"
    finished_at: float | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed")

    def api_json(self) -> dict[str, Any]:
        """Wistia's background_job_status object."""
        return {"id": self.id, "hashed_id": self.hashed_id, "status": self.status}

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.api_json(),
            "kind": self.kind,
            "media_ids": list(self.media_ids),
            "created": iso8601(self.created_at),
            "finished": None if self.finished_at is None else iso8601(self.finished_at),
            "error": self.error,
            "result": dict(self.result),
        }


@dataclass
class RequestRecord:
    """One non-control request, as emu.requests() shows it."""

    method: str
    path: str
    query: dict[str, str]
    at: float
    auth: str | None = None
    form: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    fault: str | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": redact(self.query),
            "auth": self.auth,
            "form": redact(self.form),
            "status": self.status,
            "fault": self.fault,
            "at": self.at,
        }


EventSink = Callable[[dict[str, Any]], None]


class Account:
    """One Wistia account. Every public method takes the lock; none returns live state."""

    def __init__(
        self,
        tokens: Iterable[str] | Mapping[str, str],
        video_limit: int | None,
        rate_limit: int | None,
        rate_window: float,
        thumbnail_base: str = "http://127.0.0.1/",
        sniff_media: bool = True,
    ) -> None:
        self.lock = threading.Condition()
        self._tokens = token_rights(tokens)
        self._video_limit = video_limit
        self._limiter = SlidingWindowRateLimiter(rate_limit, rate_window)
        self._faults = FaultBook()
        self._medias: dict[str, Media] = {}
        self._projects: dict[str, Project] = {}
        self._requests: list[RequestRecord] = []
        self._jobs: dict[int, BackgroundJob] = {}
        self._swaps: list[dict[str, Any]] = []
        self._next_media_id = 1_000_001
        self._next_project_id = 100_001
        self._next_job_id = 5_000_001
        self._sniff_media = sniff_media
        self._event_sink: EventSink | None = None
        self._last_event_ms = 0
        self.account_id = self._new_hashed_id({})
        self.thumbnail_base = thumbnail_base

    # --- configuration -------------------------------------------------------------------

    def set_tokens(self, tokens: Iterable[str] | Mapping[str, str]) -> None:
        table = token_rights(tokens)
        with self.lock:
            self._tokens = table

    def rights_of(self, token: str | None) -> str | None:
        """The token's permission level, or None for an unknown (or missing) token."""
        with self.lock:
            return None if token is None else self._tokens.get(token)

    def allows(self, token: str | None, action: str) -> bool:
        """May `token` do `action` ("upload", "read" or "write")?"""
        rights = self.rights_of(token)
        return rights is not None and action in PERMITS[rights]

    def set_sniff_media(self, enabled: bool) -> None:
        with self.lock:
            self._sniff_media = enabled

    @property
    def sniffs_media(self) -> bool:
        with self.lock:
            return self._sniff_media

    def set_event_sink(self, sink: EventSink | None) -> None:
        """Where webhook events go (called with the lock held: it must only enqueue)."""
        with self.lock:
            self._event_sink = sink

    def set_video_limit(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError("video_limit cannot be negative")
        with self.lock:
            self._video_limit = limit

    def set_rate_limit(self, limit: int | None, window: float) -> None:
        with self.lock:
            self._limiter.configure(limit, window)

    def rate_limit_config(self) -> tuple[int | None, float]:
        with self.lock:
            return self._limiter.limit, self._limiter.window

    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self._faults.add(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget medias, projects, jobs, swaps, requests, faults and rate-limit history;
        keep config."""
        with self.lock:
            self._medias.clear()
            self._projects.clear()
            self._requests.clear()
            self._jobs.clear()
            self._swaps.clear()
            self._faults.clear()
            self._limiter.reset()
            self.lock.notify_all()

    # --- requests ------------------------------------------------------------------------

    def record_request(self, method: str, path: str, query: dict[str, str]) -> RequestRecord:
        record = RequestRecord(method=method, path=path, query=dict(query), at=time.time())
        with self.lock:
            self._requests.append(record)
        return record

    def update_record(self, record: RequestRecord, **changes: Any) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(record, name, value)

    def select_faults(self, method: str, path: str) -> list[Fault]:
        with self.lock:
            return self._faults.select(method, path)

    def admit(self) -> int | None:
        """Take a rate-limit slot: None when admitted, else the Retry-After seconds."""
        with self.lock:
            if self._limiter.try_acquire():
                return None
            return self._limiter.seconds_until_free()

    # --- medias and projects ---------------------------------------------------------------

    def create_media(self, draft: MediaDraft, status: str) -> dict[str, Any]:
        """Store a new media; the checks that depend on the account happen here, atomically.

        Returns the Upload API's answer for it."""
        with self.lock:
            project = self._project_for(draft.project_hashed_id)
            if self._video_limit is not None and self._counted_media() >= self._video_limit:
                raise UploadRejected(VIDEO_LIMIT_MESSAGE)
            if project is None:
                project = self._create_project(_uploads_project_name())
            now = time.time()
            hashed_id = self._new_hashed_id(self._medias)
            media = Media(
                id=self._next_media_id,
                hashed_id=hashed_id,
                name=draft.name,
                type=draft.type,
                project=project,
                description=draft.description,
                contact_id=draft.contact_id,
                low_priority=draft.low_priority,
                source_url=draft.source_url,
                status=status,
                created_at=now,
                updated_at=now,
                thumbnail_url=self._new_thumbnail_url(),
                bytes=draft.bytes,
                sha256=draft.sha256,
            )
            self._next_media_id += 1
            self._medias[hashed_id] = media
            self._emit("media.created", media)
            if status in STATUS_EVENTS:
                self._emit(STATUS_EVENTS[status], media)
            self.lock.notify_all()
            return media.upload_answer()

    def update_media(self, hashed_id: str, status: str, **details: Any) -> bool:
        """Move a media to `status` (with bytes, sha256 or error); False if it is gone."""
        if status not in MEDIA_STATUSES:
            raise ValueError(f"unknown media status {status!r}")
        with self.lock:
            media = self._medias.get(hashed_id)
            if media is None:
                return False
            changed = media.status != status
            media.status = status
            for name, value in details.items():
                setattr(media, name, value)
            media.updated_at = time.time()
            if changed and status in STATUS_EVENTS:
                self._emit(STATUS_EVENTS[status], media)
            self.lock.notify_all()
            return True

    def media_json(self, hashed_id: str) -> dict[str, Any] | None:
        with self.lock:
            media = self._live(hashed_id)
            return None if media is None else media.data_api_json()

    def delete_media(self, hashed_id: str) -> dict[str, Any] | None:
        with self.lock:
            media = self._live(hashed_id)
            if media is None:
                return None
            media.deleted = True
            media.updated_at = time.time()
            self._emit("media.deleted", media)
            self.lock.notify_all()
            return media.data_api_json()

    def list_medias(
        self,
        project_id: str | None,
        name: str | None,
        sort_by: str,
        ascending: bool,
        page: int,
        per_page: int,
        hashed_ids: list[str] | None = None,
        archived: bool | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            medias = [m for m in self._medias.values() if m.live]
            if hashed_ids is not None:
                wanted = set(hashed_ids)
                medias = [m for m in medias if m.hashed_id in wanted]
            if archived is not None:
                medias = [m for m in medias if m.archived == archived]
            if project_id is not None:
                medias = [
                    m for m in medias if project_id in (m.project.hashed_id, str(m.project.id))
                ]
            if name is not None:
                medias = [m for m in medias if m.name == name]
            sort_keys: dict[str, Any] = {
                "created": lambda m: (m.created_at, m.id),
                "updated": lambda m: (m.updated_at, m.id),
                "name": lambda m: (m.name, m.id),
            }
            medias.sort(key=sort_keys[sort_by], reverse=not ascending)
            start = (page - 1) * per_page
            return [m.data_api_json() for m in medias[start : start + per_page]]

    def list_projects(self, page: int, per_page: int) -> list[dict[str, Any]]:
        with self.lock:
            counts: dict[str, int] = {}
            for media in self._medias.values():
                if media.live:
                    counts[media.project.hashed_id] = counts.get(media.project.hashed_id, 0) + 1
            projects = sorted(self._projects.values(), key=lambda p: p.id)
            start = (page - 1) * per_page
            return [
                {**p.snapshot(), "mediaCount": counts.get(p.hashed_id, 0)}
                for p in projects[start : start + per_page]
            ]

    def create_project(self, name: str) -> dict[str, Any]:
        """A project made by hand (tests use it to upload into an explicit project_id)."""
        with self.lock:
            return self._create_project(name).snapshot()

    # --- background jobs: swap and archive -------------------------------------------------

    def start_swap(self, hashed_id: str, replacement_id: str | None) -> tuple[dict[str, Any], int]:
        """Queue a swap of `replacement_id`'s file into `hashed_id` (the Data API's answer and
        the job's id), or raise ApiError: 404 for an unknown media, 400 for a refused one."""
        with self.lock:
            original = self._live(hashed_id)
            if original is None:
                raise ApiError(404, f"Media not found: {hashed_id}")
            if not replacement_id:
                raise ApiError(400, "replacement_media_id is required")
            if replacement_id == hashed_id:
                raise ApiError(400, "A media cannot replace itself")
            replacement = self._live(replacement_id)
            if replacement is None:
                raise ApiError(404, f"Replacement media not found: {replacement_id}")
            if problem := _swap_problem(original, replacement):
                raise ApiError(400, problem)
            job = self._new_job("swap", [hashed_id, replacement_id])
            answer = {
                "message": "Media swap queued",
                "background_job_status": job.api_json(),
                "media": original.data_api_json(),
            }
            return answer, job.id

    def start_archive(self, hashed_ids: Any) -> tuple[dict[str, Any], int]:
        """Queue archiving up to 100 medias, or raise ApiError 422 (as Wistia answers)."""
        if not isinstance(hashed_ids, list) or not hashed_ids:
            raise ApiError(422, "hashed_ids must be a non-empty list of media hashed ids")
        if not all(isinstance(h, str) and h for h in hashed_ids):
            raise ApiError(422, "hashed_ids must be media hashed ids (strings)")
        if len(hashed_ids) > MAX_BULK_IDS:
            raise ApiError(422, f"Too many medias: at most {MAX_BULK_IDS} per request")
        with self.lock:
            job = self._new_job("archive", list(hashed_ids))
            answer = {"message": "Media archive queued", "background_job_status": job.api_json()}
            return answer, job.id

    def run_job(self, job_id: int) -> None:
        """Do what a queued job asked (the processor calls it processing_delay later)."""
        with self.lock:
            job = self._jobs.get(job_id)
            if job is None or job.done:
                return  # forgotten by reset()
            if job.kind == "swap":
                self._finish_swap(job)
            else:
                self._finish_archive(job)
            job.finished_at = time.time()
            self.lock.notify_all()

    def job_json(self, job_ref: str) -> dict[str, Any] | None:
        """GET background_job_status/{id}: by numeric id or hashed id."""
        with self.lock:
            for job in self._jobs.values():
                if job_ref in (str(job.id), job.hashed_id):
                    return {"background_job_status": job.api_json()}
            return None

    # --- snapshots for tests ---------------------------------------------------------------

    def medias(self) -> list[dict[str, Any]]:
        with self.lock:
            return [m.snapshot() for m in sorted(self._medias.values(), key=lambda m: m.id)]

    def projects(self) -> list[dict[str, Any]]:
        with self.lock:
            return [p.snapshot() for p in sorted(self._projects.values(), key=lambda p: p.id)]

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.snapshot() for r in self._requests]

    def jobs(self) -> list[dict[str, Any]]:
        with self.lock:
            return [j.snapshot() for j in sorted(self._jobs.values(), key=lambda j: j.id)]

    def swaps(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(s) for s in self._swaps]

    def wait_until_settled(self, timeout: float) -> bool:
        """True once no media is queued or processing and no background job is pending;
        False if `timeout` passes first."""
        with self.lock:
            return self.lock.wait_for(
                lambda: (
                    all(m.status not in UNSETTLED_STATUSES for m in self._medias.values())
                    and all(j.done for j in self._jobs.values())
                ),
                timeout=timeout,
            )

    # --- internals (lock held) -------------------------------------------------------------

    def _live(self, hashed_id: str) -> Media | None:
        media = self._medias.get(hashed_id)
        return media if media is not None and media.live else None

    def _counted_media(self) -> int:
        """Medias that take a place under the video limit: archiving frees one, as deleting."""
        return sum(1 for m in self._medias.values() if m.live and not m.archived)

    def _finish_swap(self, job: BackgroundJob) -> None:
        original_id, replacement_id = job.media_ids
        original, replacement = self._live(original_id), self._live(replacement_id)
        if original is None or replacement is None:
            job.status, job.error = "failed", "a media of the swap was deleted before it ran"
            return
        if problem := _swap_problem(original, replacement):
            job.status, job.error = "failed", problem
            return
        previous = {"bytes": original.bytes, "sha256": original.sha256}
        previous_thumbnail = original.thumbnail_url
        # The original keeps its ids, name, description and project; the file is the
        # replacement's. The replacement stays a media of its own (Wistia's docs are silent).
        original.bytes = replacement.bytes
        original.sha256 = replacement.sha256
        original.source_url = replacement.source_url
        original.thumbnail_url = replacement.thumbnail_url
        original.updated_at = time.time()
        job.status = "finished"
        job.result = {"hashed_id": original_id, "replacement_hashed_id": replacement_id}
        self._swaps.append(
            {
                "job_id": job.id,
                "hashed_id": original_id,
                "replacement_hashed_id": replacement_id,
                "bytes": original.bytes,
                "sha256": original.sha256,
                "previous_bytes": previous["bytes"],
                "previous_sha256": previous["sha256"],
                "at": original.updated_at,
            }
        )
        self._emit(
            "media.updated",
            original,
            previous_attributes={"thumbnail": {"url": previous_thumbnail}},
        )

    def _finish_archive(self, job: BackgroundJob) -> None:
        archived, not_found = [], []
        for hashed_id in job.media_ids:
            media = self._live(hashed_id)
            if media is None:
                not_found.append(hashed_id)
                continue
            if not media.archived:
                media.archived = True
                media.updated_at = time.time()
            archived.append(hashed_id)
        job.status = "finished"
        job.result = {"archived": archived, "not_found": not_found}

    def _new_job(self, kind: str, media_ids: list[str]) -> BackgroundJob:
        job = BackgroundJob(
            id=self._next_job_id,
            hashed_id=self._new_hashed_id({j.hashed_id: j for j in self._jobs.values()}),
            kind=kind,
            created_at=time.time(),
            media_ids=media_ids,
        )
        self._next_job_id += 1
        self._jobs[job.id] = job
        self.lock.notify_all()
        return job

    def _emit(self, event_type: str, media: Media, **payload: Any) -> None:
        """Hand one webhook event about `media` to the sink. A deleted media sends nothing
        more after media.deleted."""
        if self._event_sink is None:
            return
        if event_type == "media.deleted":
            body: dict[str, Any] = {"media": {"id": media.hashed_id}}
        elif media.deleted:
            return
        else:
            body = {"media": media.webhook_json(self.thumbnail_base), **payload}
        # Strictly increasing stamps: events of one account never tie, and their order is
        # the order they happened in.
        self._last_event_ms = max(int(time.time() * 1000), self._last_event_ms + 1)
        self._event_sink(
            {
                "uuid": uuid.uuid4().hex,
                "type": event_type,
                "generated_at": event_timestamp(self._last_event_ms),
                "metadata": {"account_id": self.account_id},
                "payload": body,
            }
        )

    def _new_thumbnail_url(self) -> str:
        return (
            f"{self.thumbnail_base}deliveries/{secrets.token_hex(20)}.jpg?image_crop_resized=100x60"
        )

    def _project_for(self, hashed_id: str | None) -> Project | None:
        if hashed_id is None:
            name = _uploads_project_name()
            return next((p for p in self._projects.values() if p.name == name), None)
        project = self._projects.get(hashed_id)
        if project is None:
            raise UploadRejected(f"Project not found: {hashed_id}")
        return project

    def _create_project(self, name: str) -> Project:
        project = Project(
            id=self._next_project_id,
            hashed_id=self._new_hashed_id(self._projects),
            name=name,
            created_at=time.time(),
        )
        self._next_project_id += 1
        self._projects[project.hashed_id] = project
        return project

    @staticmethod
    def _new_hashed_id(taken: Mapping[str, Any]) -> str:
        while True:
            candidate = "".join(secrets.choice(_HASHED_ID_ALPHABET) for _ in range(10))
            if candidate not in taken:
                return candidate


def _swap_problem(original: Media, replacement: Media) -> str | None:
    """Why Wistia would refuse to swap `replacement` into `original` (400), if it would."""
    if original.type != replacement.type:
        return f"Replacement media must be the same type as the original media ({original.type})."
    if original.type not in SWAPPABLE_TYPES:
        return f"Only videos and audio files can be swapped, not {original.type}."
    if replacement.status != "ready":
        return f"Replacement media must be ready (it is {replacement.status})."
    if original.status != "ready":
        return f"The original media must be ready to be replaced (it is {original.status})."
    return None


def _uploads_project_name() -> str:
    return "Uploads_" + datetime.now(UTC).strftime("%Y-%m-%d")
