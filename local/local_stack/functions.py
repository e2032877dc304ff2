"""Importing a function's handler the way Lambda does: from its CodeUri and the python/
folders of its local layers, as template.yaml declares them, and nothing else of the project.

A new import is a new execution environment: module-level configuration is read again from
the environment variables set at that moment.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from local_stack.template import ROOT, load_template

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class FunctionCode:
    """Where one function's code comes from, and the module and name of its handler."""

    logical_id: str
    paths: tuple[Path, ...]
    module: str
    attribute: str


def function_code(logical_id: str, template: dict[str, Any] | None = None) -> FunctionCode:
    template = template or load_template()
    resources = template["Resources"]
    properties = resources[logical_id]["Properties"]
    paths = [ROOT / properties["CodeUri"]]
    for layer in properties.get("Layers", []):
        if isinstance(layer, dict) and "Ref" in layer and layer["Ref"] in resources:
            content = ROOT / resources[layer["Ref"]]["Properties"]["ContentUri"] / "python"
            if content.is_dir():
                paths.append(content)
    module, _, attribute = str(properties["Handler"]).rpartition(".")
    return FunctionCode(logical_id, tuple(paths), module, attribute)


def load_handler(
    logical_id: str = "ImportFunction", template: dict[str, Any] | None = None
) -> Handler:
    """The handler of `logical_id`, imported afresh (a cold start) with its code on the path."""
    code = function_code(logical_id, template)
    for path in reversed(code.paths):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    module = fresh_module(code.module)
    log_to_current_stdout(module)
    handler: Handler = getattr(module, code.attribute)
    return handler


def log_to_current_stdout(module: ModuleType) -> None:
    """Powertools keeps one log handler per service for the whole process, bound to the
    stdout of the first cold start; a new execution environment logs to its own stdout
    (here: the one in place now, a test's captured one or `make run`'s log)."""
    handler = getattr(getattr(module, "logger", None), "registered_handler", None)
    if isinstance(handler, logging.StreamHandler):
        # Not setStream: it flushes the old stream, which may be closed by now.
        with handler.lock or threading.Lock():
            handler.stream = sys.stdout


def fresh_module(name: str) -> ModuleType:
    """Import `name` again, as a new execution environment would (its package stays)."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)


class ExecutionEnvironments:
    """A function's Lambda execution environments, as a handler: each invocation runs in a
    free environment, a new one (a cold start: the handler's module imported afresh) when none
    is free, at most `limit` (the function's reserved concurrency), one invocation at a time
    in each, the one used last first, as Lambda reuses warm environments.

    What a handler keeps at module level (clients, caches, the backfill's pace) belongs to one
    environment, as in Lambda. An invocation ended by a BaseException that is not an Exception
    (SystemExit, or a test's stand-in for a crash) takes its environment with it: Lambda starts
    a fresh one for the next invocation. Lambda's environments are processes; these are modules
    in one process, so the one thing they would share, Powertools' per-process metric set, is
    guarded by one lock across them; and the service models botocore parses (the same files
    in every environment, some 15 MiB of dictionaries each) are parsed once for all of them,
    so a job runner's memory does not grow by a copy of them per environment.

        environments = ExecutionEnvironments("BackfillFunction", limit=4)
        run_job(environments, ...)   # any handler(event, context) caller
    """

    def __init__(
        self,
        logical_id: str,
        limit: int,
        template: dict[str, Any] | None = None,
        on_cold_start: Callable[[ModuleType], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("a function needs at least one execution environment")
        self.logical_id = logical_id
        self.limit = limit
        self._template = template
        # Read once: parsing template.yaml per invocation would cost more than the function.
        self._attribute = function_code(logical_id, template).attribute
        self._on_cold_start = on_cold_start
        self._free: list[ModuleType] = []
        self._busy = 0
        self._changed = threading.Condition()
        self._loading = threading.Lock()
        self._metrics_lock = threading.Lock()
        self.cold_starts = 0
        self.crashes = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        module = self._take()
        crashed = False
        try:
            return getattr(module, self._attribute)(event, context)
        except Exception:
            raise
        except BaseException:
            crashed = True
            raise
        finally:
            self._give_back(module, crashed)

    def modules(self) -> list[ModuleType]:
        """The warm environments' modules (for tests that look inside)."""
        with self._changed:
            return list(self._free)

    def _take(self) -> ModuleType:
        with self._changed:
            while not self._free and self._busy >= self.limit:
                self._changed.wait()
            self._busy += 1
            if self._free:
                return self._free.pop()
        try:
            return self._cold_start()
        except BaseException:
            with self._changed:
                self._busy -= 1
                self._changed.notify()
            raise

    def _give_back(self, module: ModuleType, crashed: bool) -> None:
        with self._changed:
            self._busy -= 1
            if crashed:
                self.crashes += 1
            else:
                self._free.append(module)
            self._changed.notify()

    def _cold_start(self) -> ModuleType:
        # Imports are not safe to interleave: one environment starts at a time.
        with self._loading, _one_botocore_loader():
            handler = load_handler(self.logical_id, self._template)
            module = sys.modules[handler.__module__]
            self.cold_starts += 1
        self._guard_metrics(module)
        if self._on_cold_start is not None:
            self._on_cold_start(module)
        return module

    def _guard_metrics(self, module: ModuleType) -> None:
        metrics = getattr(module, "metrics", None)
        for name in ("add_metric", "flush_metrics"):
            method = getattr(metrics, name, None)
            if callable(method):
                setattr(metrics, name, _locked(method, self._metrics_lock))


def _locked(method: Callable[..., Any], lock: threading.Lock) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call


_loaders: dict[str | None, Any] = {}


@contextlib.contextmanager
def _one_botocore_loader() -> Iterator[None]:
    """Sessions created in the block share one botocore Loader (its parsed models) per data
    path. A session makes its loader when its first client is made, at the cold start."""
    import botocore.session

    create_loader = botocore.session.create_loader

    def shared(search_path: str | None = None) -> Any:
        if search_path not in _loaders:
            _loaders[search_path] = create_loader(search_path)
        return _loaders[search_path]

    botocore.session.create_loader = shared
    try:
        yield
    finally:
        botocore.session.create_loader = create_loader
