"""The pure parts of the S3 Batch Operations stand-in: key encoding, CSV manifests, the
generator's filters, the event sent, how an answer is read, the failure threshold and the
report's rows, and which s3control requests are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, unquote_plus

import pytest

from local_stack.batch_control import manifest_from_request, operation_from_request
from local_stack.batch_manifest import (
    ManifestEntry,
    ManifestError,
    ObjectFilter,
    encode_key,
    listing_prefixes,
    parse_manifest,
)
from local_stack.batch_operations import (
    CsvManifest,
    GeneratedManifest,
    InvalidJobRequest,
    LambdaInvoke,
    RunnerSettings,
    TaskResult,
    function_error,
    handler_for,
    interpret_answer,
    task_event,
    threshold_reached,
)
from local_stack.batch_report import report_row

AWKWARD_KEYS = [
    "plain.mp4",
    "with space.mp4",
    "plus+sign.mp4",
    "percent%20literal.mp4",
    "100% done.mp4",
    "ünïcødé/日本語 ファイル.mp4",
    "folder/sub folder/a+b (1).MOV",
    "query?and#hash&amp;=.mp4",
    "emoji 🎬.mp4",
]
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:backfill"
ENTRY = ManifestEntry("media-bucket", "videos/a%20b.mp4", None)


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_an_encoded_key_decodes_back_with_or_without_plus_as_space(key: str) -> None:
    encoded = encode_key(key)
    assert unquote_plus(encoded) == key
    assert unquote(encoded) == key
    assert " " not in encoded and "+" not in encoded


def test_encoding_keeps_slashes_and_escapes_what_url_decoding_would_change() -> None:
    assert encode_key("a b+c%d/é.mp4") == "a%20b%2Bc%25d/%C3%A9.mp4"


def test_a_two_column_manifest_gives_bucket_and_key_as_written() -> None:
    lines = ["media-bucket,object%20key%20with%20spaces", "media-bucket,photos/a.jpg", ""]
    assert list(parse_manifest(lines, ("Bucket", "Key"))) == [
        ManifestEntry("media-bucket", "object%20key%20with%20spaces", None),
        ManifestEntry("media-bucket", "photos/a.jpg", None),
    ]


def test_a_manifest_with_version_ids_and_ignored_columns_follows_its_fields() -> None:
    lines = ['x,media-bucket,"a,b.mp4",3HL4kqtJlcpXroDTDmJ', "y,media-bucket,c.mp4,null"]
    entries = list(parse_manifest(lines, ("Ignore", "Bucket", "Key", "VersionId")))
    assert entries == [
        ManifestEntry("media-bucket", "a,b.mp4", "3HL4kqtJlcpXroDTDmJ"),
        ManifestEntry("media-bucket", "c.mp4", "null"),
    ]


@pytest.mark.parametrize(
    ("lines", "fields", "complaint"),
    [
        (["b,k,extra"], ("Bucket", "Key"), "row 1 has 3 columns"),
        (["b,k1,v1", "b,k2"], ("Bucket", "Key", "VersionId"), "row 2 has 2 columns"),
        (["b,k1,v1", "b,k2,"], ("Bucket", "Key", "VersionId"), "row 2 has no VersionId"),
        (["b,"], ("Bucket", "Key"), "row 1 has no bucket or no key"),
        (["b,k"], ("Bucket",), "must name Key once"),
        (["b,b,k"], ("Bucket", "Bucket", "Key"), "must name Bucket once"),
        (["b,k"], ("Bucket", "Object"), "unknown manifest field 'Object'"),
    ],
)
def test_a_manifest_s3_would_refuse_is_refused_naming_the_row(
    lines: list[str], fields: tuple[str, ...], complaint: str
) -> None:
    with pytest.raises(ManifestError, match=complaint):
        list(parse_manifest(lines, fields))


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def matches(object_filter: ObjectFilter, key: str = "videos/a.mp4", **what: Any) -> bool:
    listed: dict[str, Any] = {"size": 100, "last_modified": NOW, "storage_class": "STANDARD"}
    listed.update(what)
    return object_filter.matches(key, **listed)


def test_each_generator_filter_must_hold_and_any_entry_of_a_list_may_match() -> None:
    by_name = ObjectFilter(prefixes=("videos/", "clips/"), suffixes=(".mp4", ".mov"))
    assert matches(by_name, "videos/a.mp4")
    assert matches(by_name, "clips/b.mov")
    assert not matches(by_name, "photos/c.mp4")
    assert not matches(by_name, "videos/a.MP4")  # suffixes are case-sensitive
    assert matches(ObjectFilter(substrings=("final",)), "videos/final cut.mp4")
    assert not matches(ObjectFilter(substrings=("final",)), "videos/draft.mp4")
    sized = ObjectFilter(size_greater_than=0, size_less_than=1000)
    assert matches(sized, size=1)
    assert not matches(sized, size=0)
    assert not matches(sized, size=1000)
    archived = ObjectFilter(storage_classes=("STANDARD", "STANDARD_IA"))
    assert matches(archived, storage_class="STANDARD_IA")
    assert not matches(archived, storage_class="GLACIER")


def test_created_after_and_before_are_strict_and_a_naive_time_is_utc() -> None:
    window = ObjectFilter(created_after=NOW - timedelta(days=1), created_before=NOW)
    assert matches(window, last_modified=NOW - timedelta(hours=1))
    assert not matches(window, last_modified=NOW)
    assert not matches(window, last_modified=NOW - timedelta(days=1))
    naive = ObjectFilter(created_before=datetime(2026, 3, 1, 12, 0))
    assert matches(naive, last_modified=NOW - timedelta(seconds=1))
    assert not matches(naive, last_modified=NOW)


def test_an_unknown_storage_class_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown storage class 'GLACIAL'"):
        ObjectFilter(storage_classes=("GLACIAL",))


def test_overlapping_prefixes_are_listed_once() -> None:
    assert listing_prefixes(()) == [""]
    assert listing_prefixes(("a/", "a/b/", "c", "a/")) == ["a/", "c"]
    assert listing_prefixes(("x", "")) == [""]


def test_the_schema_1_0_event_names_the_bucket_by_arn() -> None:
    event = task_event(LambdaInvoke(FUNCTION), "job-1", "task-1", ENTRY, "inv-1")
    assert event == {
        "invocationSchemaVersion": "1.0",
        "invocationId": "inv-1",
        "job": {"id": "job-1"},
        "tasks": [
            {
                "taskId": "task-1",
                "s3Key": "videos/a%20b.mp4",
                "s3VersionId": None,
                "s3BucketArn": "arn:aws:s3:::media-bucket",
            }
        ],
    }


def test_the_schema_2_0_event_names_the_bucket_and_carries_the_user_arguments() -> None:
    operation = LambdaInvoke(FUNCTION, "2.0", {"project_id": "abc123", "low_priority": "true"})
    entry = ENTRY._replace(version_id="v1")
    event = task_event(operation, "job-1", "task-1", entry, "inv-1")
    assert event == {
        "invocationSchemaVersion": "2.0",
        "invocationId": "inv-1",
        "job": {"id": "job-1", "userArguments": {"project_id": "abc123", "low_priority": "true"}},
        "tasks": [
            {
                "taskId": "task-1",
                "s3Key": "videos/a%20b.mp4",
                "s3VersionId": "v1",
                "s3Bucket": "media-bucket",
            }
        ],
    }
    bare = task_event(LambdaInvoke(FUNCTION, "2.0"), "job-1", "task-1", ENTRY, "inv-1")
    assert bare["job"] == {"id": "job-1"}


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"version": "1.0", "user_arguments": {"a": "b"}}, "need InvocationSchemaVersion 2.0"),
        ({"version": "3.0"}, "InvocationSchemaVersion must be one of"),
        ({"version": "2.0", "user_arguments": {f"k{n}": "v" for n in range(11)}}, "at most 10"),
        ({"version": "2.0", "user_arguments": {"k" * 65: "v"}}, "1-64 chars"),
        ({"version": "2.0", "user_arguments": {"k": "v" * 1025}}, "at most 1024"),
        ({"version": "2.0", "user_arguments": {"k": 1}}, "at most 1024"),
    ],
)
def test_lambda_invoke_refuses_what_s3_refuses(arguments: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidJobRequest, match=complaint):
        LambdaInvoke(
            FUNCTION,
            invocation_schema_version=arguments["version"],
            user_arguments=arguments.get("user_arguments", {}),
        )


def test_the_function_name_comes_from_its_arn_with_or_without_a_qualifier() -> None:
    assert LambdaInvoke(FUNCTION).function_name == "backfill"
    assert LambdaInvoke(f"{FUNCTION}:live").function_name == "backfill"
    assert LambdaInvoke("backfill").function_name == "backfill"
    handler = lambda event, context: None  # noqa: E731
    assert handler_for({"backfill": handler}, f"{FUNCTION}:live") is handler
    with pytest.raises(InvalidJobRequest, match="no local handler"):
        handler_for({"other": handler}, FUNCTION)


EVENT = task_event(LambdaInvoke(FUNCTION), "job-1", "task-1", ENTRY, "inv-1")


def answer(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "invocationSchemaVersion": "1.0",
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": "inv-1",
        "results": [{"taskId": "task-1", "resultCode": "Succeeded", "resultString": "SUBMITTED"}],
    }
    document.update(changes)
    return document


def result(**changes: Any) -> list[dict[str, Any]]:
    return [{"taskId": "task-1", "resultCode": "Succeeded", "resultString": "ok", **changes}]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (answer(), TaskResult("Succeeded", "SUBMITTED")),
        (answer(results=result(resultCode="TemporaryFailure", resultString="429")),
         TaskResult("TemporaryFailure", "429")),
        (answer(results=result(resultCode="PermanentFailure", resultString=None)),
         TaskResult("PermanentFailure", "")),
        (answer(results=[], treatMissingKeysAs="Succeeded"),
         TaskResult("Succeeded", "no result for task task-1: treatMissingKeysAs Succeeded")),
    ],
)  # fmt: skip
def test_a_valid_answer_gives_its_result(given: Any, expected: TaskResult) -> None:
    assert interpret_answer(given, EVENT) == expected


def test_no_result_and_no_treat_missing_keys_as_is_a_permanent_failure() -> None:
    given = answer(results=[])
    del given["treatMissingKeysAs"]
    assert interpret_answer(given, EVENT).code == "PermanentFailure"


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        (None, "expected a JSON object, got null"),
        ([answer()], "expected a JSON object"),
        (answer(invocationId="other"), "invocationId is 'other'"),
        (answer(invocationSchemaVersion="2.0"), "invocationSchemaVersion is '2.0'"),
        (answer(treatMissingKeysAs="Ignore"), "treatMissingKeysAs 'Ignore'"),
        (answer(results={"taskId": "task-1"}), "results must be a list"),
        (answer(results=result() * 2), "2 results for one task"),
        (answer(results=["Succeeded"]), "a result must be a JSON object"),
        (answer(results=result(taskId="task-2")), "result for task 'task-2'"),
        (answer(results=result(resultCode="Success")), "resultCode 'Success'"),
        (answer(results=result(resultString=42)), "resultString must be a string"),
    ],
)
def test_a_malformed_answer_is_a_permanent_failure_saying_why(given: Any, complaint: str) -> None:
    code, message = interpret_answer(given, EVENT)
    assert code == "PermanentFailure"
    assert message.startswith("Lambda returned an invalid response: ")
    assert complaint in message


def test_a_function_error_is_worded_as_s3_reports_it() -> None:
    assert function_error("RuntimeError", 'Wistia said "no"') == TaskResult(
        "PermanentFailure",
        'Lambda returned function error: {"errorMessage":"Wistia said \\"no\\"",'
        '"errorType":"RuntimeError"}',
    )


def test_the_job_fails_only_past_half_failed_after_a_thousand_tasks() -> None:
    settings = RunnerSettings()
    assert not threshold_reached(999, 999, settings)
    assert not threshold_reached(1000, 500, settings)
    assert threshold_reached(1000, 501, settings)
    assert threshold_reached(5000, 2501, settings)
    assert not threshold_reached(5000, 2500, settings)


def test_redrives_back_off_exponentially_up_to_the_cap() -> None:
    settings = RunnerSettings(retry_delay=1.0, max_retry_delay=5.0)
    for attempts in (1, 2, 3):
        nominal = 2.0 ** (attempts - 1)
        assert nominal / 2 <= settings.redrive_delay(attempts) <= nominal
    assert 2.5 <= settings.redrive_delay(10) <= 5.0


def test_report_rows_put_the_http_status_before_the_error_code_as_s3_does() -> None:
    assert report_row(ENTRY, "Succeeded", "SUBMITTED") == [
        "media-bucket", "videos/a%20b.mp4", "", "succeeded", "200", "", "SUBMITTED",
    ]  # fmt: skip
    failed = report_row(ENTRY._replace(version_id="v1"), "PermanentFailure", "video limit")
    assert failed == [
        "media-bucket", "videos/a%20b.mp4", "v1", "failed", "200", "PermanentFailure",
        "video limit",
    ]  # fmt: skip


CSV_REQUEST = {
    "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
    "Location": {"ObjectArn": "arn:aws:s3:::manifests/in/list.csv", "ETag": "abc"},
}


def test_an_s3control_csv_manifest_request_names_its_object_and_etag() -> None:
    assert manifest_from_request(CSV_REQUEST, None) == CsvManifest(
        bucket="manifests", key="in/list.csv", fields=("Bucket", "Key"), etag="abc"
    )


def test_an_s3control_generator_request_becomes_its_filters() -> None:
    request = {
        "S3JobManifestGenerator": {
            "SourceBucket": "arn:aws:s3:::media",
            "EnableManifestOutput": False,
            "Filter": {
                "KeyNameConstraint": {"MatchAnyPrefix": ["videos/"], "MatchAnySuffix": [".mp4"]},
                "CreatedBefore": NOW,
                "ObjectSizeGreaterThanBytes": 0,
                "MatchAnyStorageClass": ["STANDARD"],
            },
        }
    }
    assert manifest_from_request(None, request) == GeneratedManifest(
        source_bucket="media",
        filter=ObjectFilter(
            prefixes=("videos/",),
            suffixes=(".mp4",),
            created_before=NOW,
            size_greater_than=0,
            storage_classes=("STANDARD",),
        ),
    )


@pytest.mark.parametrize(
    ("manifest", "generator", "complaint"),
    [
        (CSV_REQUEST, {"S3JobManifestGenerator": {}}, "exactly one of"),
        (None, None, "exactly one of"),
        ({**CSV_REQUEST, "Spec": {"Format": "S3InventoryReport_CSV_20161130"}}, None,
         "reads S3BatchOperations_CSV_20180820 manifests"),
        ({**CSV_REQUEST, "Location": {"ObjectArn": "arn:aws:s3:::m/k"}}, None, "needs its ETag"),
        ({**CSV_REQUEST, "Location": {"ObjectArn": "m/k", "ETag": "e"}}, None,
         "expected an object ARN"),
        (None, {"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::m"}},
         "needs EnableManifestOutput"),
        (None, {"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::m",
                                           "EnableManifestOutput": True}},
         "needs a ManifestOutputLocation"),
        (None, {"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::m",
                                           "EnableManifestOutput": False,
                                           "Filter": {"EligibleForReplication": True}}},
         "does not filter on"),
    ],
)  # fmt: skip
def test_s3control_manifest_requests_s3_would_refuse_are_refused(
    manifest: Any, generator: Any, complaint: str
) -> None:
    with pytest.raises(InvalidJobRequest, match=complaint):
        manifest_from_request(manifest, generator)


def test_only_lambda_invoke_operations_are_run() -> None:
    with pytest.raises(InvalidJobRequest, match="LambdaInvoke jobs only"):
        operation_from_request({"S3PutObjectTagging": {"TagSet": []}})
    assert operation_from_request(
        {"LambdaInvoke": {"FunctionArn": FUNCTION, "InvocationSchemaVersion": "2.0"}}
    ) == LambdaInvoke(FUNCTION, "2.0")
