"""`make local`: the same local stack as `make run`, kept up until Ctrl-C, for the CLI.

    python -m local_stack.serve [--source DIR]     (make local [SOURCE=DIR])

moto's server, the Wistia emulator and the import function (invoked by the bucket's
ObjectCreated notifications, as on AWS) run as in `make run`, provisioned from
template.yaml, with no video limit and no samples: put your own objects in the bucket (with
--source DIR, every file under DIR at start; or any S3 client pointed at the endpoint
shown), and work on the stack with `s3-to-wistia ... --local` from another terminal: status,
import, redrive, doctor, upload.

The stack is described in .local/live/stack.json while it is up (s3_to_wistia.cli.local);
at Ctrl-C (or SIGTERM) a snapshot of its records, dead letters and medias is left in
.local/live/snapshot.json, everything is stopped and the description removed.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from local_stack.harness import all_records, drain
from local_stack.report import Console
from local_stack.run import (
    Pipeline,
    Terminated,
    described,
    function_output_to,
    relative,
    save_snapshot,
    server_logs_to,
    sigterm_as_interrupt,
    source_files,
    start_pipeline,
    temp_files_in,
    upload_and_wait,
)
from s3_to_wistia.cli.local import LocalStack, local_dir, remove_description, write_description

KEY_WIDTH = 40


def live_dir() -> Path:
    return local_dir() / "live"


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_stack.serve",
        description="Keep the local stack (moto, the Wistia emulator and the import function) "
        "up until Ctrl-C, for s3-to-wistia --local.",
    )
    parser.add_argument(
        "--source", metavar="DIR", type=Path, help="upload every file under DIR at start"
    )
    arguments = parser.parse_args(argv)
    if arguments.source is not None and not arguments.source.is_dir():
        parser.error(f"--source {arguments.source} is not a directory")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    folder = live_dir()
    try:
        with sigterm_as_interrupt():
            serve(folder, arguments.source)
    except KeyboardInterrupt as interrupt:
        signum = interrupt.signum if isinstance(interrupt, Terminated) else signal.SIGINT
        print(f"\nStopped ({signal.Signals(signum).name}); nothing is left running.")
        print("Its records, any time: .venv/bin/s3-to-wistia status --local")
        return 0
    return 1  # serve() returns only when it could not start


def serve(folder: Path, source: Path | None) -> None:
    """Start the stack, describe it, and keep it up until interrupted."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with ExitStack() as cleanup:
        cleanup.enter_context(server_logs_to(folder / "servers.log"))
        console = Console(cleanup.enter_context(function_output_to(folder / "function.log")))
        cleanup.enter_context(temp_files_in(folder / "tmp"))
        pipeline = start_pipeline(cleanup, console, [], None, ["x" * KEY_WIDTH], folder)
        description = described(pipeline, "make local")
        write_description(folder, description)
        # Last in, first out: the snapshot is taken while the servers still answer.
        cleanup.callback(remove_description, folder)
        cleanup.callback(_snapshot, folder, description, pipeline)
        if source is not None:
            files = source_files(source.resolve())
            console.line(f"\nUploading {len(files)} files from {source}:")
            upload_and_wait(pipeline, files, {})
        show_usage(console, folder, description)
        while True:
            time.sleep(3600)


def show_usage(console: Console, folder: Path, stack: LocalStack) -> None:
    bucket = stack.resources["bucket"]
    console.line(f"\nUp until Ctrl-C (described in {relative(folder / 'stack.json')}). In another")
    console.line("terminal, work on it with --local:")
    for command in (
        "status --local",
        "doctor --local",
        f"import --local s3://{bucket}/KEY",
        "redrive --local --dry-run",
        "upload --local FILE",
    ):
        console.line(f"  .venv/bin/s3-to-wistia {command}")
    console.line(
        f"Put objects in s3://{bucket} with any S3 client: endpoint {stack.endpoint_url}, "
        "and the local stack's test keys from stack.json."
    )
    console.line(f"Function log: {relative(folder / 'function.log')}\n")


def _snapshot(folder: Path, description: LocalStack, pipeline: Pipeline) -> None:
    hashed_ids = [
        str(r["wistia_hashed_id"])
        for r in all_records(pipeline.stack.table_name)
        if r.get("wistia_hashed_id")
    ]
    medias = {hashed_id: pipeline.wistia.media(hashed_id) for hashed_id in hashed_ids}
    # The stack goes with this process: reading its dead letters may consume them.
    save_snapshot(folder, description, pipeline.stack, drain(pipeline.stack.queue_url), medias)


if __name__ == "__main__":
    sys.exit(main())
