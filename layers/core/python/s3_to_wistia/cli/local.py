"""The local stack as `--local` finds it, written by the programs that start one.

`make run` stops its stack when it ends; `make local` keeps the same stack up until Ctrl-C.
Each writes two files into its own folder under .local/ (run/ and live/):

- `stack.json` while the stack is up: its moto endpoint, the Wistia emulator's URL, the
  resources' names, the import function's environment, and the pid of the process that
  serves it; removed when that process stops the stack;
- `snapshot.json` when the stack stops: every import record, dead letter and Wistia media
  it held, so the run can still be read once nothing is left running.

`--local` then reads, in this order: a stack that is up (its process alive and its endpoint
answering), else the newest snapshot (read-only: only `status` reads one). This module is
the one writer and reader of both files (plain JSON, no click or rich), so `make run`,
`make local` and the CLI cannot disagree on them. S3_TO_WISTIA_LOCAL_DIR names another
folder than the checkout's .local/ (tests use it).

The files hold names, URLs and the local stack's fixed, well-known test keys (moto accepts
them; they open nothing outside this machine), never a Wistia token: that stays in the
local stack's token secret, read as the function reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOCAL_DIR_ENV = "S3_TO_WISTIA_LOCAL_DIR"
# The repository, when the CLI runs from a checkout.
REPOSITORY = Path(__file__).resolve().parents[5]
DESCRIPTION = "stack.json"
SNAPSHOT = "snapshot.json"
# make local's folder first: a stack it keeps up is the one to work on.
FOLDERS = ("live", "run")
STACK_FORMAT = "s3-to-wistia local stack 1"
SNAPSHOT_FORMAT = "s3-to-wistia local snapshot 1"
CONNECT_SECONDS = 0.5


@dataclass(frozen=True)
class LocalStack:
    """One local stack: where it listens and what it holds."""

    started_by: str  # "make local" or "make run"
    pid: int
    started_at: str
    endpoint_url: str  # moto's server
    region: str
    access_key_id: str  # the local stack's fixed test keys, which its presigned-URL check trusts
    secret_access_key: str
    # Resource name (cli/resources.py) -> its value: bucket, table, queue_url, token_secret, ...
    resources: dict[str, str]
    # The import function's environment as the template sets it, pointed at the emulator.
    function_environment: dict[str, str]
    function_timeout: float = 60.0
    path: Path | None = field(default=None, compare=False)

    def to_json(self) -> str:
        document = {"format": STACK_FORMAT, **asdict(self)}
        del document["path"]
        return json.dumps(document, indent=2)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], path: Path | None = None) -> LocalStack:
        if document.get("format") != STACK_FORMAT:
            raise ValueError(f"not a {STACK_FORMAT!r} description")
        known = {name for name in cls.__dataclass_fields__ if name != "path"}
        return cls(**{k: v for k, v in document.items() if k in known}, path=path)

    @property
    def is_up(self) -> bool:
        """Its process is alive and moto answers on its port."""
        return _process_alive(self.pid) and _port_open(self.endpoint_url)


@dataclass(frozen=True)
class Snapshot:
    """What a local stack held when it stopped."""

    taken_at: str
    stack: LocalStack
    records: list[dict[str, Any]]  # the items, as boto3 deserialises them
    dead_letters: list[dict[str, Any]]  # the messages' bodies, parsed
    medias: dict[str, dict[str, Any]]  # hashed id -> the Data API's media
    path: Path | None = field(default=None, compare=False)

    def to_json(self) -> str:
        document = {
            "format": SNAPSHOT_FORMAT,
            "taken_at": self.taken_at,
            "stack": json.loads(self.stack.to_json()),
            "records": self.records,
            "dead_letters": self.dead_letters,
            "medias": self.medias,
        }
        return json.dumps(document, indent=2, default=_plain, ensure_ascii=False)

    @classmethod
    def from_document(cls, document: Mapping[str, Any], path: Path | None = None) -> Snapshot:
        if document.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a {SNAPSHOT_FORMAT!r} file")
        return cls(
            taken_at=str(document.get("taken_at", "")),
            stack=LocalStack.from_document(document["stack"]),
            records=list(document.get("records") or []),
            dead_letters=list(document.get("dead_letters") or []),
            medias=dict(document.get("medias") or {}),
            path=path,
        )


# --- where the files are -------------------------------------------------------------------


def local_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The .local folders to look in: $S3_TO_WISTIA_LOCAL_DIR alone when set, else the
    current directory's and the checkout's."""
    environ = os.environ if environ is None else environ
    given = environ.get(LOCAL_DIR_ENV, "").strip()
    if given:
        return [Path(given)]
    found: list[Path] = []
    for directory in (Path.cwd() / ".local", REPOSITORY / ".local"):
        if directory.resolve() not in [d.resolve() for d in found]:
            found.append(directory)
    return found


def local_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where make run and make local write: $S3_TO_WISTIA_LOCAL_DIR, else the checkout's."""
    environ = os.environ if environ is None else environ
    given = environ.get(LOCAL_DIR_ENV, "").strip()
    return Path(given) if given else REPOSITORY / ".local"


# --- reading -------------------------------------------------------------------------------


def running_stack(environ: Mapping[str, str] | None = None) -> LocalStack | None:
    """The local stack that is up now, if any (make local's first)."""
    for path in _candidates(environ, DESCRIPTION):
        try:
            stack = LocalStack.from_document(_read(path), path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if stack.is_up:
            return stack
    return None


def newest_snapshot(environ: Mapping[str, str] | None = None) -> Snapshot | None:
    """The snapshot the latest stopped stack left."""
    snapshots = []
    for path in _candidates(environ, SNAPSHOT):
        try:
            snapshots.append(Snapshot.from_document(_read(path), path))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return max(snapshots, key=lambda snapshot: snapshot.taken_at, default=None)


def _candidates(environ: Mapping[str, str] | None, name: str) -> list[Path]:
    return [
        directory / folder / name
        for directory in local_dirs(environ)
        for folder in FOLDERS
        if (directory / folder / name).is_file()
    ]


def _read(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a JSON object")
    return document


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        return False
    try:
        with socket.create_connection((parts.hostname, parts.port), CONNECT_SECONDS):
            return True
    except OSError:
        return False


# --- writing (make run, make local) --------------------------------------------------------


def write_description(folder: Path, stack: LocalStack) -> Path:
    return _write(folder / DESCRIPTION, stack.to_json())


def remove_description(folder: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (folder / DESCRIPTION).unlink()


def write_snapshot(folder: Path, snapshot: Snapshot) -> Path:
    return _write(folder / SNAPSHOT, snapshot.to_json())


def _write(path: Path, text: str) -> Path:
    """Whole or not at all: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def function_resources(
    *,
    bucket: str,
    table: str,
    queue_url: str,
    token_secret: str,
    wistia_url: str,
    extra: Sequence[tuple[str, str]] = (),
) -> dict[str, str]:
    """The resources of a local stack, by the CLI's resource names."""
    return {
        "bucket": bucket,
        "table": table,
        "queue_url": queue_url,
        "token_secret": token_secret,
        "function": "ImportFunction",
        "upload_url": wistia_url,
        "api_url": wistia_url,
        **dict(extra),
    }
