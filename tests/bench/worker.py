"""`python -S -m bench.worker function|floor`: one measured process.

Started fresh by the bench, it initialises (the handler module's import, or the floor's
clients), then takes one JSON command a line on stdin and answers one JSON line on the
stdout it had at start. Its own fd 1 goes to /dev/null, where the function's logs and
metrics lines land, as cheap a sink as Lambda's log collector. Kept free of imports the
function does not make, so the first event pays for exactly what it would in Lambda.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

Command = dict[str, Any]


def _trace_header() -> str:
    """A new trace, sampled: the worst case. (Lambda samples 1 a second and 5% beyond; set
    BENCH_XRAY_SAMPLED=0 to see an unsampled invocation's cost.)"""
    sampled = os.environ.get("BENCH_XRAY_SAMPLED", "1")
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled={sampled}"


def _timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    cpu = time.process_time()
    wall = time.perf_counter()
    answer = call()
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    return answer, wall, cpu


def _function_role() -> Callable[[Command], Command]:
    from importer import handler
    from local_stack.harness import LambdaContext

    def run(command: Command) -> Command:
        op = command["op"]
        if op not in ("import", "batch"):
            raise ValueError(f"unknown op {op!r}")
        event = command["event"]
        # Lambda's runtime sets the trace header before each invocation.
        os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
        context = LambdaContext()
        answer, wall, cpu = _timed(lambda: handler.lambda_handler(event, context))
        if op == "import":
            statuses = [result["status"] for result in answer["results"]]
            if statuses != ["SUBMITTED"]:
                raise RuntimeError(f"the function answered {answer}")
        elif answer != {"batchItemFailures": []}:
            raise RuntimeError(f"the batch answered {answer}")
        return {"wall": wall, "cpu": cpu}

    return run


def _floor_role(same_work: bool = True) -> Callable[[Command], Command]:
    from bench.floor import Floor

    floor = Floor(
        os.environ["IMPORTS_TABLE_NAME"],
        os.environ["WISTIA_UPLOAD_URL"],
        os.environ["WISTIA_TOKEN_SECRET"],
        same_work=same_work,
    )

    def run(command: Command) -> Command:
        op = command["op"]
        if op == "import":
            answer, wall, cpu = _timed(lambda: floor.handle(command["event"]))
            return {"wall": wall, "cpu": cpu, "url": answer[0]["url"]}
        if op == "batch":
            _, wall, cpu = _timed(lambda: floor.handle_sqs(command["event"]))
            return {"wall": wall, "cpu": cpu}
        if op == "post":
            obj = command["object"]
            url = floor.presign(obj["bucket"], obj["key"], obj["version_id"])
            _, wall, cpu = _timed(lambda: floor.post(url, obj["key"].rsplit("/", 1)[-1]))
            return {"wall": wall, "cpu": cpu}
        raise ValueError(f"unknown op {op!r}")

    return run


def _webhook_role() -> Callable[[Command], Command]:
    from local_stack.harness import LambdaContext
    from webhook import handler

    def run(command: Command) -> Command:
        event = command["event"]
        os.environ["_X_AMZN_TRACE_ID"] = _trace_header()
        context = LambdaContext()
        answer, wall, cpu = _timed(lambda: handler.lambda_handler(event, context))
        applied = json.loads(answer["body"]).get("applied")
        if answer["statusCode"] != 200 or applied != len(json.loads(event["body"])["events"]):
            raise RuntimeError(f"the receiver answered {answer}")
        return {"wall": wall, "cpu": cpu}

    return run


def _webhook_floor_role(lookup: bool) -> Callable[[Command], Command]:
    from bench.receiver_floor import KEY, ReceiverFloor

    floor = ReceiverFloor(os.environ["IMPORTS_TABLE_NAME"], KEY)

    def run(command: Command) -> Command:
        keys = command["keys"]
        status, wall, cpu = _timed(lambda: floor.handle(command["event"], keys, lookup))
        if status != 200:
            raise RuntimeError(f"the floor answered {status}")
        return {"wall": wall, "cpu": cpu}

    return run


ROLES: dict[str, Callable[[], Callable[[Command], Command]]] = {
    "function": _function_role,
    "floor": _floor_role,
    "floor-import-only": lambda: _floor_role(same_work=False),
    "webhook": _webhook_role,
    "webhook-floor": lambda: _webhook_floor_role(lookup=False),
    "webhook-floor-lookup": lambda: _webhook_floor_role(lookup=True),
}


def _peak_rss_kib() -> float:
    """This process's peak resident set. Linux carries ru_maxrss across fork and exec, so a
    child started by a large parent reports the parent's size there; VmHWM is its own."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _serve(role: str, channel: TextIO) -> None:
    started = time.perf_counter()
    run = ROLES[role]()
    _send(channel, {"ready": True, "init_seconds": time.perf_counter() - started})
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        command: Command = json.loads(line)
        if command["op"] == "quit":
            return
        if command["op"] == "stats":
            _send(channel, {"peak_rss_mib": _peak_rss_kib() / 1024})
            continue
        _send(channel, run(command))


def _send(channel: TextIO, answer: Command) -> None:
    channel.write(json.dumps(answer) + "\n")
    channel.flush()


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        print(f"usage: python -S -m bench.worker {'|'.join(ROLES)}", file=sys.stderr)
        return 2
    channel = os.fdopen(os.dup(1), "w")
    sink = os.open(os.devnull, os.O_WRONLY)
    os.dup2(sink, 1)
    os.close(sink)
    try:
        _serve(role, channel)
    except Exception:
        _send(channel, {"error": traceback.format_exc()})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
