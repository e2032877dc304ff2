"""What the CLI prints: never a secret or a signature, JSON that scripts can read, plain
tab-separated rows in a pipe."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from s3_to_wistia.cli.output import Output, human_size, scrub, to_json
from s3_to_wistia.cli.resources import default_stack_name, environment_values

PRESIGNED = (
    "https://media.s3.amazonaws.com/clip.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLE&X-Amz-Signature=0123456789abcdef"
)


def test_scrub_masks_url_credentials_and_bearer_tokens() -> None:
    shown = scrub(f"import of {PRESIGNED} failed; sent Authorization: Bearer s3cr3t-token")

    assert "AKIAEXAMPLE" not in shown
    assert "IQoJb3JpZ2luX2VjEXAMPLE" not in shown
    assert "0123456789abcdef" not in shown
    assert "s3cr3t-token" not in shown
    assert "https://media.s3.amazonaws.com/clip.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256" in shown
    assert "X-Amz-Expires=3600" in shown


def test_a_hidden_secret_is_masked_as_a_whole_word_only() -> None:
    shown = scrub("the token abc is abc, not abcdef", secrets=["abc"])

    assert shown == "the token [hidden] is [hidden], not abcdef"


def test_output_masks_the_token_once_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output()
    out.hide("0f0e0d0c0b0a")

    out.say("token 0f0e0d0c0b0a")
    out.error("Wistia said 0f0e0d0c0b0a is wrong")
    out.result({"token": "0f0e0d0c0b0a"})

    captured = capsys.readouterr()
    assert "0f0e0d0c0b0a" not in captured.out + captured.err
    assert captured.err == "s3-to-wistia: error: Wistia said [hidden] is wrong\n"


def test_json_mode_prints_only_the_document_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output(json_mode=True)

    out.say("human words")
    out.table(["a"], [["1"]])
    out.note("a note")
    out.result({"count": Decimal("3"), "progress": Decimal("0.5")})

    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"count": 3, "progress": 0.5}
    assert captured.err == "a note\n"


def test_to_json_writes_what_dynamodb_and_dataclasses_hold() -> None:
    document = {
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "path": Path("/media/x.mp4"),
        "size": Decimal("1073741824"),
        "states": ("SUBMITTED",),
    }

    assert json.loads(to_json(document)) == {
        "at": "2026-01-02T03:04:05+00:00",
        "path": "/media/x.mp4",
        "size": 1073741824,
        "states": ["SUBMITTED"],
    }


def test_tables_are_tab_separated_in_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    Output().table(["key", "status"], [["a b.mp4", "SUBMITTED"], ["c\td.mp4", None]])

    assert capsys.readouterr().out == "key\tstatus\na b.mp4\tSUBMITTED\nc d.mp4\t\n"


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1536, "1.5 KiB"),
        (3 << 20, "3.0 MiB"),
        (1 << 30, "1.0 GiB"),
    ],
)
def test_human_size(size: int, shown: str) -> None:
    assert human_size(size) == shown


def test_the_default_stack_is_samconfigs(tmp_path: Path) -> None:
    (tmp_path / "samconfig.toml").write_text(
        'version = 0.1\n[default.global.parameters]\nstack_name = "media-prod"\n'
    )

    assert default_stack_name([tmp_path]) == "media-prod"
    assert default_stack_name([tmp_path / "elsewhere"]) == "s3-to-wistia"


def test_local_reads_your_own_stack_from_the_functions_variables() -> None:
    values = environment_values(
        {
            "WISTIA_TOKEN_SECRET": "secret-1",
            "IMPORTS_TABLE_NAME": " table-1 ",
            "WISTIA_UPLOAD_URL": "http://127.0.0.1:8089/",
            "DEAD_LETTER_QUEUE_URL": "",
        }
    )

    assert values == {
        "token_secret": "secret-1",
        "table": "table-1",
        "upload_url": "http://127.0.0.1:8089/",
    }
