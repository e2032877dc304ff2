"""The deployment package and the layer, as `sam build` leaves them, zipped in memory."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.cold_start import runtime_python
from bench.environment import ROOT

BUILD = ROOT / ".aws-sam" / "build"
BUILT_TEMPLATE = BUILD / "template.yaml"
ARTIFACTS = {
    "function": BUILD / "ImportFunction",
    "layer": BUILD / "DependenciesLayer",
    "core layer": BUILD / "CoreLayer",
}
SOURCES = [ROOT / "template.yaml", ROOT / "functions" / "importer", ROOT / "layers"]
MIB = 1024 * 1024


@dataclass(frozen=True)
class Size:
    zipped_mib: float
    unzipped_mib: float
    files: int


@dataclass(frozen=True)
class Sizes:
    sizes: dict[str, Size]
    note: str  # how the build was found or made; why sizes are missing


def _files(folder: Path) -> Iterator[Path]:
    for directory, subdirectories, names in os.walk(folder):
        subdirectories.sort()
        for name in sorted(names):
            yield Path(directory) / name


def _source_files() -> Iterator[Path]:
    for source in SOURCES:
        if source.is_file():
            yield source
            continue
        for path in _files(source):
            if "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path


def build_is_stale() -> bool:
    if not BUILT_TEMPLATE.exists() or not all(path.is_dir() for path in ARTIFACTS.values()):
        return True
    built = BUILT_TEMPLATE.stat().st_mtime
    return any(path.stat().st_mtime > built for path in _source_files())


def zipped(folder: Path) -> Size:
    buffer = io.BytesIO()
    unzipped = files = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(folder):
            archive.write(path, path.relative_to(folder).as_posix())
            unzipped += path.stat().st_size
            files += 1
    return Size(len(buffer.getvalue()) / MIB, unzipped / MIB, files)


def measure(progress: Callable[[str], None]) -> Sizes:
    note = "existing .aws-sam/build"
    if build_is_stale():
        progress("make build (the build is missing or older than its sources)")
        # The layers ship bytecode only when the build finds a CPython 3.13: point it at
        # the one the as-built cold start runs (python3.13 on PATH, else pyenv's).
        python313 = runtime_python()
        env = {**os.environ, **({"PYTHON313": python313} if python313 else {})}
        done = subprocess.run(
            ["make", "--no-print-directory", "build"],  # noqa: S607 (make from PATH, as CI runs it)
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            return Sizes({}, "make build failed: " + " | ".join(tail))
        note = "fresh make build"
    progress("zipping the function and the layer in memory")
    return Sizes({name: zipped(folder) for name, folder in ARTIFACTS.items()}, note)
