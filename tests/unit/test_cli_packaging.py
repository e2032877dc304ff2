"""The operators' CLI libraries stay out of the Lambda package: not in the built CoreLayer,
not in any layer's or function's requirements, never imported by the handler."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from local_stack.template import ROOT

# The CLI's libraries and what they pull in: none may reach Lambda.
CLI_DISTRIBUTIONS = {"click", "rich", "markdown-it-py", "mdurl", "pygments"}
CLI_MODULES = {"click", "rich", "markdown_it", "mdurl", "pygments"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s#;]+)")


def pins(lines: list[str]) -> dict[str, str]:
    found = {}
    for line in lines:
        match = REQUIREMENT.match(line)
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def requirements(path: Path) -> dict[str, str]:
    return pins(path.read_text(encoding="utf-8").splitlines())


def cli_extra() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return pins(project["optional-dependencies"]["cli"])


def test_the_cli_extra_pins_exactly_what_the_venv_installs() -> None:
    extra = cli_extra()

    assert set(extra) == CLI_DISTRIBUTIONS
    # The Makefile's .venv installs tests/requirements.txt: the same versions.
    test_pins = requirements(ROOT / "tests" / "requirements.txt")
    assert {name: test_pins.get(name) for name in extra} == extra


def test_the_console_script_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    assert project["scripts"] == {"s3-to-wistia": "s3_to_wistia.cli.main:main"}


@pytest.mark.parametrize(
    "path",
    ["layers/dependencies/requirements.txt", "functions/importer/requirements.txt"],
)
def test_no_lambda_requirements_name_a_cli_library(path: str) -> None:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    named = {re.split(r"[\s=<>!~\[;]", line.strip(), maxsplit=1)[0].lower() for line in lines}

    assert not named & CLI_DISTRIBUTIONS


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_the_built_core_layer_holds_no_cli(tmp_path: Path) -> None:
    built = subprocess.run(  # noqa: S603 - make, with our own arguments
        [  # noqa: S607
            "make",
            "-C",
            str(ROOT / "layers" / "core"),
            "build-CoreLayer",
            f"ARTIFACTS_DIR={tmp_path}",
            "PYTHON313=false",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    package = tmp_path / "python" / "s3_to_wistia"
    sources = sorted(package.rglob("*.py"))

    assert (package / "importing.py").exists()
    assert not (package / "cli").exists()
    imports = re.compile(rf"^\s*(?:import|from)\s+({'|'.join(CLI_MODULES)})\b", re.MULTILINE)
    assert [p.name for p in sources if imports.search(p.read_text(encoding="utf-8"))] == []


def test_the_lambda_handler_never_imports_the_cli_libraries() -> None:
    # A fresh interpreter that sees what Lambda sees (the function and the core layer, the
    # venv standing in for the dependencies layer), where click and rich ARE installed.
    layer = ROOT / "layers" / "core" / "python"
    modules = sorted(
        ".".join(path.relative_to(layer).with_suffix("").parts)
        for path in (layer / "s3_to_wistia").rglob("*.py")
        if "cli" not in path.relative_to(layer).parts and path.name != "__main__.py"
    )
    probe = (
        "import importlib, json, sys\n"
        f"sys.path[:0] = [{str(ROOT / 'functions' / 'importer')!r}, {str(layer)!r}]\n"
        "import importer.handler\n"
        f"for name in {modules!r}: importlib.import_module(name.removesuffix('.__init__'))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "unused",
        "AWS_SECRET_ACCESS_KEY": "unused",
        "WISTIA_TOKEN_SECRET": "unused",
        "IMPORTS_TABLE_NAME": "unused",
        "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/unused",
        "POWERTOOLS_SERVICE_NAME": "s3-to-wistia",
        "POWERTOOLS_METRICS_NAMESPACE": "S3ToWistia",
    }

    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "importer.handler" in loaded
    assert [
        m for m in loaded if m.split(".")[0] in CLI_MODULES or m.startswith("s3_to_wistia.cli")
    ] == []


def test_the_clis_help_does_not_load_the_aws_sdk() -> None:
    # Every command's module is imported for --help; the AWS SDK waits for a command's work.
    probe = (
        "import contextlib, io, json, sys\n"
        "from s3_to_wistia.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    code = main(['--help'])\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore'))]))\n"
    )

    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [0, []]
