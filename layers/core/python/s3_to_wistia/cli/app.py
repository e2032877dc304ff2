"""The `s3-to-wistia` command group, and `command`, which adds a subcommand to it with the
options every subcommand shares.

    @command("status", needs=[TABLE, API_URL, TOKEN_SECRET], json_output=True)
    @click.option("--since", ...)
    def status(target: Target, out: Output, since: str | None) -> int:
        '''Show the import records ...'''
        ...
        return 0  # the exit code: 0 ok, 1 something failed (None counts as 0)

gives `s3-to-wistia status [--since ...] [--stack NAME | --local] [--region R] [--profile P]
[--table NAME] [--api-url URL] [--token-secret ID] [--json]`. The function gets the Target
(resources.py: its resources' values, AWS clients, the Wistia token) and the run's Output
(output.py). `target.value(TABLE)` finds one resource when first asked; call
`target.resolve()` once the command's own arguments are checked, so a missing resource
fails before any work is done.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import click

from s3_to_wistia.cli.output import PROG, Output
from s3_to_wistia.cli.resources import STACK_ENV, Resource, Target, TargetOptions

CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}

CommandFunction = Callable[..., int | None]


@click.group(
    name=PROG,
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
    epilog="Exit codes: 0 ok, 1 something failed, 2 bad usage. "
    "Run 's3-to-wistia COMMAND --help' for a command's options.",
)
@click.version_option(package_name="s3-to-wistia", prog_name=PROG)
def cli() -> None:
    """The operators' tool for s3-to-wistia: see what the stack imported, import or redrive
    what failed, check a deployment end to end, and upload files to Wistia."""


def command(
    name: str,
    *,
    needs: Sequence[Resource] = (),
    json_output: bool = False,
    short_help: str | None = None,
) -> Callable[[CommandFunction], click.Command]:
    """Register `function(target, out, **its own options)` as the subcommand `name`.

    `needs`: the resources it uses; each gets its flag, and --stack/--local/--region/
    --profile come with them. `json_output`: adds --json (print with `out.result(...)`).
    The function's own click options and arguments are declared under this decorator and
    listed first in its help.
    """

    def register(function: CommandFunction) -> click.Command:
        own = list(reversed(getattr(function, "__click_params__", [])))
        shared = _target_parameters(needs) if needs else []
        if json_output:
            shared.append(
                click.Option(
                    ["--json", "as_json"],
                    is_flag=True,
                    help="print one JSON document on stdout instead of text",
                )
            )

        def callback(**values: Any) -> int | None:
            out = click.get_current_context().find_object(Output) or Output()
            out.json_mode = bool(values.pop("as_json", False))
            options = TargetOptions()
            if needs:
                options = TargetOptions(
                    stack=values.pop("stack"),
                    local=values.pop("local"),
                    region=values.pop("region"),
                    profile=values.pop("profile"),
                    config_env=values.pop("config_env"),
                    given={resource.name: values.pop(resource.name) for resource in needs},
                )
            return function(Target(options, needs, out), out, **values)

        subcommand = click.Command(
            name,
            callback=callback,
            params=[*own, *shared],
            help=inspect.getdoc(function),
            short_help=short_help,
            context_settings=CONTEXT_SETTINGS,
        )
        cli.add_command(subcommand)
        return subcommand

    return register


def _target_parameters(needs: Sequence[Resource]) -> list[click.Parameter]:
    parameters: list[click.Parameter] = [
        click.Option(
            ["--stack"],
            metavar="NAME",
            help=f"the deployed stack whose Outputs name the resources (default: ${STACK_ENV}, "
            "else samconfig.toml's stack_name, else s3-to-wistia)",
        ),
        click.Option(
            ["--config-env"],
            metavar="ENV",
            help="the samconfig.toml environment whose stack_name is the default stack "
            "(default: default)",
        ),
        click.Option(
            ["--local"],
            is_flag=True,
            help="work on the local stack instead: the one `make local` keeps up (else the "
            "records `make run` left, for status)",
        ),
        click.Option(
            ["--region"], metavar="REGION", help="AWS region (default: your AWS configuration)"
        ),
        click.Option(
            ["--profile"], metavar="PROFILE", help="AWS profile (default: your AWS configuration)"
        ),
    ]
    for resource in needs:
        if resource.output:
            default = f"the stack's {resource.output} output"
        else:
            default = str(resource.default)
        parameters.append(
            click.Option(
                [resource.flag, resource.name],
                metavar=resource.metavar,
                help=f"{resource.help} (default: {default})",
            )
        )
    return parameters
