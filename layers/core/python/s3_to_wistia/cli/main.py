"""`s3-to-wistia`'s entry point: runs one subcommand and turns its outcome into an exit code
and, when it failed, one line on stderr that says what to do.

A new subcommand is a module in this package that registers itself with
`@command(...)` (app.py), plus its import in SUBCOMMANDS below.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

from s3_to_wistia.cli.app import cli
from s3_to_wistia.cli.errors import FAILED, INTERRUPTED, OK, explain
from s3_to_wistia.cli.output import PROG, Output

# Each registers its command on import (`s3-to-wistia --help` lists them by name).
SUBCOMMANDS = (
    "s3_to_wistia.cli.status",
    "s3_to_wistia.cli.import_object",
    "s3_to_wistia.cli.redrive",
    "s3_to_wistia.cli.doctor",
    "s3_to_wistia.cli.upload",
    "s3_to_wistia.cli.backfill",
    "s3_to_wistia.cli.reconcile",
)
DEBUG_ENV = "S3_TO_WISTIA_DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    """Run `s3-to-wistia ARGS...` (argv: sys.argv[1:] when None) and return its exit code."""
    for module in SUBCOMMANDS:
        importlib.import_module(module)
    out = Output()
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name=PROG,
            standalone_mode=False,
            obj=out,
        )
    except (click.Abort, KeyboardInterrupt):
        out.error("interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing more to say to anyone.
        _silence_stdout()
        return FAILED
    except click.ClickException as problem:
        return _usage_failure(out, problem)
    except Exception as error:
        return _failure(out, error)
    return result if isinstance(result, int) else OK


def _usage_failure(out: Output, problem: click.ClickException) -> int:
    if isinstance(problem, click.exceptions.NoArgsIsHelpError):
        out.stderr.file.write(problem.format_message() + "\n")
    else:
        out.error(_one_line(problem))
    return problem.exit_code


def _failure(out: Output, error: Exception) -> int:
    """An expected failure is one line that says what to do; anything else is a bug."""
    explained = explain(error)
    if explained is not None:
        out.error(explained.message)
        return explained.exit_code
    if os.environ.get(DEBUG_ENV):
        raise error
    out.error(
        f"unexpected {type(error).__name__}: {error} (a bug: please report it; "
        f"{DEBUG_ENV}=1 shows where it happened)"
    )
    return FAILED


def _one_line(problem: click.ClickException) -> str:
    message = " ".join(problem.format_message().split())
    context = getattr(problem, "ctx", None)
    if isinstance(problem, click.UsageError) and context is not None:
        return f"{message.rstrip('.')}; see '{context.command_path} --help'"
    return message


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
