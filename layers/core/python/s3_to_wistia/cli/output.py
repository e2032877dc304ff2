"""How every subcommand talks to its user: results on stdout, everything else on stderr.

- Results (`say`, `table`) go to stdout; in `--json` mode stdout holds one JSON document
  (`result`) and nothing else, so `s3-to-wistia status --json | jq` always works.
- Notes, warnings, errors and progress bars go to stderr.
- Colours only on a terminal, and never with NO_COLOR set (rich decides, honouring
  NO_COLOR, FORCE_COLOR and TTY_COMPATIBLE); progress bars only when stderr really is a
  terminal (or TTY_INTERACTIVE=1), never in a pipe or a CI log.
- Nothing printed may hold a secret: every line passes through `scrub`, which masks the
  values registered with `hide` (the Wistia token, once read) and the signature, credential
  and token parameters of any URL (a presigned URL is a password until it expires).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

PROG = "s3-to-wistia"
HIDDEN = "[hidden]"
# Query parameters and headers that carry a credential: their values are never shown.
_SECRET_PARAMETER = re.compile(
    r"(?i)\b(X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
    r"AWSAccessKeyId|access_token|api_password|token)=[^&\s'\"<>]+"
)
_BEARER = re.compile(r"(?i)\b(Bearer)\s+[^\s'\"<>]+")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret and every URL credential parameter masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            # Whole words only: a short test token must not mangle the words around it.
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", HIDDEN, text)
    text = _SECRET_PARAMETER.sub(lambda m: f"{m.group(1)}={HIDDEN}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {HIDDEN}", text)


def to_json(document: Any) -> str:
    """JSON for scripts: DynamoDB's Decimals as numbers, times as ISO 8601, paths as text,
    dataclasses as objects."""
    return json.dumps(document, indent=2, default=_jsonable, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class ProgressTask(Protocol):
    """One progress bar: bytes (or items) done out of a known total."""

    def advance(self, amount: int) -> None: ...

    def grow(self, total: int) -> None:
        """A better estimate of the total, once known."""
        ...

    def restart(self) -> None: ...

    def finish(self) -> None: ...


class Output:
    """The two streams of one command run. Made once per run by main(); a subcommand gets
    it as its `out` argument."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self._secrets: set[str] = set()
        # No file given: rich looks sys.stdout / sys.stderr up at each print, so a test's
        # captured streams are used too.
        common: dict[str, Any] = {"highlight": False, "soft_wrap": True, "emoji": False}
        self.stdout = Console(**common)
        self.stderr = Console(stderr=True, **common)
        self._live: Progress | None = None

    # --- secrets -------------------------------------------------------------------------

    def hide(self, secret: str) -> None:
        """Never print `secret` (nor in error messages raised later in this run)."""
        if secret:
            self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    # --- results: stdout -----------------------------------------------------------------

    def say(self, text: str, style: str | None = None) -> None:
        """A result line for people; left out in --json mode (the JSON document says it)."""
        if self.json_mode:
            return
        line = Text(self.scrub(text), style=style or "")
        if self._live is not None and _isatty(self.stdout.file):
            # The bars' terminal is this one too: rich prints the line above the bars
            # instead of letting their next refresh draw over it.
            self._live.console.print(line)
        else:
            self.stdout.print(line)

    def summary(self, text: str, style: str | None = None) -> None:
        """A closing line (totals): with the results on a terminal; on stderr when stdout is
        a pipe, so what a script reads there stays rows only. Left out in --json mode."""
        if self.json_mode:
            return
        if self.stdout.is_terminal:
            self.say(text, style)
        else:
            self.stderr.print(Text(self.scrub(text), style=style or ""))

    def result(self, document: Any) -> None:
        """The command's JSON document, in --json mode only (print it once, at the end)."""
        if self.json_mode:
            self.stdout.file.write(self.scrub(to_json(document)) + "\n")
            self.stdout.file.flush()

    def table(self, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
        """Rows for people: a table on a terminal, tab-separated lines (with a header line)
        in a pipe, so `cut` and `sort` work; nothing in --json mode."""
        if self.json_mode:
            return
        cells = [[self.scrub("" if cell is None else str(cell)) for cell in row] for row in rows]
        if self.stdout.is_terminal:
            table = Table(*columns, box=None, header_style="bold", pad_edge=False)
            for row in cells:
                table.add_row(*(Text(cell) for cell in row))
            self.stdout.print(table)
            return
        for row in [list(columns), *cells]:
            self.stdout.file.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")

    # --- everything else: stderr ---------------------------------------------------------

    def note(self, text: str) -> None:
        self.stderr.print(Text(self.scrub(text), style="dim"))

    def warn(self, text: str) -> None:
        self.stderr.print(Text(f"warning: {self.scrub(text)}", style="yellow"))

    def error(self, text: str, prog: str = PROG) -> None:
        """One line: what went wrong and what to do about it."""
        self.stderr.print(Text(f"{prog}: error: {self.scrub(text)}", style="bold red"))

    @property
    def shows_progress(self) -> bool:
        forced = os.environ.get("TTY_INTERACTIVE")
        if forced is not None:
            return forced.strip().lower() in ("1", "true", "yes")
        return _isatty(self.stderr.file) and os.environ.get("TERM") != "dumb"

    @contextmanager
    def progress(self, unit: str = "bytes") -> Iterator[ProgressBars]:
        """Progress bars on stderr for the block, when stderr is a terminal; otherwise the
        same calls do nothing. `unit`: "bytes" (size, speed, time left) or "items" (done
        out of the total, time taken)."""
        if not self.shows_progress:
            yield ProgressBars(None)
            return
        columns: tuple[ProgressColumn, ...] = (
            (DownloadColumn(binary_units=True), TransferSpeedColumn(), TimeRemainingColumn())
            if unit == "bytes"
            else (MofNCompleteColumn(), TimeElapsedColumn())
        )
        bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            *columns,
            console=self.stderr,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        with bars:
            self._live = bars
            try:
                yield ProgressBars(bars)
            finally:
                self._live = None


def _isatty(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class ProgressBars:
    """Adds bars to a rich Progress, or does nothing when there is none."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    def task(self, description: str, total: int | None) -> ProgressTask:
        """A bar out of `total` (None or 0: not known, the bar pulses)."""
        if self._progress is None:
            return _NoBar()
        return _Bar(self._progress, self._progress.add_task(description, total=total or None))


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: int) -> None:
        self._progress.advance(self._task, amount)

    def grow(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def restart(self) -> None:
        self._progress.reset(self._task)

    def finish(self) -> None:
        self._progress.stop_task(self._task)


class _NoBar:
    def advance(self, amount: int) -> None:
        pass

    def grow(self, total: int) -> None:
        pass

    def restart(self) -> None:
        pass

    def finish(self) -> None:
        pass


def human_size(size: float) -> str:
    """1536 -> '1.5 KiB'."""
    if size < 1024:
        return f"{size:.0f} bytes"
    unit = "KiB"
    for unit in ("KiB", "MiB", "GiB"):  # noqa: B007 - the unit the loop stops at is the answer
        size /= 1024
        if size < 1024:
            break
    return f"{size:.1f} {unit}"
