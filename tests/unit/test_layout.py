"""The package layout's promises: each function imports only from its own code and its
layers, as Lambda sees them; the core's import rule covers every core module."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from local_stack.template import ROOT
from unit.cold_starts import FUNCTIONS, cold_start_modules

CORE_PACKAGE = ROOT / "layers" / "core" / "python" / "s3_to_wistia"
NOT_CORE = {"adapters", "wiring", "cli"}


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_handler_imports_from_its_code_and_layers_only(logical_id: str) -> None:
    # Given the function's CodeUri and its layers' python/ folders, as Lambda lays them out,
    # and the third-party packages, but no installed copy of the project:
    # When a fresh interpreter (no site: no .pth, no editable install) imports the handler,
    # Then it imports, loading nothing of the operators' command line
    modules = cold_start_modules(logical_id, "PassThrough")
    assert not [m for m in modules if m.startswith(("s3_to_wistia.cli", "click", "rich"))]
    project = {m.split(".")[0] for m in modules} & {"local_stack", "wistia_emulator", "tests"}
    assert project == set()


def test_the_core_import_rule_covers_every_core_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = config["tool"]["importlinter"]["contracts"]
    modules = {
        path.stem if path.suffix == ".py" else path.name
        for path in CORE_PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    }

    assert {f"s3_to_wistia.{m}" for m in modules - NOT_CORE} == set(contract["source_modules"])


def test_the_core_layer_build_ships_the_package_without_the_command_line(tmp_path: Path) -> None:
    # When SAM's makefile build method builds the core layer
    done = subprocess.run(  # noqa: S603 - make, with our own arguments
        ["make", "-s", "-C", str(ROOT / "layers" / "core"), "build-CoreLayer"],  # noqa: S607
        env={"PATH": os.environ["PATH"], "ARTIFACTS_DIR": str(tmp_path), "PYTHON313": "none"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then the layer holds the shared package as Lambda expects it, without cli/ or caches
    assert done.returncode == 0, done.stderr
    package = tmp_path / "python" / "s3_to_wistia"
    assert (package / "importing.py").is_file()
    assert (package / "adapters" / "records.py").is_file()
    assert not (package / "cli").exists()
    assert not list(package.rglob("__pycache__"))
