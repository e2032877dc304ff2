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

# Each registers its command on import, in this order in `s3-to-wistia --help`.
SUBCOMMANDS = (
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
    except click.exceptions.NoArgsIsHelpError as bare:
        out.stderr.file.write(bare.format_message() + "\n")
        return bare.exit_code
    except click.ClickException as problem:
        out.error(_one_line(problem))
        return problem.exit_code
    except (click.Abort, KeyboardInterrupt):
        out.error("interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`| head`): nothing more to say to anyone.
        _silence_stdout()
        return FAILED
    except Exception as error:
        explained = explain(error)
        if explained is not None:
            out.error(explained.message)
            return explained.exit_code
        if os.environ.get(DEBUG_ENV):
            raise
        out.error(
            f"unexpected {type(error).__name__}: {error} (a bug: please report it; "
            f"{DEBUG_ENV}=1 shows where it happened)"
        )
        return FAILED
    return result if isinstance(result, int) else OK


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
