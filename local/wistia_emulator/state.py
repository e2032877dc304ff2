"""The emulated Wistia account: its medias, projects, tokens, limits, faults and request log.

One condition variable (`Account.lock`) guards all of it. Methods hand out JSON-ready
copies, never the live objects, so callers need no lock.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wistia_emulator.faults import Fault, FaultBook
from wistia_emulator.ratelimit import SlidingWindowRateLimiter

MEDIA_STATUSES = ("queued", "processing", "ready", "failed")
UNSETTLED_STATUSES = frozenset({"queued", "processing"})
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


def redact(params: dict[str, str]) -> dict[str, str]:
    """A copy with credentials masked, for the request log."""
    return {k: ("[redacted]" if k in SECRET_PARAMETERS else v) for k, v in params.items()}


class UploadRejected(Exception):
    """The Upload API answers 400 with this message."""


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

    def _thumbnail(self) -> dict[str, Any]:
        return {"url": self.thumbnail_url, "width": 100, "height": 60}


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


class Account:
    """One Wistia account. Every public method takes the lock; none returns live state."""

    def __init__(
        self,
        tokens: Iterable[str],
        video_limit: int | None,
        rate_limit: int | None,
        rate_window: float,
        thumbnail_base: str = "http://127.0.0.1/",
    ) -> None:
        self.lock = threading.Condition()
        self._tokens = frozenset(tokens)
        self._video_limit = video_limit
        self._limiter = SlidingWindowRateLimiter(rate_limit, rate_window)
        self._faults = FaultBook()
        self._medias: dict[str, Media] = {}
        self._projects: dict[str, Project] = {}
        self._requests: list[RequestRecord] = []
        self._next_media_id = 1_000_001
        self._next_project_id = 100_001
        self.thumbnail_base = thumbnail_base

    # --- configuration -------------------------------------------------------------------

    def set_tokens(self, tokens: Iterable[str]) -> None:
        with self.lock:
            self._tokens = frozenset(tokens)

    def accepts(self, token: str | None) -> bool:
        with self.lock:
            return token is not None and token in self._tokens

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
        """Forget medias, projects, requests, faults and rate-limit history; keep config."""
        with self.lock:
            self._medias.clear()
            self._projects.clear()
            self._requests.clear()
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
            if self._video_limit is not None and self._live_media_count() >= self._video_limit:
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
                thumbnail_url=f"{self.thumbnail_base}deliveries/{secrets.token_hex(20)}.jpg"
                "?image_crop_resized=100x60",
                bytes=draft.bytes,
                sha256=draft.sha256,
            )
            self._next_media_id += 1
            self._medias[hashed_id] = media
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
            media.status = status
            for name, value in details.items():
                setattr(media, name, value)
            media.updated_at = time.time()
            self.lock.notify_all()
            return True

    def media_json(self, hashed_id: str) -> dict[str, Any] | None:
        with self.lock:
            media = self._medias.get(hashed_id)
            if media is None or media.deleted:
                return None
            return media.data_api_json()

    def delete_media(self, hashed_id: str) -> dict[str, Any] | None:
        with self.lock:
            media = self._medias.get(hashed_id)
            if media is None or media.deleted:
                return None
            media.deleted = True
            media.updated_at = time.time()
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
    ) -> list[dict[str, Any]]:
        with self.lock:
            medias = [m for m in self._medias.values() if not m.deleted]
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
                if not media.deleted:
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

    def wait_until_settled(self, timeout: float) -> bool:
        """True once no media is queued or processing; False if `timeout` passes first."""
        with self.lock:
            return self.lock.wait_for(
                lambda: all(m.status not in UNSETTLED_STATUSES for m in self._medias.values()),
                timeout=timeout,
            )

    # --- internals (lock held) -------------------------------------------------------------

    def _live_media_count(self) -> int:
        return sum(1 for m in self._medias.values() if not m.deleted)

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
    def _new_hashed_id(taken: dict[str, Any]) -> str:
        while True:
            candidate = "".join(secrets.choice(_HASHED_ID_ALPHABET) for _ in range(10))
            if candidate not in taken:
                return candidate


def _uploads_project_name() -> str:
    return "Uploads_" + datetime.now(UTC).strftime("%Y-%m-%d")
