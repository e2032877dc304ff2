"""Where the measured processes run: the layer's packages only, and Lambda's variables.

The venv holds moto, requests and the rest of the test tools. Powertools' Tracer patches
every library it can import (requests among them), so a handler imported from the venv
would pay for modules Lambda never has. Measured processes therefore run with `-S` on a
site directory holding exactly layers/dependencies/requirements.txt plus the boto3 the
runtime provides, installed for this interpreter (with bytecode, like the runtime's own
boto3) under .local/, which git ignores.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "importer"
# The shared package, as the function sees it: its layer's python/ folder on the path.
CORE_DIR = ROOT / "layers" / "core" / "python"
TESTS_DIR = ROOT / "tests"
# The local stack and the emulator.
LOCAL_SOURCES = ROOT / "local"
LAYER_REQUIREMENTS = ROOT / "layers" / "dependencies" / "requirements.txt"
TEST_REQUIREMENTS = ROOT / "tests" / "requirements.txt"


def runtime_sdk() -> str:
    """The boto3 pin the tests use, standing in for the one the Lambda runtime provides
    (the layer leaves boto3 out on purpose)."""
    for line in TEST_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        if line.startswith("boto3=="):
            return line.strip()
    raise RuntimeError("tests/requirements.txt pins no boto3")


LOCAL_DIR = ROOT / ".local" / "bench"

# Credentials and profiles of the person running the bench must not leak into it.
DROPPED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX",
    "PYTHONUNBUFFERED",
    "POWERTOOLS_TRACE_DISABLED",
    "POWERTOOLS_DEV",
)


def runtime_site() -> Path:
    """A site directory with the layer's pinned packages for this interpreter (made once)."""
    digest = hashlib.sha256(
        LAYER_REQUIREMENTS.read_bytes() + runtime_sdk().encode() + sys.version.encode()
    ).hexdigest()
    site = LOCAL_DIR / f"site-{digest[:12]}"
    if (site / ".complete").exists():
        return site
    partial = LOCAL_DIR / f"partial-{uuid.uuid4().hex[:8]}"
    partial.mkdir(parents=True)
    try:
        subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(partial),
                "--requirement",
                str(LAYER_REQUIREMENTS),
                runtime_sdk(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"could not install the layer's packages:\n{error.stderr}") from error
    (partial / ".complete").touch()
    shutil.rmtree(site, ignore_errors=True)
    partial.rename(site)
    return site


def plain_virtualenv() -> Path:
    """A fresh virtualenv holding only what a new user installs to run the function: the
    layer's pinned packages and boto3 (made once, under .local/bench). Its python."""
    digest = hashlib.sha256(
        LAYER_REQUIREMENTS.read_bytes() + runtime_sdk().encode() + sys.version.encode()
    ).hexdigest()
    venv = LOCAL_DIR / f"plain-venv-{digest[:12]}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    for command in (
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--requirement",
            str(LAYER_REQUIREMENTS),
            runtime_sdk(),
        ],
    ):
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"could not make the plain virtualenv: {done.stderr[-2000:]}")
    (venv / ".complete").touch()
    return python


def site_environment(extra: dict[str, str]) -> dict[str, str]:
    """Like child_environment, for an interpreter with its own site-packages (a
    virtualenv): only the function's code and its core layer on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join([str(FUNCTION_DIR), str(CORE_DIR)])
    return env


def python_command(*arguments: str) -> list[str]:
    """The interpreter for measured processes: no site-packages (-S), only PYTHONPATH."""
    return [sys.executable, "-S", *arguments]


def lambda_variables(xray_daemon: str) -> dict[str, str]:
    """What Lambda's python runtime sets and the SDKs read (X-Ray, when Active, sends to a
    loopback sink)."""
    return {
        "LAMBDA_TASK_ROOT": str(FUNCTION_DIR),
        "_HANDLER": "importer.handler.lambda_handler",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "s3-to-wistia-bench",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "AWS_XRAY_DAEMON_ADDRESS": xray_daemon,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "TZ": ":UTC",
    }


def child_environment(extra: dict[str, str], site: Path, with_tests: bool) -> dict[str, str]:
    """os.environ without personal AWS settings, plus `extra`, with the measured path."""
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARIABLES}
    env.update(extra)
    tools = [str(TESTS_DIR), str(LOCAL_SOURCES)] if with_tests else []
    path = [str(FUNCTION_DIR), str(CORE_DIR), *tools, str(site)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


class UdpSink:
    """A bound UDP socket nobody reads: the X-Ray daemon's address, dropping what it gets."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self._socket.close()
