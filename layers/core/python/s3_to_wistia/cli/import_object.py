"""`s3-to-wistia import s3://bucket/key [--project ID] [--again]`: one object through the
function's own code path, now.

The object is HEADed (its current version, ETag and size, as its S3 event would carry
them), then handed, as that event's record, to the Importer the function's wiring builds
from the function's own settings: the same claim, HEAD, probe, presign, submit, record and
dead letter. Nothing here decides anything the function would decide differently.

Exactly once, unless asked: the record is the claim, so an object version already
imported (SUBMITTED), failed for good (FAILED) or skipped (SKIPPED) is not imported again,
and one an invocation is importing right now is left to it. `--again` reopens a settled
record first (SUBMITTED, FAILED or SKIPPED -> PENDING_RETRY, as redrive reopens a FAILED
one), only if it is still exactly as it was read, so two operators (or an operator and an
invocation) can never both import it; a media an earlier import created stays in Wistia,
its hashed id kept in the record's replaced_wistia_hashed_ids.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import click

from s3_to_wistia.cli.app import command
from s3_to_wistia.cli.errors import FAILED, OK, CliError, UsageProblem
from s3_to_wistia.cli.function import CountingMetrics, build_function, function_settings
from s3_to_wistia.cli.output import Output, human_size
from s3_to_wistia.cli.records import object_uri, record_document
from s3_to_wistia.cli.resources import FUNCTION, Target
from s3_to_wistia.contracts import ImportRecord
from s3_to_wistia.errors import RetryableError
from s3_to_wistia.events import parse_notification
from s3_to_wistia.model import ObjectRef, Outcome, Status
from s3_to_wistia.times import iso_now

if TYPE_CHECKING:
    from s3_to_wistia.adapters.records import Records
    from s3_to_wistia.wiring import ImportFunction

SETTLED = frozenset({Status.SUBMITTED.value, Status.FAILED.value, Status.SKIPPED.value})


@command(
    "import",
    needs=[FUNCTION],
    json_output=True,
    short_help="Import one S3 object now, through the function's own code path.",
)
@click.argument("uri", metavar="s3://BUCKET/KEY")
@click.option(
    "--project",
    metavar="ID",
    help="the Wistia project's hashed id (default: the function's WISTIA_PROJECT_MAP / "
    "WISTIA_PROJECT_ID; the object's x-amz-meta-wistia-project-id still wins)",
)
@click.option(
    "--again",
    is_flag=True,
    help="import it even though its record is settled (SUBMITTED: Wistia then holds it twice)",
)
def import_object(target: Target, out: Output, uri: str, project: str | None, again: bool) -> int:
    """Import s3://BUCKET/KEY (its current version) into Wistia now, exactly as the import
    function would on its S3 event: the function's settings (read from the deployed
    function, or the local stack's), your AWS credentials.

    An object version already imported, failed or skipped is refused unless --again, which
    reopens its record (only if nobody changed it meanwhile) and imports it once more; one
    an invocation is importing right now is left to it. A failure ends as the function's
    do: a FAILED record and a dead letter, to redrive once the cause is fixed.

    Exit code 0 when the object is SUBMITTED to Wistia, 1 otherwise.
    """
    # Imported here, as every AWS-bound module: --help need not load the AWS SDK.
    from s3_to_wistia.adapters.records import Records

    bucket, key = _object(uri)
    settings = function_settings(target, _project(project))
    # Read with your AWS identity first: a secret you cannot read (or the stack's
    # placeholder) stops here, instead of failing the object for good as the function would.
    target.wistia_token(settings.token_secret_id)
    metrics = CountingMetrics()
    function = build_function(target, out, settings, metrics)
    obj = _current_version(target, bucket, key)
    records = Records(target.client("dynamodb"), settings.imports_table_name)
    before = records.get(obj)
    refusal = _refusal(before, again, uri)
    if refusal is not None:
        return _refuse(out, obj, before, refusal)
    if before is not None and before.status in SETTLED:
        _reopen(out, records, obj, before)
    outcome = _import(out, target, function, obj)
    # The claim found the record settled or held by an invocation: not this import's doing.
    ours = not metrics.counts["DuplicateDeliveries"]
    return _report(out, outcome, records.get(obj), again, ours)


def _import(out: Output, target: Target, function: ImportFunction, obj: ObjectRef) -> Outcome:
    configuration = target.function_configuration()
    out.note(
        f"Importing {obj.uri} (version {obj.version}, {human_size(obj.size or 0)}) as "
        f"{configuration.name} would"
    )
    # Retries can take the function's whole timeout: a pulsing bar shows it is at work.
    try:
        with out.progress(unit="items") as bars:
            bars.task(f"Importing {obj.key}", None)
            # An invocation importing it right now is left to it, and the operator told.
            deadline = time.time() + configuration.timeout
            return function.importer.import_object(obj, deadline, wait_for_holder=False)
    except RetryableError as error:
        # The function's claim is handed back: Lambda would retry; here, the operator.
        return Outcome(Status.PENDING_RETRY, obj, str(error))


def _object(uri: str) -> tuple[str, str]:
    try:
        bucket, key = object_uri(uri)
    except ValueError as error:
        raise UsageProblem(str(error)) from None
    if not key or key.endswith("/"):
        raise UsageProblem(f"{uri} names no object: give s3://BUCKET/KEY, the key of a file")
    return bucket, key


def _project(project: str | None) -> str | None:
    if project is not None and not project.strip():
        raise UsageProblem("--project needs a project's hashed id (or leave it out)")
    return project.strip() if project else None


def _current_version(target: Target, bucket: str, key: str) -> ObjectRef:
    """The object's current version, named as its ObjectCreated event would name it."""
    from botocore.exceptions import ClientError

    try:
        head = target.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code"))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise CliError(
                f"no object s3://{bucket}/{key} (or no bucket {bucket!r}): check the key; "
                "keys are case-sensitive"
            ) from None
        if code in ("403", "AccessDenied"):
            raise CliError(
                f"AWS denied reading s3://{bucket}/{key}: your AWS identity needs "
                "s3:GetObject on it (the presigned URL Wistia fetches is signed with it)"
            ) from None
        raise
    version = head.get("VersionId")
    record: dict[str, Any] = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": target.region or "",
        "eventTime": iso_now(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "s3-to-wistia import"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "s3-to-wistia import",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": int(head.get("ContentLength", 0)),
                "eTag": str(head.get("ETag", "")).strip('"'),
                **({"versionId": version} if version and version != "null" else {}),
            },
        },
    }
    [obj] = parse_notification({"Records": [record]}).objects
    return obj


