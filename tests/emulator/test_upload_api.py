"""Contract: `POST /` answers like upload.wistia.com (the seed document and today's API)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from wistia_emulator import WistiaEmulator
from wistia_emulator.testing import (
    HTTP,
    SourceServer,
    bearer,
    import_url,
    json_of,
    mp4_bytes,
    upload_bytes,
)

TOKEN = "test-token"
HASHED_ID = re.compile(r"^[a-z0-9]{10}$")
ISO_8601_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
# Word for word from the seed document: clients match on it.
VIDEO_LIMIT_MESSAGE = (
    "This account has exceeded its video limit. Please upgrade to upload more videos."
)
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


@pytest.fixture(params=["legacy", "current"])
def styled_emulator(request: pytest.FixtureRequest) -> Iterator[WistiaEmulator]:
    """An emulator per error style: 400 bodies differ, nothing else does."""
    with WistiaEmulator(tokens=(TOKEN,), processing_delay=0.01, error_style=request.param) as emu:
        yield emu


def error_message(emu: WistiaEmulator, body: Any) -> str:
    """The message of a 400 body, checking it has the shape of the emulator's error style."""
    if emu.error_style == "legacy":
        assert isinstance(body["error"], str)
        return body["error"]
    assert body["error"]["code"] == "upload_failed"
    assert isinstance(body["error"]["detail"], str)
    return body["error"]["detail"]


