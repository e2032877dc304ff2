"""The package layout's promises: each function imports only from its own code and its
layers, as Lambda sees them; the core's import rule covers every core module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from local_stack.functions import function_code
from local_stack.template import ROOT, load_template

CORE_PACKAGE = ROOT / "layers" / "core" / "python" / "s3_to_wistia"
NOT_CORE = {"adapters", "wiring", "cli"}
FUNCTIONS = [
    logical
    for logical, resource in load_template()["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
]
# The function's configuration, enough for a cold start (no call is made at import).
ENVIRONMENT = {
    "WISTIA_TOKEN_SECRET": "token",
    "WISTIA_WEBHOOK_SECRET": "webhook-key",
    "IMPORTS_TABLE_NAME": "imports",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "example",
    "POWERTOOLS_TRACE_DISABLED": "true",
}

IMPORT_SCRIPT = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
module = __import__(sys.argv[2], fromlist=["_"])
getattr(module, sys.argv[3])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_each_handler_imports_from_its_code_and_layers_only(logical_id: str) -> None:
    # Given the function's CodeUri and its layers' python/ folders, as Lambda lays them out,
    # and the third-party packages, but no installed copy of the project
    code = function_code(logical_id)
    site_packages = sysconfig.get_paths()["purelib"]
    path = [*map(str, code.paths), site_packages]

    # When a fresh interpreter (no site: no .pth, no editable install) imports the handler
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-S", "-c", IMPORT_SCRIPT, json.dumps(path), code.module, code.attribute],
        env=ENVIRONMENT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it imports, loading nothing of the operators' command line
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.splitlines()[-1])
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
