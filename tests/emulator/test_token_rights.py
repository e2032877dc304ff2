"""Contract: each API token has one permission level, as Wistia's do. "upload" (Upload media)
uploads and nothing else, "read" (Read all data) reads the Data API, "full" (Read, update &
delete anything) does everything. Too few rights get 401, like a wrong token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from wistia_emulator import EmulatorControl, WistiaEmulator
from wistia_emulator.testing import (
    HTTP,
    EmulatorProcess,
    bearer,
    json_of,
    mp4_bytes,
    upload_bytes,
)

TOKENS = {"uploader": "upload", "reader": "read", "owner": "full"}


@pytest.fixture
def emu() -> Iterator[WistiaEmulator]:
    with WistiaEmulator(tokens=TOKENS, processing_delay=0.01) as emulator:
        yield emulator


def ready_media(emu: WistiaEmulator, name: str = "clip.mp4", owner: str = "owner") -> str:
    response = upload_bytes(emu.url, name, mp4_bytes(name.encode()), token=owner)
    assert response.status == 200
    assert emu.wait_until_settled(5)
    return str(json_of(response)["hashed_id"])


def call(
    emu: WistiaEmulator, method: str, path: str, token: str, payload: Any = None
) -> urllib3.BaseHTTPResponse:
    headers = {**bearer(token), "Content-Type": "application/json"}
    body = None if payload is None else json.dumps(payload).encode()
    return HTTP.request(method, emu.url + path, body=body, headers=headers)


def what_each_token_may_do(emu: WistiaEmulator, token: str, owner: str = "owner") -> dict[str, int]:
    """The status of one call of each kind with `token` (`owner` prepares the medias)."""
    original, replacement, doomed = (ready_media(emu, f"{n}.mp4", owner) for n in range(3))
    job = json_of(call(emu, "PUT", "modern/medias/archive", owner, {"hashed_ids": [doomed]}))
    job_id = job["background_job_status"]["id"]
    return {
        "upload": upload_bytes(emu.url, "new.mp4", mp4_bytes(), token=token).status,
        "show": call(emu, "GET", f"v1/medias/{original}.json", token).status,
        "list": call(emu, "GET", f"v1/medias.json?hashed_ids[]={original}", token).status,
        "projects": call(emu, "GET", "v1/projects.json", token).status,
        "job status": call(emu, "GET", f"modern/background_job_status/{job_id}", token).status,
        "swap": call(
            emu,
            "PUT",
            f"modern/medias/{original}/swap",
            token,
            {"replacement_media_id": replacement},
        ).status,
        "archive": call(
            emu, "PUT", "modern/medias/archive", token, {"hashed_ids": [replacement]}
        ).status,
        "delete": call(emu, "DELETE", f"v1/medias/{doomed}.json", token).status,
    }


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("uploader", {"upload": 200, "show": 401, "list": 401, "projects": 401,
                      "job status": 401, "swap": 401, "archive": 401, "delete": 401}),
        ("reader", {"upload": 401, "show": 200, "list": 200, "projects": 200,
                    "job status": 200, "swap": 401, "archive": 401, "delete": 401}),
        ("owner", {"upload": 200, "show": 200, "list": 200, "projects": 200,
                   "job status": 200, "swap": 200, "archive": 200, "delete": 200}),
        ("stranger", {"upload": 401, "show": 401, "list": 401, "projects": 401,
                      "job status": 401, "swap": 401, "archive": 401, "delete": 401}),
    ],
)  # fmt: skip
def test_each_permission_level_allows_what_wistia_allows(
    emu: WistiaEmulator, token: str, expected: dict[str, int]
) -> None:
    assert what_each_token_may_do(emu, token) == expected


def test_a_refused_change_changes_nothing(emu: WistiaEmulator) -> None:
    hashed_id = ready_media(emu)

    refused = call(emu, "DELETE", f"v1/medias/{hashed_id}.json", "reader")

    assert refused.status == 401
    assert refused.headers["Content-Type"].startswith("text/html")  # the v1 API's 401 page
    assert [m["deleted"] for m in emu.medias()] == [False]


def test_the_newer_api_says_why_in_json(emu: WistiaEmulator) -> None:
    original, replacement = ready_media(emu, "a.mp4"), ready_media(emu, "b.mp4")
    swap = f"modern/medias/{original}/swap"

    short = call(emu, "PUT", swap, "reader", {"replacement_media_id": replacement})
    wrong = call(emu, "PUT", swap, "nobody", {"replacement_media_id": replacement})

    assert (short.status, json_of(short)["code"]) == (401, "unauthorized_scope")
    assert (wrong.status, json_of(wrong)["code"]) == (401, "unauthorized_credentials")
    assert emu.jobs() == []


def test_plain_tokens_keep_full_rights(wistia_emulator: WistiaEmulator) -> None:
    # The fixture's emulator is built with tokens=("test-token",), as before levels existed.
    statuses = what_each_token_may_do(wistia_emulator, "test-token", owner="test-token")

    assert set(statuses.values()) == {200}


def test_rights_change_at_run_time_in_process_and_through_control(emu: WistiaEmulator) -> None:
    hashed_id = ready_media(emu)
    path = f"v1/medias/{hashed_id}.json"

    emu.set_tokens("owner", rights={"reader": "upload"})
    reader_in_process = call(emu, "GET", path, "reader").status
    EmulatorControl(emu.url).set_tokens(rights={"reader": "read", "owner": "upload"})
    reader_by_control = call(emu, "GET", path, "reader").status
    owner_by_control = call(emu, "GET", path, "owner").status

    assert (reader_in_process, reader_by_control, owner_by_control) == (401, 200, 401)


@pytest.mark.parametrize("rights", [{"t": "admin"}, {"": "full"}])
def test_unknown_rights_are_refused(rights: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        WistiaEmulator(tokens=rights)


def test_the_cli_takes_a_level_after_the_token() -> None:
    with EmulatorProcess(
        "--port", "0", "--quiet", "--processing-delay", "0.01",
        "--token", "owner", "--token", "reader:read", "--token", "uploader:upload",
        "--token", "with:colon",
    ) as emulator:  # fmt: skip
        statuses = {
            token: (
                upload_bytes(emulator.url, "a.mp4", mp4_bytes(), token=token).status,
                HTTP.request("GET", emulator.url + "v1/medias.json", headers=bearer(token)).status,
            )
            for token in ("owner", "reader", "uploader", "with:colon", "reader:read")
        }

    assert statuses == {
        "owner": (200, 200),
        "reader": (401, 200),
        "uploader": (200, 401),
        "with:colon": (200, 200),  # not a level: the whole text is a full-rights token
        "reader:read": (401, 401),
    }
