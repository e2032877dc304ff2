"""The pure decisions: skipping, reading Wistia's answers, backoff."""

from __future__ import annotations

from decimal import Decimal

import pytest

from s3_to_wistia.model import WistiaAnswer
from s3_to_wistia.rules import (
    judge,
    media_name,
    parse_retry_after,
    project_for,
    retry_delay,
    skip_reason_for_key,
    skip_reason_for_size,
    without_query,
)

MEDIA = frozenset({"mp4", "mov"})
LIMIT = "This account has exceeded its video limit. Please upgrade to upload more videos."


def answer(status: int, body: str, content_type: str = "application/json") -> WistiaAnswer:
    return WistiaAnswer(status, body.encode(), content_type, None)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("a/b/", "folder marker (key ends with '/')"),
        ("clip.MP4", None),
        ("clip.Mov", None),
        ("notes.txt", "extension 'txt' is not in the import filter"),
        ("README", "extension 'none' is not in the import filter"),
        ("dir.mp4/file", "extension 'none' is not in the import filter"),
    ],
)
def test_skip_reason_for_key(key: str, reason: str | None) -> None:
    assert skip_reason_for_key(key, MEDIA) == reason


def test_no_filter_imports_every_key_but_folders() -> None:
    assert skip_reason_for_key("anything.bin", None) is None
    assert skip_reason_for_key("folder/", None) is not None


def test_zero_bytes_are_skipped_and_unknown_sizes_are_not() -> None:
    assert skip_reason_for_size(0) == "zero-byte object"
    assert skip_reason_for_size(None) is None
    assert skip_reason_for_size(1) is None


def test_media_name_prefers_metadata_and_fits_wistia_limit() -> None:
    assert media_name("a/b/clip one.mp4", None) == "clip one.mp4"
    assert media_name("a/clip.mp4", "  Keynote  ") == "Keynote"
    assert len(media_name("x/" + "n" * 400 + ".mp4", None)) == 255


def test_without_query_drops_the_signature() -> None:
    url = "https://b.s3.amazonaws.com/k%20x.mp4?X-Amz-Signature=abc&X-Amz-Credential=AKIA"

    assert without_query(url) == "https://b.s3.amazonaws.com/k%20x.mp4"


def test_a_media_object_is_accepted_with_decimals_for_dynamodb() -> None:
    verdict = judge(answer(200, '{"hashed_id": "abc123defg", "id": 7, "progress": 0.5}'))

    assert verdict.accepted
    assert verdict.body["progress"] == Decimal("0.5")


@pytest.mark.parametrize(
    "body",
    [f'{{"error": "{LIMIT}"}}', f'{{"error": {{"code": "upload_failed", "detail": "{LIMIT}"}}}}'],
)
def test_video_limit_in_either_body_shape_is_permanent(body: str) -> None:
    verdict = judge(answer(400, body))

    assert not verdict.accepted and not verdict.retryable
    assert verdict.video_limit
    assert verdict.reason == LIMIT


@pytest.mark.parametrize(
    ("status", "body", "content_type", "retryable", "words"),
    [
        (401, "<html>Unauthorized</html>", "text/html", False, "token"),
        (403, "", "text/html", False, "403"),
        (404, '{"error": "Not found"}', "application/json", False, "Not found (404)"),
        (400, '{"error": "Project not found"}', "application/json", False, "Project not found"),
        (400, "<html>bad</html>", "text/html", False, "Wistia answered 400"),
        (429, "Rate limit exceeded", "text/plain", True, "rate limit"),
        (500, "oops", "text/plain", True, "unavailable (500)"),
        (503, "", "text/html", True, "unavailable (503)"),
        (200, "<html>maintenance</html>", "text/html", True, "without a media object"),
        (200, '{"hashed_id": ', "application/json", True, "without a media object"),
    ],
)
def test_answers_are_classified(
    status: int, body: str, content_type: str, retryable: bool, words: str
) -> None:
    verdict = judge(answer(status, body, content_type))

    assert not verdict.accepted
    assert verdict.retryable is retryable
    assert words in verdict.reason


def test_retry_after_as_seconds_or_http_date() -> None:
    assert parse_retry_after("7", now=0) == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None
    assert parse_retry_after(" 1.5 ", now=0) == 1.5


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "-5", "1e9", "", "5 s"])
def test_a_retry_after_that_is_no_number_of_seconds_is_ignored(value: str) -> None:
    # "\u00b2" (superscript two: byte 0xB2 of a latin-1 header) passed str.isdigit() and
    # then broke float(), raising out of the import.
    assert parse_retry_after(value, now=0) is None


def test_backoff_grows_is_capped_and_never_undercuts_retry_after() -> None:
    assert retry_delay(1, None, 1.0) == 0.5
    assert retry_delay(4, None, 1.0) == 4.0
    assert retry_delay(30, None, 1.0) == 20.0
    assert retry_delay(3, None, 0.0) == 0.0  # full jitter
    assert retry_delay(1, 5.0, 0.0) == 5.0
    assert 5.0 <= retry_delay(1, 5.0, 0.9) <= 5.5


def test_project_metadata_beats_the_longest_prefix_which_beats_the_default() -> None:
    project_map = (("a/b/", "deep"), ("a/", "shallow"))

    assert project_for("a/b/c.mp4", None, project_map, "default") == "deep"
    assert project_for("a/c.mp4", None, project_map, "default") == "shallow"
    assert project_for("z.mp4", None, project_map, "default") == "default"
    assert project_for("z.mp4", None, (), None) is None
    assert project_for("a/b/c.mp4", " mine ", project_map, "default") == "mine"
