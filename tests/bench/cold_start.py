"""Cold start: a fresh process importing the handler against one creating boto3's clients."""

from __future__ import annotations

import ast
import glob
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.environment import FUNCTION_DIR, LOCAL_DIR, ROOT, runtime_sdk

CORE_PACKAGE = "s3_to_wistia"
FUNCTION_SCRIPT = """
import time
started = time.perf_counter()
import importer.handler
print("BENCH", time.perf_counter() - started)
"""

FLOOR_SCRIPT = """
import time
started = time.perf_counter()
import boto3
from botocore.config import Config
session = boto3.session.Session()
session.client("s3", config=Config(signature_version="s3v4"))
session.client("dynamodb")
print("BENCH", time.perf_counter() - started)
"""

SCRIPTS = {"function": FUNCTION_SCRIPT, "floor": FLOOR_SCRIPT}
# The floor plus what Powertools costs the handler (its Logger and Metrics): the share of
# the function's cold start the project's own code cannot remove.
POWERTOOLS_SCRIPT = FLOOR_SCRIPT.replace(
    'print("BENCH"',
    'from aws_lambda_powertools import Logger, Metrics\nLogger()\nMetrics()\nprint("BENCH"',
)


def _handler_imports() -> str:
    """The import function handler's imports of the project's modules, as code."""
    tree = ast.parse((FUNCTION_DIR / "importer" / "handler.py").read_text(encoding="utf-8"))
    modules = sorted(
        str(node.module)
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(CORE_PACKAGE)
    )
    return "".join(f"import {module}\n" for module in modules)


# The project's modules as the handler imports them (nothing built), then the same with
# every dataclass left a plain class, the methods @dataclass compiles at import never made:
# the difference is what defining the project's dataclasses costs the cold start.
MODULES_SCRIPT = POWERTOOLS_SCRIPT.replace('print("BENCH"', _handler_imports() + 'print("BENCH"')
PLAIN_CLASSES_SCRIPT = MODULES_SCRIPT.replace(
    f"import {CORE_PACKAGE}.",
    "import dataclasses\n"
    "dataclasses.dataclass = lambda cls=None, **_: (lambda c: c) if cls is None else cls\n"
    f"import {CORE_PACKAGE}.",
    1,
)
# The interpreter's own start, subtracted from every count: the import alone is compared.
STARTUP_SCRIPT = 'print("BENCH", 0)'
INSTRUCTION_SCRIPTS = {
    "function": FUNCTION_SCRIPT,
    "floor": FLOOR_SCRIPT,
    "floor + Powertools": POWERTOOLS_SCRIPT,
    "modules": MODULES_SCRIPT,
    "modules, plain classes": PLAIN_CLASSES_SCRIPT,
}
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
PROJECT_MODULE = re.compile(r"^(importer|s3_to_wistia)(\.|$)")
IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


@dataclass
class ColdStarts:
    inside: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SCRIPTS})
    whole: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SCRIPTS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SCRIPTS})