def _refusal(record: ImportRecord | None, again: bool, uri: str) -> str | None:
    """Why this import must not go ahead, or None."""
    if record is None or again or record.status not in SETTLED:
        return None
    if record.status == Status.SUBMITTED.value:
        return (
            f"{uri} was already imported (SUBMITTED {record.submitted_at or record.updated_at}, "
            f"Wistia media {record.wistia_hashed_id}): nothing done; --again imports it once "
            "more, and Wistia then holds it twice"
        )
    reason = record.error or "no reason recorded"
    if record.status == Status.SKIPPED.value:
        return (
            f"{uri} was SKIPPED ({reason}): nothing done; --again tries it once more (once "
            "what skipped it has changed)"
        )
    return (
        f"{uri} is FAILED ({reason}): nothing done; fix the cause, then --again (or "
        "`s3-to-wistia redrive` its dead letter)"
    )


def _refuse(out: Output, obj: ObjectRef, record: ImportRecord | None, refusal: str) -> int:
    out.error(refusal)
    out.result(
        {
            "object": obj.uri,
            "version": obj.version,
            "outcome": "refused",
            "detail": refusal,
            "record": record_document(record) if record else None,
        }
    )
    return FAILED


def _reopen(out: Output, records: Records, obj: ObjectRef, before: ImportRecord) -> None:
    if not records.reopen_settled(obj, before):
        raise CliError(
            f"{obj.uri}'s record changed while it was read (an invocation or another operator "
            "is at it): look at it with `s3-to-wistia status`, then try again"
        )
    if before.wistia_hashed_id:
        out.warn(
            f"importing {obj.uri} again: its earlier media {before.wistia_hashed_id} stays in "
            "Wistia (delete it there if it should not)"
        )


def _report(
    out: Output, outcome: Outcome, record: ImportRecord | None, again: bool, ours: bool
) -> int:
    line, hint = _words(outcome, record, ours)
    out.say(f"{outcome.object.uri}: {line}")
    if hint:
        out.note(hint)
    imported = ours and outcome.status is Status.SUBMITTED and record is not None
    out.result(
        {
            "object": outcome.object.uri,
            "version": outcome.object.version,
            "outcome": outcome.status.value if ours else "settled meanwhile",
            "imported": imported,
            "detail": outcome.detail,
            "again": again,
            "record": record_document(record) if record else None,
        }
    )
    return OK if imported else FAILED


def _words(outcome: Outcome, record: ImportRecord | None, ours: bool) -> tuple[str, str | None]:
    """The result line and what to do next."""
    follow = f"follow it: s3-to-wistia status {outcome.object.uri}"
    if not ours:
        return f"not imported now: {outcome.detail}", follow
    if outcome.status is Status.SUBMITTED and record is not None:
        expires = f"; Wistia fetches it through a URL valid until {record.url_expires_at}"
        return f"SUBMITTED as Wistia media {record.wistia_hashed_id}{expires}", follow
    if outcome.status is Status.FAILED:
        return (
            f"FAILED: {outcome.detail}",
            "its dead letter is in the queue: fix the cause, then `s3-to-wistia redrive`",
        )
    if outcome.status is Status.PENDING_RETRY:
        return (
            f"not imported yet: {outcome.detail}",
            "its record waits for a retry (PENDING_RETRY): run this again later",
        )
    return f"{outcome.status.value}: {outcome.detail}", None