def curl(*arguments: str, tmp_path: Path) -> tuple[int, str, bytes]:
    """Run curl as the seed shows it; its status, content type and body."""
    assert CURL is not None
    body_file = tmp_path / "curl-body"
    done = subprocess.run(  # noqa: S603 - fixed arguments, loopback only
        [CURL, "-s", "-o", str(body_file), "-w", "%{http_code} %{content_type}", *arguments],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    status, _, content_type = done.stdout.partition(" ")
    return int(status), content_type, body_file.read_bytes()


# --- the seed's own cURL examples -----------------------------------------------------------


@needs_curl
def test_seed_curl_multipart_upload_with_api_password(
    wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = tmp_path / "dramatic_squirrel.mp4"
    clip.write_bytes(mp4_bytes(b"\x00\x01squirrel" * 1000))

    status, content_type, body = curl(
        "-F", f"api_password={TOKEN}", "-F", f"file=@{clip}", wistia_emulator.url,
        tmp_path=tmp_path,
    )  # fmt: skip

    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert b'"name": "dramatic_squirrel.mp4"' in body
    assert wistia_emulator.wait_until_settled(5)
    [media] = wistia_emulator.medias()
    assert media["status"] == "ready"
    assert media["bytes"] == clip.stat().st_size
    assert media["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert wistia_emulator.requests()[-1]["auth"] == "api_password"


@needs_curl
def test_seed_curl_form_import_with_api_password(
    wistia_emulator: WistiaEmulator, source: SourceServer, tmp_path: Path
) -> None:
    movie = mp4_bytes(b"movie bytes")
    url = source.add("/clip.mp4", movie)

    status, content_type, _ = curl(
        "-d", f"api_password={TOKEN}&url={url}", wistia_emulator.url, tmp_path=tmp_path
    )

    assert (status, content_type) == (200, "application/json; charset=utf-8")
    assert wistia_emulator.wait_until_settled(5)
    [media] = wistia_emulator.medias()
    assert (media["status"], media["source_url"], media["bytes"]) == ("ready", url, len(movie))


@needs_curl
def test_seed_curl_access_token_in_the_query_string(
    wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"mov")

    status, _, _ = curl(
        "-F", f"file=@{clip}", f"{wistia_emulator.url}?access_token={TOKEN}", tmp_path=tmp_path
    )

    assert status == 200
    assert wistia_emulator.requests()[-1]["auth"] == "access_token"


@needs_curl
def test_curl_with_a_wrong_password_gets_401_html(
    wistia_emulator: WistiaEmulator, tmp_path: Path
) -> None:
    status, content_type, body = curl(
        "-d", "api_password=nope&url=http://127.0.0.1/x.mp4", wistia_emulator.url,
        tmp_path=tmp_path,
    )  # fmt: skip

    assert (status, content_type) == (401, "text/html; charset=utf-8")
    assert b"<html>" in body


# --- authentication ------------------------------------------------------------------------


def post_import_with_credential(emu: WistiaEmulator, placement: str, token: str) -> tuple[int, str]:
    """POST an import presenting `token` in one of the places Wistia reads it from."""
    form = {"url": "http://127.0.0.1:9/clip.mp4"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    query = ""
    if placement == "bearer":
        headers.update(bearer(token))
    elif placement.endswith("_query"):
        query = "?" + urlencode({placement.removesuffix("_query"): token})
    else:
        form[placement.removesuffix("_body")] = token
    response = HTTP.request("POST", emu.url + query, body=urlencode(form), headers=headers)
    return response.status, response.headers["Content-Type"]


PLACEMENTS = ["bearer", "access_token_query", "access_token_body", "api_password_query",
              "api_password_body"]  # fmt: skip


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_each_way_of_sending_the_token_is_accepted(
    wistia_emulator: WistiaEmulator, placement: str
) -> None:
    status, _ = post_import_with_credential(wistia_emulator, placement, TOKEN)

    assert status == 200
    record = wistia_emulator.requests()[-1]
    assert record["auth"] == placement.removesuffix("_query").removesuffix("_body")
    assert TOKEN not in repr(record)  # secrets are redacted from the log


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_a_wrong_token_gets_401_html_and_creates_nothing(
    wistia_emulator: WistiaEmulator, placement: str
) -> None:
    status, content_type = post_import_with_credential(wistia_emulator, placement, "wrong")

    assert (status, content_type) == (401, "text/html; charset=utf-8")
    assert wistia_emulator.medias() == []


def test_a_missing_token_gets_401_html(wistia_emulator: WistiaEmulator) -> None:
    response = upload_bytes(wistia_emulator.url, "clip.mp4", b"data", token=None)

    assert response.status == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert b"401" in response.data
    assert wistia_emulator.medias() == []
    assert wistia_emulator.requests()[-1]["auth"] is None


def test_multipart_api_password_after_the_file_part_is_accepted(
    wistia_emulator: WistiaEmulator,
) -> None:
    # Field order is the client's choice; the credential may come after the file.
    boundary = "xYzZY"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="late.mp4"\r\n\r\n'
        "bytes\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="api_password"\r\n\r\n'
        f"{TOKEN}\r\n"
        f"--{boundary}--\r\n"
    )
    response = HTTP.request(
        "POST",
        wistia_emulator.url,
        body=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )

    assert response.status == 200
    assert json_of(response)["name"] == "late.mp4"


# --- the 200 answer ------------------------------------------------------------------------


def test_the_200_answer_has_the_seed_shape_and_no_status(wistia_emulator: WistiaEmulator) -> None:
    answer = json_of(upload_bytes(wistia_emulator.url, "dramatic_squirrel.mp4", b"squirrel"))

    assert set(answer) == {"id", "name", "type", "created", "updated", "duration", "hashed_id",
                           "progress", "thumbnail"}  # fmt: skip
    assert isinstance(answer["id"], int)
    assert answer["name"] == "dramatic_squirrel.mp4"
    assert answer["type"] == "Video"
    assert ISO_8601_UTC.match(answer["created"]) and ISO_8601_UTC.match(answer["updated"])
    assert isinstance(answer["duration"], float)
    assert HASHED_ID.match(answer["hashed_id"])
    assert answer["progress"] == 0.0
    assert set(answer["thumbnail"]) == {"url", "width", "height"}


def test_hashed_ids_are_unique(wistia_emulator: WistiaEmulator) -> None:
    answers = [json_of(upload_bytes(wistia_emulator.url, f"{n}.mp4", b"x")) for n in range(30)]

    assert len({a["hashed_id"] for a in answers}) == 30
    assert len({a["id"] for a in answers}) == 30


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("clip.mp4", "application/octet-stream", "Video"),
        ("CLIP.MOV", "application/octet-stream", "Video"),
        ("song.mp3", "application/octet-stream", "Audio"),
        ("no-extension", "video/mp4", "Video"),
        ("no-extension", "audio/mpeg", "Audio"),
        ("slides.pdf", "application/pdf", "UnknownType"),
    ],
)
def test_the_media_type_follows_the_file(
    wistia_emulator: WistiaEmulator, filename: str, content_type: str, expected: str
) -> None:
    answer = json_of(upload_bytes(wistia_emulator.url, filename, b"x", content_type=content_type))

    assert answer["type"] == expected


def test_optional_parameters_are_stored(wistia_emulator: WistiaEmulator) -> None:
    response = upload_bytes(
        wistia_emulator.url,
        "clip.mp4",
        b"x",
        name="Launch video",
        description="<b>big</b> day",
        contact_id="42",
        low_priority="true",
    )

    assert response.status == 200
    [media] = wistia_emulator.medias()
    assert media["name"] == "Launch video"
    assert media["description"] == "<b>big</b> day"
    assert media["contact_id"] == 42
    assert media["low_priority"] is True


def test_parameters_may_come_in_the_query_string_and_the_body_wins(
    wistia_emulator: WistiaEmulator,
) -> None:
    query = urlencode({"name": "from query", "description": "query description"})

    response = HTTP.request(
        "POST",
        f"{wistia_emulator.url}?{query}",
        fields={"name": "from body", "file": ("clip.mp4", b"x")},
        headers=bearer(),
    )

    assert response.status == 200
    [media] = wistia_emulator.medias()
    assert (media["name"], media["description"]) == ("from body", "query description")


def test_an_import_with_every_parameter_in_the_query_string(
    wistia_emulator: WistiaEmulator,
) -> None:
    query = urlencode({"access_token": TOKEN, "url": "http://127.0.0.1:9/in-query.mp4"})

    response = HTTP.request("POST", f"{wistia_emulator.url}?{query}")

    assert response.status == 200
    assert json_of(response)["name"] == "in-query.mp4"


# --- names and projects --------------------------------------------------------------------


def test_an_import_is_named_after_the_urls_last_segment_percent_decoded(
    wistia_emulator: WistiaEmulator,
) -> None:
    answer = json_of(
        import_url(wistia_emulator.url, "http://127.0.0.1:9/a%2Fb/my%20clip%2Bv2.mp4?sig=1")
    )

    assert answer["name"] == "my clip+v2.mp4"


def test_an_upload_is_named_after_its_file(wistia_emulator: WistiaEmulator) -> None:
    answer = json_of(upload_bytes(wistia_emulator.url, "holiday café.mp4", b"x"))

    assert answer["name"] == "holiday café.mp4"


def test_without_project_id_uploads_go_to_todays_uploads_project(
    wistia_emulator: WistiaEmulator,
) -> None:
    upload_bytes(wistia_emulator.url, "one.mp4", b"1")
    import_url(wistia_emulator.url, "http://127.0.0.1:9/two.mp4")

    [project] = wistia_emulator.projects()
    assert project["name"] == "Uploads_" + datetime.now(UTC).strftime("%Y-%m-%d")
    assert HASHED_ID.match(project["hashed_id"])
    assert {m["project_id"] for m in wistia_emulator.medias()} == {project["hashed_id"]}


def test_an_explicit_project_id_is_used(wistia_emulator: WistiaEmulator) -> None:
    project = wistia_emulator.create_project("Campaign")

    response = upload_bytes(wistia_emulator.url, "one.mp4", b"1", project_id=project["hashed_id"])

    assert response.status == 200
    assert wistia_emulator.medias()[0]["project_id"] == project["hashed_id"]
    assert [p["name"] for p in wistia_emulator.projects()] == ["Campaign"]


# --- 400 answers, in both error styles -----------------------------------------------------


@pytest.mark.parametrize(
    ("form", "message_part"),
    [
        ({"name": "nothing to import"}, "file or a url"),
        ({"url": "http://127.0.0.1:9/a.mp4", "project_id": "nosuchproj"}, "Project not found"),
        ({"url": "http://127.0.0.1:9/a.mp4", "contact_id": "abc"}, "contact_id"),
        ({"url": "http://127.0.0.1:9/a.mp4", "name": "n" * 256}, "name is too long"),
        ({"url": "ftp://127.0.0.1/a.mp4"}, "http or https"),
        ({"url": "file:///etc/passwd.mp4"}, "http or https"),
        ({"url": "not a url"}, "http or https"),
        ({"url": "http://[::1/a.mp4"}, "http or https"),
        ({"url": "http://127.0.0.1:port/a.mp4"}, "http or https"),
    ],
    ids=[
        "no-url-no-file",
        "unknown-project",
        "contact-id",
        "long-name",
        "ftp",
        "file",
        "junk",
        "bad-ipv6",
        "bad-port",
    ],
)
def test_invalid_uploads_get_400_json_in_the_accounts_error_style(
    styled_emulator: WistiaEmulator, form: dict[str, str], message_part: str
) -> None:
    response = HTTP.request(
        "POST",
        styled_emulator.url,
        body=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded", **bearer()},
    )

    assert response.status == 400
    assert message_part in error_message(styled_emulator, json_of(response))
    assert styled_emulator.medias() == []
    assert styled_emulator.projects() == []


def test_a_name_of_255_characters_is_fine(wistia_emulator: WistiaEmulator) -> None:
    response = upload_bytes(wistia_emulator.url, "clip.mp4", b"x", name="n" * 255)

    assert response.status == 200


def test_a_file_and_a_url_together_get_400(styled_emulator: WistiaEmulator) -> None:
    response = upload_bytes(
        styled_emulator.url, "clip.mp4", b"x", url="http://127.0.0.1:9/other.mp4"
    )

    assert response.status == 400
    assert "not both" in error_message(styled_emulator, json_of(response))


def test_an_unsupported_content_type_gets_400_once_authenticated(
    styled_emulator: WistiaEmulator,
) -> None:
    body = b'{"url": "http://127.0.0.1:9/a.mp4"}'
    json_type = {"Content-Type": "application/json"}

    anonymous = HTTP.request("POST", styled_emulator.url, body=body, headers=json_type)
    authenticated = HTTP.request(
        "POST", styled_emulator.url, body=body, headers={**json_type, **bearer()}
    )

    assert anonymous.status == 401
    assert authenticated.status == 400
    assert "Content-Type" in error_message(styled_emulator, json_of(authenticated))


def test_a_file_part_without_a_filename_is_not_a_file(styled_emulator: WistiaEmulator) -> None:
    # Like Rails, a part without filename= is a plain string parameter, not an upload.
    response = HTTP.request(
        "POST", styled_emulator.url, fields={"file": "just text"}, headers=bearer()
    )

    assert response.status == 400


def test_a_truncated_multipart_body_gets_400(styled_emulator: WistiaEmulator) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nabc'

    response = HTTP.request(
        "POST",
        styled_emulator.url,
        body=body,
        headers={"Content-Type": "multipart/form-data; boundary=b", **bearer()},
    )

    assert response.status == 400
    assert "closing boundary" in error_message(styled_emulator, json_of(response))


# --- the video limit -----------------------------------------------------------------------


def test_the_video_limit_in_the_accounts_error_style(styled_emulator: WistiaEmulator) -> None:
    styled_emulator.set_video_limit(2)
    assert upload_bytes(styled_emulator.url, "1.mp4", b"1").status == 200
    assert import_url(styled_emulator.url, "http://127.0.0.1:9/2.mp4").status == 200

    refused = upload_bytes(styled_emulator.url, "3.mp4", b"3")

    assert refused.status == 400
    body = json_of(refused)
    if styled_emulator.error_style == "legacy":
        assert body == {"error": VIDEO_LIMIT_MESSAGE}
    else:
        assert body == {"error": {"code": "upload_failed", "detail": VIDEO_LIMIT_MESSAGE}}
    assert len(styled_emulator.medias()) == 2


def test_a_deleted_media_frees_its_place_under_the_video_limit(
    wistia_emulator: WistiaEmulator,
) -> None:
    wistia_emulator.set_video_limit(1)
    first = json_of(upload_bytes(wistia_emulator.url, "1.mp4", b"1"))
    assert upload_bytes(wistia_emulator.url, "2.mp4", b"2").status == 400

    deleted = HTTP.request(
        "DELETE", f"{wistia_emulator.url}v1/medias/{first['hashed_id']}.json", headers=bearer()
    )
    again = upload_bytes(wistia_emulator.url, "2.mp4", b"2")

    assert deleted.status == 200
    assert again.status == 200
