"""Contract: the Data API subset a client uses to follow its uploads."""

from __future__ import annotations

from typing import Any

import pytest
import urllib3

from wistia_emulator import WistiaEmulator
from wistia_emulator.testing import (
    DEFAULT_TOKEN,
    HTTP,
    bearer,
    import_url,
    json_of,
    mp4_bytes,
    upload_bytes,
)


def get(
    emu: WistiaEmulator, path: str, token: str | None = DEFAULT_TOKEN
) -> urllib3.BaseHTTPResponse:
    return HTTP.request("GET", emu.url + path, headers=bearer(token) if token else None)


def upload(emu: WistiaEmulator, name: str, **params: str) -> dict[str, Any]:
    response = upload_bytes(emu.url, name, mp4_bytes(b"bytes of " + name.encode()), **params)
    assert response.status == 200
    answer: dict[str, Any] = json_of(response)
    return answer


def names(medias: list[dict[str, Any]]) -> list[str]:
    return [m["name"] for m in medias]


def test_a_media_shows_its_status_and_project(wistia_emulator: WistiaEmulator) -> None:
    created = upload(wistia_emulator, "clip.mp4", description="about it")
    assert wistia_emulator.wait_until_settled(5)

    media = json_of(get(wistia_emulator, f"v1/medias/{created['hashed_id']}.json"))

    [project] = wistia_emulator.projects()
    assert media["status"] == "ready"
    assert media["progress"] == 1.0
    assert media["project"] == {
        "id": project["id"],
        "name": project["name"],
        "hashed_id": project["hashed_id"],
    }
    for field in ("id", "hashed_id", "name", "created", "type"):
        assert media[field] == created[field]
    assert media["description"] == "about it"
    assert media["updated"] >= created["updated"]


def test_an_unknown_media_is_404_json(wistia_emulator: WistiaEmulator) -> None:
    response = get(wistia_emulator, "v1/medias/doesnotexi.json")

    assert response.status == 404
    assert "error" in json_of(response)


def test_delete_answers_the_media_then_hides_it(wistia_emulator: WistiaEmulator) -> None:
    kept = upload(wistia_emulator, "kept.mp4")
    gone = upload(wistia_emulator, "gone.mp4")
    path = f"v1/medias/{gone['hashed_id']}.json"

    deleted = HTTP.request("DELETE", wistia_emulator.url + path, headers=bearer())

    assert deleted.status == 200
    assert json_of(deleted)["hashed_id"] == gone["hashed_id"]
    assert get(wistia_emulator, path).status == 404
    assert names(json_of(get(wistia_emulator, "v1/medias.json"))) == [kept["name"]]
    assert json_of(get(wistia_emulator, "v1/projects.json"))[0]["mediaCount"] == 1
    assert HTTP.request("DELETE", wistia_emulator.url + path, headers=bearer()).status == 404
    assert [m["deleted"] for m in wistia_emulator.medias()] == [False, True]


def test_the_list_filters_by_project_and_name(wistia_emulator: WistiaEmulator) -> None:
    campaign = wistia_emulator.create_project("Campaign")
    upload(wistia_emulator, "a.mp4", project_id=campaign["hashed_id"])
    upload(wistia_emulator, "b.mp4", project_id=campaign["hashed_id"])
    upload(wistia_emulator, "a.mp4")

    campaign_id = campaign["hashed_id"]
    in_campaign = json_of(get(wistia_emulator, f"v1/medias.json?project_id={campaign_id}"))
    named_a = json_of(get(wistia_emulator, "v1/medias.json?name=a.mp4"))
    both = json_of(get(wistia_emulator, f"v1/medias.json?name=a.mp4&project_id={campaign_id}"))

    assert names(in_campaign) == ["a.mp4", "b.mp4"]
    assert len(named_a) == 2
    assert len(both) == 1


def test_the_list_pages_and_sorts(wistia_emulator: WistiaEmulator) -> None:
    for n in range(25):
        upload(wistia_emulator, f"{n:02}.mp4")

    default = json_of(get(wistia_emulator, "v1/medias.json"))
    third_page = json_of(get(wistia_emulator, "v1/medias.json?page=3"))
    newest_first = json_of(
        get(wistia_emulator, "v1/medias.json?sort_by=created&sort_direction=0&per_page=5")
    )
    beyond = json_of(get(wistia_emulator, "v1/medias.json?page=4"))

    assert names(default) == [f"{n:02}.mp4" for n in range(10)]
    assert names(third_page) == [f"{n:02}.mp4" for n in range(20, 25)]
    assert names(newest_first) == [f"{n:02}.mp4" for n in range(24, 19, -1)]
    assert beyond == []


def test_per_page_is_at_most_100(wistia_emulator: WistiaEmulator) -> None:
    for n in range(101):
        assert import_url(wistia_emulator.url, f"http://127.0.0.1:9/{n}.mp4").status == 200

    listed = json_of(get(wistia_emulator, "v1/medias.json?per_page=500"))

    assert len(listed) == 100


@pytest.mark.parametrize(
    "query", ["page=0", "page=x", "per_page=0", "sort_by=size", "sort_direction=2"]
)
def test_bad_list_parameters_are_400(wistia_emulator: WistiaEmulator, query: str) -> None:
    response = get(wistia_emulator, f"v1/medias.json?{query}")

    assert response.status == 400
    assert isinstance(json_of(response)["error"], str)


def test_projects_count_their_medias(wistia_emulator: WistiaEmulator) -> None:
    empty = wistia_emulator.create_project("Empty")
    upload(wistia_emulator, "one.mp4")
    upload(wistia_emulator, "two.mp4")

    projects = json_of(get(wistia_emulator, "v1/projects.json"))

    assert [(p["name"], p["mediaCount"]) for p in projects] == [
        ("Empty", 0),
        (wistia_emulator.projects()[1]["name"], 2),
    ]
    assert set(projects[0]) == {"id", "hashed_id", "name", "created", "mediaCount"}
    assert projects[0]["hashed_id"] == empty["hashed_id"]


@pytest.mark.parametrize("token", [None, "wrong"])
def test_the_data_api_needs_a_valid_token(
    wistia_emulator: WistiaEmulator, token: str | None
) -> None:
    response = get(wistia_emulator, "v1/medias.json", token=token)

    assert response.status == 401
    assert response.headers["Content-Type"].startswith("text/html")


def test_the_data_api_takes_access_token_in_the_query(wistia_emulator: WistiaEmulator) -> None:
    assert (
        get(wistia_emulator, "v1/projects.json?access_token=test-token", token=None).status == 200
    )
    assert wistia_emulator.requests()[-1]["query"] == {"access_token": "[redacted]"}


def test_the_data_api_ignores_api_password(wistia_emulator: WistiaEmulator) -> None:
    # api_password belongs to the 2012 Upload API; the Data API takes Bearer tokens.
    assert (
        get(wistia_emulator, "v1/projects.json?api_password=test-token", token=None).status == 401
    )


def test_unknown_paths_are_404_and_wrong_methods_405(wistia_emulator: WistiaEmulator) -> None:
    unknown = get(wistia_emulator, "v1/nothing.json")
    root = get(wistia_emulator, "")
    put = HTTP.request("PUT", wistia_emulator.url + "v1/medias.json", headers=bearer())

    assert unknown.status == 404
    assert root.status == 405
    assert (put.status, put.headers["Allow"]) == (405, "GET")
