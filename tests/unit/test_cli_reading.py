"""The CLI's pure decisions: which records a selection names and how DynamoDB is asked for
them, what --since means, what Wistia's answers say of a token, and the local stack's
files read back as written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from s3_to_wistia.cli.doctor import WARN, Findings, _token_rights, _webhook_key
from s3_to_wistia.cli.local import (
    LocalStack,
    Snapshot,
    newest_snapshot,
    write_description,
    write_snapshot,
)
from s3_to_wistia.cli.records import Selection, _request, note_for, object_uri, since_bound
from s3_to_wistia.contracts import ImportRecord

NOW = datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)


def record(**fields: object) -> ImportRecord:
    values: dict[str, object] = {
        "bucket": "media",
        "object_key": "clips/a.mp4",
        "object_version": "v1",
        "status": "SUBMITTED",
        "updated_at": "2026-01-31T11:00:00.000Z",
    }
    values.update(fields)
    return ImportRecord.from_attributes(values)


@pytest.mark.parametrize(
    ("text", "bound"),
    [
        ("90m", "2026-01-31T10:30:00.000Z"),
        ("1h30m", "2026-01-31T10:30:00.000Z"),
        ("2d", "2026-01-29T12:00:00.000Z"),
        ("1w", "2026-01-24T12:00:00.000Z"),
        ("45s", "2026-01-31T11:59:15.000Z"),
        ("2026-01-01", "2026-01-01T00:00:00.000Z"),
        ("2026-01-30T08:15Z", "2026-01-30T08:15:00.000Z"),
    ],
)
def test_since_is_a_duration_back_from_now_or_a_date(text: str, bound: str) -> None:
    assert since_bound(text, now=NOW) == bound


@pytest.mark.parametrize("text", ["yesterday", "90", "2h later", ""])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="--since takes a duration"):
        since_bound(text, now=NOW)


def test_a_selection_matches_as_the_tables_filter_does() -> None:
    selection = Selection(
        prefix="s3://media/clips/",
        since="2026-01-31T10:00:00.000Z",
        states=frozenset({"SUBMITTED"}),
        media_states=frozenset({"ready"}),
    )

    assert selection.matches(record(media_status="ready"))
    assert not selection.matches(record(media_status="processing"))
    assert not selection.matches(record(media_status="ready", object_key="other/a.mp4"))
    assert not selection.matches(record(media_status="ready", status="FAILED"))
    assert not selection.matches(
        record(media_status="ready", updated_at="2026-01-30T00:00:00.000Z")
    )
    assert Selection().matches(record())


def test_the_scan_filters_and_projects_with_placeholders_for_reserved_words() -> None:
    selection = Selection(
        prefix="s3://media/clips/",
        since="2026-01-31T10:00:00.000Z",
        states=frozenset({"FAILED", "SKIPPED"}),
    )

    request = _request("imports", selection, exact=None)

    assert request["FilterExpression"] == (
        "begins_with(object_uri, :prefix) AND #updated >= :since AND #status IN (:status0, "
        ":status1)"
    )
    assert request["ExpressionAttributeValues"][":status0"] == {"S": "FAILED"}
    names = request["ExpressionAttributeNames"]
    assert names["#status"] == "status"
    projected = {names[p.strip()] for p in request["ProjectionExpression"].split(",")}
    assert {"object_uri", "bucket", "status", "error", "media_status"} <= projected
    assert "wistia_response" not in projected  # Wistia's whole answer stays in the table


def test_one_object_is_a_key_condition_not_a_filter() -> None:
    request = _request("imports", Selection(prefix="s3://media/a.mp4"), exact="s3://media/a.mp4")

    assert request["KeyConditionExpression"] == "object_uri = :uri"
    assert "FilterExpression" not in request


@pytest.mark.parametrize(
    ("text", "parts"),
    [("s3://media/a b.mp4", ("media", "a b.mp4")), ("s3://media", ("media", ""))],
)
def test_object_uris(text: str, parts: tuple[str, str]) -> None:
    assert object_uri(text) == parts


def test_a_records_note_says_why_or_what_it_took() -> None:
    assert note_for(record(status="FAILED", error="video limit")) == "video limit"
    assert note_for(record(redrives=2, replaced_wistia_hashed_ids=["abc"])) == (
        "redriven 2x; imported again; earlier media abc"
    )


@pytest.mark.parametrize(
    ("reads", "uploads", "status", "words"),
    [
        (401, 400, WARN, "an upload-only token"),
        (200, 401, "fix", "a read-only token"),
        (401, 401, "fix", "Wistia rejects the token"),
        (503, 400, WARN, "Wistia answered 503"),
    ],
)
def test_wistias_two_answers_tell_the_tokens_rights(
    reads: int, uploads: int, status: str, words: str
) -> None:
    with pytest.raises(Findings) as found:
        _token_rights(reads, uploads, "secret")

    assert found.value.status == status
    assert found.value.detail.startswith(words)


def test_a_token_that_reads_and_uploads_is_fine() -> None:
    assert _token_rights(200, 400, "secret").startswith("Wistia accepts the token for imports")


@pytest.mark.parametrize(
    ("raw", "key"),
    [("k1", "k1"), ('{"secret_key": " k2 "}', "k2"), ('{"other": 1}', ""), ("{bad", "")],
)
def test_the_webhook_key_is_plain_or_json(raw: str, key: str) -> None:
    assert _webhook_key(raw) == key


def stack(started_by: str = "make run") -> LocalStack:
    return LocalStack(
        started_by=started_by,
        pid=0,
        started_at="2026-01-31T12:00:00.000Z",
        endpoint_url="http://127.0.0.1:5000",
        region="us-east-1",
        access_key_id="AKIALOCALSTACKTEST01",
        secret_access_key="local",
        resources={"table": "imports"},
        function_environment={"IMPORTS_TABLE_NAME": "imports"},
    )


def test_the_newest_snapshot_is_read_back_as_it_was_written(tmp_path: Path) -> None:
    older = Snapshot("2026-01-31T12:00:00.000Z", stack("make local"), [{"status": "X"}], [], {})
    newer = Snapshot("2026-01-31T13:00:00.000Z", stack("make run"), [{"status": "Y"}], [], {})
    write_snapshot(tmp_path / "live", older)
    write_snapshot(tmp_path / "run", newer)
    write_description(tmp_path / "run", stack())

    found = newest_snapshot({"S3_TO_WISTIA_LOCAL_DIR": str(tmp_path)})

    assert found is not None
    assert (found.taken_at, found.records, found.stack.started_by) == (
        newer.taken_at,
        [{"status": "Y"}],
        "make run",
    )
    assert found.stack == stack()
    assert found.path == tmp_path / "run" / "snapshot.json"
    assert not list(tmp_path.rglob("*.partial"))


def test_no_snapshot_anywhere(tmp_path: Path) -> None:
    assert newest_snapshot({"S3_TO_WISTIA_LOCAL_DIR": str(tmp_path)}) is None
