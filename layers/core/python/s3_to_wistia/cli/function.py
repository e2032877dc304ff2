"""The import function's own code path, run by the CLI: the Importer built by
s3_to_wistia.wiring from the Settings of the target's function (the deployed function's
environment as Lambda holds it, or the local stack's), with the CLI's AWS session.

So `import` claims, HEADs, probes, presigns, submits, records and dead-letters exactly as
the function would, and `redrive --local` invokes "the function" in this process as
Lambda's synchronous invocation would run it.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from s3_to_wistia.cli.errors import CliError
from s3_to_wistia.cli.output import Output
from s3_to_wistia.cli.resources import Target
from s3_to_wistia.config import ConfigError, Settings
from s3_to_wistia.dispatch import handle_event
from s3_to_wistia.redact import redact
from s3_to_wistia.redrive import Invocation

if TYPE_CHECKING:
    from s3_to_wistia.ports import RateBudget
    from s3_to_wistia.wiring import ImportFunction


def function_settings(target: Target, project: str | None = None) -> Settings:
    """The function's Settings as its cold start reads them, for the target's stack;
    `project` replaces its default project and prefix map."""
    configuration = target.function_configuration()
    environment = {**configuration.environment}
    if target.region:
        environment.setdefault("AWS_REGION", target.region)
    try:
        settings = Settings.from_env(environment)
    except ConfigError as error:
        raise CliError(
            f"the function {configuration.name} is misconfigured: {error}: fix its "
            "environment (sam deploy)"
        ) from None
    if project is not None:
        settings = replace(settings, project_id=project, project_map=())
    return settings


def build_function(
    target: Target, out: Output, settings: Settings, metrics: CountingMetrics | None = None
) -> ImportFunction:
    """The function's Importer and dead-letter queue, wired as its handler wires them; its
    requests to Wistia book on the stack's request budget as the command line's."""
    from s3_to_wistia.budget import CLI
    from s3_to_wistia.wiring import build_import_function

    return build_import_function(
        settings, NoteLog(out), metrics or CountingMetrics(), target.session, caller=CLI
    )


def stack_budget(target: Target, out: Output) -> RateBudget | None:
    """The account's request budget as the stack's functions book it (the budget table of
    their environment), for the command line's own requests; None, with a note, when the
    stack's function cannot be read or keeps no budget table."""
    from s3_to_wistia.wiring import build_rate_budget

    try:
        settings = function_settings(target)
    except CliError as error:
        out.note(f"not booking on the stack's request budget: {error}")
        return None
    if settings.rate_budget_table is None:
        return None
    return build_rate_budget(settings, session=target.session)


@dataclass
class CountingMetrics:
    """The metrics the function would emit, counted here instead of sent to CloudWatch."""

    counts: Counter[str] = field(default_factory=Counter)

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.counts[name] += int(value)


class NoteLog:
    """The function's structured log lines, as notes on stderr: `retrying the import
    (reason=..., attempt=2)`. Scrubbed twice: by the function's redaction (every secret
    it read) and by the output's."""

    def __init__(self, out: Output) -> None:
        self._out = out

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._note(msg, kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._note(msg, kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._note(msg, kwargs)

    def thread_safe_append_keys(self, **additional_keys: object) -> None:
        pass  # the object is named by every line the command prints itself

    def thread_safe_clear_keys(self) -> None:
        pass

    def _note(self, msg: object, keys: dict[str, Any]) -> None:
        details = ", ".join(f"{name}={value}" for name, value in keys.items())
        self._out.note(redact(f"  {msg}" + (f" ({details})" if details else "")))


@dataclass
class _Context:
    """The part of Lambda's context the function reads: its remaining time."""

    timeout: float
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout - (time.monotonic() - self.started)) * 1000))


class InProcessFunction:
    """The function invoked synchronously, here: redrive's Invoker for a local stack, where
    no Lambda runs it. Each call has the function's timeout, as an invocation would."""

    def __init__(self, function: ImportFunction, out: Output, timeout: float) -> None:
        self._function = function
        self._log = NoteLog(out)
        self._timeout = timeout

    def __call__(self, event: dict[str, Any]) -> Invocation:
        try:
            handle_event(
                event,
                _Context(self._timeout),
                self._function.importer,
                self._function.dead_letters,
                self._log,
            )
        except Exception as error:
            # What Lambda would answer: the function's error, the function having run.
            return Invocation(ok=False, error=redact(f"{type(error).__name__}: {error}"))
        return Invocation(ok=True)