@dataclass(frozen=True)
class Child:
    inside: float  # perf_counter around the import, measured in the child
    whole: float  # wall time of the whole child, start to exit
    cpu: float  # user + system CPU time of the whole child
    stderr: str


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(
    script: str,
    env: dict[str, str],
    *flags: str,
    python: str = sys.executable,
    isolated: bool = True,
) -> Child:
    """One fresh process; `isolated` runs it with -S (PYTHONPATH only, no site-packages)."""
    cpu = _children_cpu()
    started = time.perf_counter()
    site = ["-S"] if isolated else []
    done = subprocess.run(  # noqa: S603 (our own interpreter and script)
        [python, *site, *flags, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    whole = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(
            f"cold-start child failed ({done.returncode}): {last}\n{done.stderr[-3000:]}"
        )
    match = re.search(r"^BENCH (\S+)$", done.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"cold-start child printed no timing:\n{done.stdout[-2000:]}")
    return Child(float(match.group(1)), whole, cpu, done.stderr)


def run_child(script: str, env: dict[str, str]) -> Child:
    """One fresh `python -S` process running `script` (which prints BENCH <seconds>)."""
    return _run(script, env)


def measure(
    env: dict[str, str],
    runs: int,
    progress: Callable[[str], None],
    where: str = "the layer's packages",
    python: str = sys.executable,
    isolated: bool = True,
) -> ColdStarts:
    progress(f"cold start in {where}: 1 warm-up + {runs} fresh processes each, alternating")
    for script in SCRIPTS.values():
        # Writes bytecode and warms the page cache; not counted.
        _run(script, env, python=python, isolated=isolated)
    results = ColdStarts()
    for run in range(runs):
        order = ("function", "floor") if run % 2 == 0 else ("floor", "function")
        for name in order:
            child = _run(SCRIPTS[name], env, python=python, isolated=isolated)
            results.inside[name].append(child.inside)
            results.whole[name].append(child.whole)
            results.cpu[name].append(child.cpu)
    return results


@dataclass(frozen=True)
class Instructions:
    """Instructions executed by each import, the interpreter's start left out (empty when
    skipped)."""

    note: str  # how they were counted, or why they were not
    counts: dict[str, int] = field(default_factory=dict)


def count_instructions(
    jobs: dict[str, tuple[str, dict[str, str]]],
    progress: Callable[[str], None],
    python: str = sys.executable,
    flags: tuple[str, ...] = (),
    runs: int = 2,
) -> Instructions:
    """The cold start's figure that does not move with the machine's load: instructions
    executed (valgrind's callgrind) by each job's script in its environment, the same for
    the same code and inputs, where a shared machine's wall-clock medians wander by a tenth
    from run to run. `flags`: the interpreter's (-S, say), the same for every job."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return Instructions("skipped: valgrind not found (Debian's package valgrind)")
    progress(f"cold start in instructions: callgrind, {runs} runs of {', '.join(jobs)}")
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", python, *flags]
    # The interpreter's own start, in the first job's environment, is left out of each.
    jobs = {**jobs, "startup": (STARTUP_SCRIPT, next(iter(jobs.values()))[1])}

    def count(name: str) -> int:
        script, env = jobs[name]
        done = subprocess.run(  # noqa: S603 (valgrind, our interpreter and script)
            [*command, "-c", script], env=env, capture_output=True, text=True, check=False
        )
        match = COLLECTED.search(done.stderr)
        if done.returncode != 0 or match is None:
            raise RuntimeError(f"callgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
        return int(match.group(1))

    names = [name for name in jobs for _ in range(runs)]
    # Instructions do not depend on what else runs: every core at once.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        counted = list(pool.map(count, names))
    fewest = {
        name: min(n for job, n in zip(names, counted, strict=True) if job == name) for name in jobs
    }
    startup = fewest.pop("startup")
    return Instructions(
        f"valgrind --tool=callgrind, the fewest of {runs} runs, less the interpreter's start "
        f"({startup / 1e6:,.0f} M)",
        {name: n - startup for name, n in fewest.items()},
    )


def count_handler_instructions(
    env: dict[str, str], progress: Callable[[str], None]
) -> Instructions:
    """The import function's handler, its floor, and what the difference goes to."""
    return count_instructions(
        {name: (script, env) for name, script in INSTRUCTION_SCRIPTS.items()}, progress
    )


BUILD = ROOT / ".aws-sam" / "build"
RUNTIME_VERSION = (3, 13)


@dataclass(frozen=True)
class AsBuilt:
    python: str  # the interpreter used, or why the measurement was skipped
    function: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    instructions: Instructions = field(default_factory=lambda: Instructions("not counted"))


def runtime_python() -> str | None:
    """A CPython 3.13 (Lambda's runtime version): python3.13 on PATH, else one from pyenv."""
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.13")]
    candidates += sorted(glob.glob(os.path.join(pyenv, "versions", "3.13*", "bin", "python3.13")))
    for candidate in candidates:
        if candidate is None:
            continue
        probe = subprocess.run(  # noqa: S603 (an interpreter we found, asked its version)
            [candidate, "-c", "import sys; print(sys.executable); print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = probe.stdout.split("\n")
        if probe.returncode == 0 and len(lines) > 1 and lines[1] == str(RUNTIME_VERSION):
            return lines[0]
    return None


def runtime_sdk_for(python: str) -> Path:
    """boto3 as the Lambda runtime has it: installed for CPython 3.13 and compiled (made once)."""
    site = LOCAL_DIR / f"runtime-sdk-{runtime_sdk().replace('==', '-')}"
    if (site / ".complete").exists():
        return site
    shutil.rmtree(site, ignore_errors=True)
    for command in (
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--target",
            str(site),
            "--python-version",
            "3.13",
            "--only-binary=:all:",
            runtime_sdk(),
        ],
        [python, "-m", "compileall", "-q", "-j", "0", str(site)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"could not prepare the runtime's SDK: {done.stderr}")
    (site / ".complete").touch()
    return site


def measure_as_built(env: dict[str, str], runs: int, progress: Callable[[str], None]) -> AsBuilt:
    """The import as Lambda does it: .aws-sam/build's function and layer, CPython 3.13, and
    only the bytecode they ship (Lambda's /opt and /var/task are read-only, so Python cannot
    cache what it compiles). The floor's boto3 gets bytecode cached outside the build, as
    the runtime's own boto3 has it."""
    python = runtime_python()
    if python is None:
        return AsBuilt("skipped: no CPython 3.13 found (python3.13 on PATH or under pyenv)")
    layer = BUILD / "DependenciesLayer" / "python"
    core_layer = BUILD / "CoreLayer" / "python"
    function_dir = BUILD / "ImportFunction"
    if not layer.is_dir() or not core_layer.is_dir() or not function_dir.is_dir():
        return AsBuilt("skipped: no .aws-sam/build")
    progress(f"cold start as built: {runs} fresh CPython 3.13 processes each")
    try:
        runtime = runtime_sdk_for(python)
    except RuntimeError as error:
        return AsBuilt(f"skipped: {str(error).splitlines()[0]}")
    # Lambda's order: the function, then the layers, then the runtime's own (compiled) SDK.
    function_env = {
        **env,
        "PYTHONPATH": os.pathsep.join(map(str, (function_dir, core_layer, layer, runtime))),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    floor_env = {**env, "PYTHONPATH": str(runtime), "PYTHONDONTWRITEBYTECODE": "1"}
    sides = {
        "function": (FUNCTION_SCRIPT, function_env, ("-B",)),
        "floor": (FLOOR_SCRIPT, floor_env, ("-B",)),
    }
    result = AsBuilt(python)
    try:
        for script, side_env, flags in sides.values():
            _run(script, side_env, *flags, python=python)  # the floor's bytecode; not counted
        for run in range(runs):
            order = ("function", "floor") if run % 2 == 0 else ("floor", "function")
            for name in order:
                script, side_env, flags = sides[name]
                inside = _run(script, side_env, *flags, python=python).inside
                (result.function if name == "function" else result.floor).append(inside)
    except RuntimeError as error:
        # A build this interpreter cannot import (a binary-only package, say) is news, not
        # a reason to lose the rest of the run.
        return AsBuilt(f"skipped: {str(error).splitlines()[0]}")
    counted = count_instructions(
        {name: (script, side_env) for name, (script, side_env, _) in sides.items()},
        progress,
        python=python,
        flags=("-S", "-B"),
    )
    return replace(result, instructions=counted)


@dataclass(frozen=True)
class Module:
    name: str
    self_us: int
    cumulative_us: int
    children: list[Module] = field(default_factory=list, compare=False, repr=False)


@dataclass(frozen=True)
class ExtraModule:
    name: str
    extra_ms: float  # self time of the modules under it that the floor does not import
    imported_by: str
    largest_part: str  # its costliest extra submodule, with its share


def parse_importtime(text: str) -> list[Module]:
    """`-X importtime` lines as a forest (it prints each module after its imports)."""
    stack: list[tuple[int, Module]] = []
    for line in text.splitlines():
        match = IMPORTTIME_LINE.match(line)
        if match is None:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        depth = len(indent) // 2
        children: list[Module] = []
        while stack and stack[-1][0] > depth:
            children.insert(0, stack.pop()[1])
        stack.append((depth, Module(name, int(self_us), int(cumulative_us), children)))
    return [module for _, module in stack]


def _walk(modules: list[Module]) -> list[Module]:
    found: list[Module] = []
    for module in modules:
        found.append(module)
        found.extend(_walk(module.children))
    return found


def extra_modules(env: dict[str, str], top: int = 5) -> list[ExtraModule]:
    """The largest third-party modules the handler imports beyond the floor's, by the time
    spent in them and in what they alone pull in."""
    function_log = _run(FUNCTION_SCRIPT, env, "-X", "importtime").stderr
    floor_log = _run(FLOOR_SCRIPT, env, "-X", "importtime").stderr
    floor_names = {module.name for module in _walk(parse_importtime(floor_log))}

    def is_extra(module: Module) -> bool:
        return module.name not in floor_names and not PROJECT_MODULE.match(module.name)

    def extra_us(module: Module) -> int:
        own = module.self_us if module.name not in floor_names else 0
        return own + sum(extra_us(child) for child in module.children)

    outermost: list[tuple[Module, str]] = []

    def visit(module: Module, parent: str) -> None:
        if is_extra(module):
            outermost.append((module, parent))
            return
        for child in module.children:
            visit(child, module.name)

    roots = parse_importtime(function_log)
    for root in roots:
        visit(root, "-")
    outermost.sort(key=lambda pair: extra_us(pair[0]), reverse=True)
    answer = []
    for module, parent in outermost[:top]:
        parts = sorted(_walk(module.children), key=extra_us, reverse=True)
        largest = f"{parts[0].name} {extra_us(parts[0]) / 1000:.0f} ms" if parts else "-"
        answer.append(ExtraModule(module.name, extra_us(module) / 1000, parent, largest))
    # The project's own modules, together: the time spent in their bodies (class and
    # dataclass definitions above all), not in what they import.
    own = [m for m in _walk(roots) if m.name.partition(".")[0] == CORE_PACKAGE]
    if own:
        costliest = max(own, key=lambda module: module.self_us)
        answer.append(
            ExtraModule(
                f"{CORE_PACKAGE}.* ({len(own)} modules, their own code)",
                sum(module.self_us for module in own) / 1000,
                "importer.handler",
                f"{costliest.name} {costliest.self_us / 1000:.0f} ms",
            )
        )
    return sorted(answer, key=lambda extra: extra.extra_ms, reverse=True)
