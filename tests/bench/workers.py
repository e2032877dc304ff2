"""The parent's side of bench.worker: first events, steady state and the SQS batch."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

import boto3

from bench.cold_start import COLLECTED, Instructions
from bench.environment import python_command
from local_stack.events import Uploaded, s3_notification, sqs_batch
from wistia_emulator import EmulatorControl, Fault

BODY = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4
BATCH_SIZE = 10
IMPORT_ONLY = "floor-import-only"
LATENCY_SECONDS = 0.3


class WorkerFailed(RuntimeError):
    pass


class Worker:
    """One fresh `bench.worker` process, driven one command at a time."""

    def __init__(self, role: str, env: dict[str, str], prefix: tuple[str, ...] = ()) -> None:
        """`prefix`: a command the worker runs under (valgrind, say)."""
        self.role = role
        self.stderr_text = ""  # what the process wrote to stderr, once closed
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [*prefix, *python_command("-m", "bench.worker", role)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.init_seconds = float(self._receive()["init_seconds"])

    def call(self, **command: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._receive()

    def _receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=10)
            self._stderr.seek(0)
            tail = self._stderr.read().decode(errors="replace")[-3000:]
            raise WorkerFailed(f"{self.role} worker exited ({self._process.returncode}):\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise WorkerFailed(f"{self.role} worker failed:\n{answer['error']}")
        return answer

    def close(self) -> None:
        if self._process.poll() is None and self._process.stdin is not None:
            with suppress(BrokenPipeError):
                self._process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self._process.stdin.flush()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._stderr.seek(0)
        self.stderr_text = self._stderr.read().decode(errors="replace")
        self._stderr.close()


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, answer: dict[str, Any]) -> None:
        self.wall.append(float(answer["wall"]))
        self.cpu.append(float(answer["cpu"]))


@dataclass
class RuntimeResults:
    first: dict[str, Samples]
    steady: dict[str, Samples]
    batch: Samples  # the function: one invocation with BATCH_SIZE SQS records
    one_record: Samples  # the function: one invocation with one SQS record
    single_post: Samples  # the floor: one import POST under the same latency
    floor_batch: Samples  # the floor: the same batch, its records in threads
    floor_one_record: Samples  # the floor: a batch of one record
    peak_rss_mib: dict[str, float]
    floor_urls: list[str]
    function_objects: list[Uploaded]
    floor_objects: list[Uploaded]  # by both floors
    instructions: Instructions  # per steady-state object, by side


class Objects:
    """Fresh objects uploaded before any timing starts, handed out one at a time."""

    def __init__(self, bucket: str, prefix: str, count: int) -> None:
        s3 = boto3.client("s3")

        def put(index: int) -> Uploaded:
            key = f"bench/{prefix}/clip {index:04d}.mp4"
            answer = s3.put_object(Bucket=bucket, Key=key, Body=BODY)
            return Uploaded(bucket, key, answer["VersionId"], answer["ETag"].strip('"'), len(BODY))

        with ThreadPoolExecutor(max_workers=6) as pool:
            self._items = list(pool.map(put, range(count)))
        self.handed: list[Uploaded] = []

    def take(self) -> Uploaded:
        obj = self._items.pop()
        self.handed.append(obj)
        return obj


def _rotating(index: int, *sides: Callable[[], None]) -> None:
    """Each side first, second and last in turn."""
    shift = index % len(sides)
    for side in sides[shift:] + sides[:shift]:
        side()


def measure_runtime(
    env: dict[str, str],
    bucket: str,
    emulator_url: str,
    first_runs: int,
    objects: int,
    warmup: int,
    batches: int,
    progress: Callable[[str], None],
) -> RuntimeResults:
    per_side = first_runs + warmup + objects
    # Each side's batches of BATCH_SIZE and of one record, the first of them a warm-up.
    batch_objects = (BATCH_SIZE + 1) * (batches + 1)
    progress(f"uploading {2 * (per_side + batch_objects) + batches + 1} objects")
    pools = {
        "function": Objects(bucket, "function", per_side + batch_objects),
        "floor": Objects(bucket, "floor", per_side + batch_objects),
        "post": Objects(bucket, "post", batches + 1),  # POSTed only: no record
        # The floor without the URL probe and the overwrite check (steady state only).
        IMPORT_ONLY: Objects(bucket, "import-only", warmup + objects),
    }
    first = {"function": Samples(), "floor": Samples()}
    steady = {"function": Samples(), "floor": Samples(), IMPORT_ONLY: Samples()}
    floor_urls: list[str] = []

    def import_one(side: Worker, into: Samples | None) -> None:
        answer = side.call(op="import", event=s3_notification(pools[side.role].take()))
        if into is not None:
            into.add(answer)
        if "url" in answer and len(floor_urls) < 3:
            floor_urls.append(str(answer["url"]))

    # First events: fresh processes, one at a time so no start-up overlaps another's event.
    progress(f"first event after a cold start: {first_runs} fresh processes each")
    workers: dict[str, Worker] = {}
    try:
        for run in range(first_runs):
            roles = ("function", "floor") if run % 2 == 0 else ("floor", "function")
            for role in roles:
                # The last pair stays up for the steady state; closed in `finally` either way.
                started = workers[role] = Worker(role, env)
                import_one(started, first[role])
                if run < first_runs - 1:
                    workers.pop(role).close()
        function, floor = workers["function"], workers["floor"]
        import_only = workers[IMPORT_ONLY] = Worker(IMPORT_ONLY, env)

        progress(f"steady state: {warmup} warm-up + {objects} objects each, interleaved")
        for index in range(warmup):
            _rotating(
                index,
                lambda: import_one(function, None),
                lambda: import_one(floor, None),
                lambda: import_one(import_only, None),
            )
        for index in range(objects):
            _rotating(
                index,
                lambda: import_one(function, steady["function"]),
                lambda: import_one(floor, steady["floor"]),
                lambda: import_one(import_only, steady[IMPORT_ONLY]),
            )
        peak_rss = {role: float(w.call(op="stats")["peak_rss_mib"]) for role, w in workers.items()}

        progress(f"SQS batch of {BATCH_SIZE} with {LATENCY_SECONDS * 1000:.0f} ms on the POST")
        batches_measured = _measure_batches(function, floor, pools, emulator_url, batches)
    finally:
        for started in workers.values():
            started.close()
    counted = Counted(bucket)
    instructions = counted.per_object(env, progress)
    return RuntimeResults(
        first=first,
        steady=steady,
        batch=batches_measured["function"],
        one_record=batches_measured["function one record"],
        single_post=batches_measured["post"],
        floor_batch=batches_measured["floor"],
        floor_one_record=batches_measured["floor one record"],
        peak_rss_mib=peak_rss,
        floor_urls=floor_urls,
        function_objects=pools["function"].handed + counted.handed("function"),
        floor_objects=pools["floor"].handed + pools[IMPORT_ONLY].handed + counted.handed("floor"),
        instructions=instructions,
    )


class Counted:
    """Instructions executed per object in the steady state, by the function and by the
    floor: what the CPU-time rows measure, without a shared machine's noise. Each side
    imports FEW objects in one fresh worker under callgrind and MORE in another; the
    difference over MORE - FEW is one steady-state object (start-up and first event
    cancel out). The function is also counted without its log line and its metrics
    (Powertools' Logger at ERROR, its Metrics disabled): what those two cost an object.
    Under callgrind the function runs some fifty times slower, so the slots its request
    budget books ahead expire before they are used: every request is booked on its own,
    as it is when the account is at its limit."""

    FEW = 5
    MORE = 35
    # Label: the worker's role, and what its environment adds.
    SIDES: ClassVar[dict[str, tuple[str, dict[str, str]]]] = {
        "function": ("function", {}),
        "floor": ("floor", {}),
        "function, no log line or metrics": (
            "function",
            {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"},
        ),
    }

    def __init__(self, bucket: str) -> None:
        self.pools = {
            label: Objects(bucket, f"counted-{number}", self.FEW + self.MORE)
            for number, label in enumerate(self.SIDES)
        }

    def handed(self, role: str) -> list[Uploaded]:
        """The objects the workers of `role` imported."""
        return [
            obj
            for label, pool in self.pools.items()
            if self.SIDES[label][0] == role
            for obj in pool.handed
        ]

    def per_object(self, env: dict[str, str], progress: Callable[[str], None]) -> Instructions:
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            return Instructions("skipped: valgrind not found (Debian's package valgrind)")
        progress(f"steady state in instructions: callgrind, {self.FEW} and {self.MORE} objects")
        prefix = (valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null")

        def total(job: tuple[str, int]) -> int:
            label, objects = job
            role, extra = self.SIDES[label]
            worker = Worker(role, {**env, **extra}, prefix)
            try:
                for _ in range(objects):
                    worker.call(op="import", event=s3_notification(self.pools[label].take()))
            finally:
                worker.close()
            match = COLLECTED.search(worker.stderr_text)
            if match is None:
                raise RuntimeError(f"callgrind counted nothing:\n{worker.stderr_text[-2000:]}")
            return int(match.group(1))

        # One worker at a time: workers running at once would share the request budget, and
        # how often each books (and waits) would then depend on the others.
        jobs = [(label, n) for label in self.SIDES for n in (self.FEW, self.MORE)]
        totals = {job: total(job) for job in jobs}
        return Instructions(
            f"valgrind --tool=callgrind: a worker importing {self.MORE} objects less one "
            f"importing {self.FEW}, over {self.MORE - self.FEW}",
            {
                label: (totals[(label, self.MORE)] - totals[(label, self.FEW)])
                // (self.MORE - self.FEW)
                for label in self.SIDES
            },
        )


def _measure_batches(
    function: Worker,
    floor: Worker,
    pools: dict[str, Objects],
    emulator_url: str,
    batches: int,
) -> dict[str, Samples]:
    """Each side's SQS batch of BATCH_SIZE records against its batch of one record, and one
    POST alone, every POST answered LATENCY_SECONDS late: ten records in one invocation
    should take little longer than one."""
    control = EmulatorControl(emulator_url)
    control.add_fault(
        Fault(
            kind="latency",
            seconds=LATENCY_SECONDS,
            probability=1.0,
            match_method="POST",
            match_path="/",
        )
    )
    samples = {
        name: Samples()
        for name in ("function", "function one record", "floor", "floor one record", "post")
    }

    def sqs_event(pool: str, records: int) -> dict[str, Any]:
        bodies = [json.dumps(s3_notification(pools[pool].take())) for _ in range(records)]
        return sqs_batch(*bodies)

    def one_batch(side: Worker, records: int, into: Samples | None) -> None:
        answer = side.call(op="batch", event=sqs_event(side.role, records))
        if into is not None:
            into.add(answer)

    def one_post(into: Samples | None) -> None:
        obj = pools["post"].take()
        answer = floor.call(
            op="post", object={"bucket": obj.bucket, "key": obj.key, "version_id": obj.version_id}
        )
        if into is not None:
            into.add(answer)

    try:
        # The first SQS batch imports the batch utilities: a one-off, left out.
        one_batch(function, BATCH_SIZE, None)
        one_batch(floor, BATCH_SIZE, None)
        one_post(None)
        steps = [
            lambda: one_batch(function, BATCH_SIZE, samples["function"]),
            lambda: one_batch(function, 1, samples["function one record"]),
            lambda: one_post(samples["post"]),
            lambda: one_batch(floor, BATCH_SIZE, samples["floor"]),
            lambda: one_batch(floor, 1, samples["floor one record"]),
        ]
        for index in range(batches):
            _rotating(index, *steps)
    finally:
        control.clear_faults()
    return samples
