"""Importing a function's handler the way Lambda does: from its CodeUri and the python/
folders of its local layers, as template.yaml declares them, and nothing else of the project.

A new import is a new execution environment: module-level configuration is read again from
the environment variables set at that moment.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
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
    handler: Handler = getattr(module, code.attribute)
    return handler


def fresh_module(name: str) -> ModuleType:
    """Import `name` again, as a new execution environment would (its package stays)."""
    sys.modules.pop(name, None)
    return importlib.import_module(name)
