"""Contract: `GET /v1/medias.json?hashed_ids[]=...` fetches given medias in one request (up
to 100), each with its processing `status` and `archived` flag; `archived` filters."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import urllib3

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


@pytest.fixture
def source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        yield server


def lookup(emu: WistiaEmulator, *hashed_ids: str, **params: str) -> urllib3.BaseHTTPResponse:
    query = urlencode([*(("hashed_ids[]", h) for h in hashed_ids), *params.items()])
    return HTTP.request("GET", f"{emu.url}v1/medias.json?{query}", headers=bearer())


def upload(emu: WistiaEmulator, name: str, data: bytes | None = None) -> str:
    response = upload_bytes(emu.url, name, mp4_bytes(name.encode()) if data is None else data)
    assert response.status == 200
    return str(json_of(response)["hashed_id"])


def archive(emu: WistiaEmulator, *hashed_ids: str) -> None:
    response = HTTP.request(
        "PUT",
        f"{emu.url}modern/medias/archive",
        body=json.dumps({"hashed_ids": list(hashed_ids)}).encode(),
        headers={**bearer(), "Content-Type": "application/json"},
    )
    assert response.status == 200
    assert emu.wait_until_settled(5)


def by_id(medias: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["hashed_id"]: m for m in medias}


def test_hashed_ids_fetch_exactly_those_medias(wistia_emulator: WistiaEmulator) -> None:
    wanted = [upload(wistia_emulator, f"{n}.mp4") for n in range(3)]
    others = [upload(wistia_emulator, f"other-{n}.mp4") for n in range(3)]

    found = json_of(lookup(wistia_emulator, *wanted, "nosuchmedi"))

    assert sorted(m["hashed_id"] for m in found) == sorted(wanted)
    assert not set(others) & {m["hashed_id"] for m in found}


def test_each_media_says_its_status_and_whether_it_is_archived(source: SourceServer) -> None:
    # A processing delay long enough to look at a media before it moves on.
    with WistiaEmulator(processing_delay=0.3) as emu:
        ready = upload(emu, "ready.mp4")
        failed = upload(emu, "failed.mp4", b"not a video")
        archived = upload(emu, "archived.mp4")
        assert emu.wait_until_settled(5)
        archive(emu, archived)
        source.hold()  # the fetch hangs: the first import stays processing
        processing = str(
            json_of(import_url(emu.url, source.add("/p.mp4", mp4_bytes())))["hashed_id"]
        )
        deadline = time.monotonic() + 5
        while json_of(lookup(emu, processing))[0]["status"] != "processing":
            assert time.monotonic() < deadline, "the import never started"
            time.sleep(0.01)
        queued = str(json_of(import_url(emu.url, source.add("/q.mp4", mp4_bytes())))["hashed_id"])

        found = by_id(json_of(lookup(emu, ready, failed, archived, processing, queued)))
        source.release()

    assert {h: (m["status"], m["archived"]) for h, m in found.items()} == {
        ready: ("ready", False),
        failed: ("failed", False),
        archived: ("ready", True),
        processing: ("processing", False),
        queued: ("queued", False),
    }


def test_a_deleted_media_is_not_found_by_its_hashed_id(wistia_emulator: WistiaEmulator) -> None:
    kept, gone = upload(wistia_emulator, "kept.mp4"), upload(wistia_emulator, "gone.mp4")
    HTTP.request("DELETE", f"{wistia_emulator.url}v1/medias/{gone}.json", headers=bearer())

    found = json_of(lookup(wistia_emulator, kept, gone))

    assert [m["hashed_id"] for m in found] == [kept]


def test_up_to_100_hashed_ids_in_one_request_and_no_more(wistia_emulator: WistiaEmulator) -> None:
    hashed_ids = [upload(wistia_emulator, f"{n}.mp4") for n in range(100)]

    hundred = lookup(wistia_emulator, *hashed_ids, per_page="100")
    too_many = lookup(wistia_emulator, *hashed_ids, "onemoremed", per_page="100")

    assert sorted(m["hashed_id"] for m in json_of(hundred)) == sorted(hashed_ids)
    assert too_many.status == 400
    assert "100" in json_of(too_many)["error"]


def test_the_lookup_pages_like_any_list(wistia_emulator: WistiaEmulator) -> None:
    # As in Wistia, per_page still applies (default 10): ask per_page=100 with 100 ids.
    hashed_ids = [upload(wistia_emulator, f"{n:02}.mp4") for n in range(12)]

    first = json_of(lookup(wistia_emulator, *hashed_ids))
    second = json_of(lookup(wistia_emulator, *hashed_ids, page="2"))

    assert len(first) == 10
    assert sorted(m["hashed_id"] for m in first + second) == sorted(hashed_ids)


def test_the_archived_filter(wistia_emulator: WistiaEmulator) -> None:
    active, archived = upload(wistia_emulator, "active.mp4"), upload(wistia_emulator, "old.mp4")
    assert wistia_emulator.wait_until_settled(5)
    archive(wistia_emulator, archived)

    def listed(**params: str) -> list[str]:
        query = urlencode(params)
        response = HTTP.request(
            "GET", f"{wistia_emulator.url}v1/medias.json?{query}", headers=bearer()
        )
        return [m["hashed_id"] for m in json_of(response)]

    assert listed() == [active, archived]  # no filter: both, as Wistia's docs describe it
    assert listed(archived="true") == [archived]
    assert listed(archived="false") == [active]
    assert [
        m["hashed_id"] for m in json_of(lookup(wistia_emulator, archived, archived="false"))
    ] == []


def test_a_bad_archived_value_is_400(wistia_emulator: WistiaEmulator) -> None:
    response = HTTP.request(
        "GET", f"{wistia_emulator.url}v1/medias.json?archived=maybe", headers=bearer()
    )

    assert response.status == 400
    assert isinstance(json_of(response)["error"], str)
