"""Fresh interpreters importing a function's handler as Lambda lays it out: its code and
layers on the path, then the third-party packages, no site (no .pth, no editable install).

Each takes 0.3-0.7 s, nearly all of it the interpreter and the SDKs starting, so the first
test that asks starts every probe the unit tier needs at once: the tier waits for the
slowest pair of them, not for their sum.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock

from local_stack.functions import function_code
from local_stack.template import load_template

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
}
IMPORT_SCRIPT = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
module = __import__(sys.argv[2], fromlist=["_"])
getattr(module, sys.argv[3])
print(json.dumps(sorted(sys.modules)))
"""
# (function, TRACING_MODE): None leaves the variable unset, as a template without it would.
PROBES: list[tuple[str, str | None]] = [
    *((logical_id, mode) for logical_id in FUNCTIONS for mode in ("PassThrough", "Active")),
    ("ImportFunction", None),
]

_lock = Lock()
_started: dict[tuple[str, str | None], Future[list[str]]] = {}


def cold_start_modules(logical_id: str, tracing_mode: str | None) -> list[str]:
    """The modules a fresh interpreter holds once it has imported the function's handler."""
    with _lock:
        if not _started:
            pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
            for probe in PROBES:
                _started[probe] = pool.submit(_probe, *probe)
            pool.shutdown(wait=False)
        future = _started.get((logical_id, tracing_mode))
    if future is None:
        return _probe(logical_id, tracing_mode)
    return future.result()


def _probe(logical_id: str, tracing_mode: str | None) -> list[str]:
    code = function_code(logical_id)
    path = [*map(str, code.paths), sysconfig.get_paths()["purelib"]]
    # As in Lambda: Powertools' Tracer would otherwise turn itself off outside it.
    env = {**ENVIRONMENT, "LAMBDA_TASK_ROOT": str(code.paths[0])}
    if tracing_mode is not None:
        env["TRACING_MODE"] = tracing_mode
    done = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-S", "-c", IMPORT_SCRIPT, json.dumps(path), code.module, code.attribute],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{logical_id} failed to import:\n{done.stderr}"
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules
