"""`s3-to-wistia upload FILE... [--project ID] [--name NAME]`: local files into Wistia."""

from __future__ import annotations

import os

import click

from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.errors import FAILED, OK, UsageProblem
from s3_to_wistia.cli.function import stack_budget
from s3_to_wistia.cli.output import Output, human_size
from s3_to_wistia.cli.resources import TOKEN_SECRET, UPLOAD_URL, Target
from s3_to_wistia.cli.uploading import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    LocalFile,
    RetryPolicy,
    Uploader,
    UploadOutcome,
    check_file,
)
from s3_to_wistia.rules import MAX_NAME_LENGTH

DEFAULT_ATTEMPTS = RetryPolicy.max_attempts
NOT_TRIED = "not tried: an earlier file's refusal would stop it too"


@command(
    "upload",
    needs=[TOKEN_SECRET, UPLOAD_URL],
    json_output=True,
    short_help="Upload local files to Wistia, with a progress bar each.",
)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--project",
    metavar="ID",
    help="the Wistia project's hashed id (default: Wistia files it under Uploads_YYYY-MM-DD)",
)
@click.option(
    "--name",
    metavar="NAME",
    help="the media's name in Wistia, with one FILE only (default: the file's name)",
)
@click.option(
    "--attempts",
    type=click.IntRange(1, 20),
    default=DEFAULT_ATTEMPTS,
    show_default=True,
    help="tries per file when Wistia answers 429 or 5xx or the connection fails",
)
def upload(
    target: Target,
    out: Output,
    files: tuple[str, ...],
    project: str | None,
    name: str | None,
    attempts: int,
) -> int:
    """Upload FILE... to Wistia through the Upload API's multipart file upload, one after
    the other, each streamed from disk (memory stays flat for any size) with a progress bar
    on a terminal, and print each media's hashed id.

    The token is read from the stack's token secret (--token-secret to name another).
    Every file is checked first; if one cannot be uploaded (missing, not a regular file,
    empty, unreadable) nothing is. Rate limits (429) and Wistia's 5xx answers are retried,
    waiting as long as Retry-After says. If an answer is lost after a whole file was sent,
    Wistia may have created the media anyway; the file is sent again and the output says
    it may now be in Wistia twice. A rejected token (401), a refusal of the plan (403) or
    the account's video limit stops the run.

    Exit code 0 when every file was uploaded, 1 otherwise.
    """
    project = _project(project)
    if name is not None:
        name = _name(name, files)
    checked, problems = _checked_files(files, name)
    if problems:
        for problem in problems:
            out.error(str(problem.error))
        out.error("nothing was uploaded: fix or leave out the files above")
        out.result(_document(problems))
        return FAILED

    target.resolve()
    uploader = Uploader(
        target.wistia(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT),
        target.wistia_token(),
        target.value(TOKEN_SECRET),
        RetryPolicy(max_attempts=attempts),
        warn=out.warn,
        budget=stack_budget(target, out),
    )
    total = sum(file.size for file in checked)
    out.note(
        f"Uploading {_count(len(checked))} ({human_size(total)}) to {target.value(UPLOAD_URL)}"
    )
    outcomes = _upload_all(out, uploader, checked, project)
    _summarise(out, outcomes)
    out.result(_document(outcomes))
    return FAILED if any(not outcome.ok for outcome in outcomes) else OK


def _checked_files(
    files: tuple[str, ...], name: str | None
) -> tuple[list[LocalFile], list[UploadOutcome]]:
    """The files that can be uploaded, and an outcome saying why for each that cannot."""
    checked: list[LocalFile] = []
    problems: list[UploadOutcome] = []
    for path in files:
        try:
            checked.append(check_file(path, name))
        except ValueError as error:
            problems.append(
                UploadOutcome(path, name or os.path.basename(path), 0, error=str(error))
            )
    return checked, problems


def _upload_all(
    out: Output, uploader: Uploader, checked: list[LocalFile], project: str | None
) -> list[UploadOutcome]:
    """One file after the other; a refusal the next files would get too stops the run."""
    outcomes: list[UploadOutcome] = []
    with out.progress() as bars:
        for index, file in enumerate(checked):
            outcome = uploader.upload(
                file, project, bars.task(os.path.basename(file.path), file.size)
            )
            outcomes.append(outcome)
            _report(out, outcome)
            skipped = checked[index + 1 :]
            if outcome.stops_run and skipped:
                out.error(f"{_count(len(skipped))} not tried: the same refusal would stop them")
                outcomes.extend(
                    UploadOutcome(f.path, f.name, f.size, error=NOT_TRIED) for f in skipped
                )
                break
    return outcomes


def _summarise(out: Output, outcomes: list[UploadOutcome]) -> None:
    if len(outcomes) < 2:
        return
    failed = sum(not outcome.ok for outcome in outcomes)
    not_tried = sum(outcome.error == NOT_TRIED for outcome in outcomes)
    summary = f"{len(outcomes) - failed} uploaded, {failed - not_tried} failed"
    out.note(summary + (f", {not_tried} not tried" if not_tried else ""))


def _report(out: Output, outcome: UploadOutcome) -> None:
    if not outcome.ok:
        out.error(f"{outcome.file}: {outcome.error}")
        return
    tries = f", {outcome.attempts} tries" if outcome.attempts > 1 else ""
    out.say(f"{outcome.file}: uploaded as {outcome.hashed_id} ({human_size(outcome.bytes)}{tries})")
    if outcome.possible_duplicate:
        out.warn(
            f"{outcome.file}: Wistia may now hold it twice (an earlier try's answer was lost): "
            f"check for another media named {outcome.name!r} besides {outcome.hashed_id}"
        )


def _document(outcomes: list[UploadOutcome]) -> dict[str, object]:
    failed = sum(not outcome.ok for outcome in outcomes)
    return {
        "uploaded": len(outcomes) - failed,
        "failed": failed,
        "uploads": [outcome.as_json() for outcome in outcomes],
    }


def _project(project: str | None) -> str | None:
    if project is None:
        return None
    project = project.strip()
    if not project:
        raise UsageProblem("--project needs a project's hashed id (or leave it out)")
    return project


def _name(name: str, files: tuple[str, ...]) -> str:
    if len(files) > 1:
        raise UsageProblem("--name names one media: give one FILE with it, or leave it out")
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise UsageProblem(f"--name must be 1 to {MAX_NAME_LENGTH} characters")
    return name


def _count(files: int) -> str:
    return f"{files} file" + ("" if files == 1 else "s")
