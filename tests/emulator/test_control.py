"""Contract: the control plane (`/_emulator/`) and EmulatorControl, its client, do what the
in-process methods do, without auth, rate limit, faults or a trace in requests()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wistia_emulator import EmulatorControl, EmulatorControlError, Fault, WistiaEmulator
from wistia_emulator.testing import HTTP, SourceServer, import_url, mp4_bytes, upload_bytes

SOURCE = "http://127.0.0.1:9/clip.mp4"


@pytest.fixture
def control(wistia_emulator: WistiaEmulator) -> EmulatorControl:
    return EmulatorControl(wistia_emulator.url)


def test_control_reads_what_the_emulator_holds(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    upload_bytes(wistia_emulator.url, "clip.mp4", b"x", api_password="test-token")
    import_url(wistia_emulator.url, SOURCE)
    assert control.wait_until_settled(5)

    assert control.medias() == wistia_emulator.medias()
    assert control.projects() == wistia_emulator.projects()
    assert control.requests() == wistia_emulator.requests()
    assert control.requests()[0]["form"]["api_password"] == "[redacted]"


def test_tokens_rotate_at_run_time_in_process(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.set_tokens("new-token", "other-token")

    assert import_url(wistia_emulator.url, SOURCE).status == 401
    assert import_url(wistia_emulator.url, SOURCE, token="new-token").status == 200
    assert import_url(wistia_emulator.url, SOURCE, token="other-token").status == 200


def test_tokens_rotate_at_run_time_through_control(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    control.set_tokens("rotated")

    assert import_url(wistia_emulator.url, SOURCE).status == 401
    assert import_url(wistia_emulator.url, SOURCE, token="rotated").status == 200


def test_video_limit_through_control(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    control.set_video_limit(1)
    statuses = [import_url(wistia_emulator.url, SOURCE).status for _ in range(2)]
    control.set_video_limit(None)

    assert statuses == [200, 400]
    assert import_url(wistia_emulator.url, SOURCE).status == 200


def test_rate_limit_through_control(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    control.set_rate_limit(1, 60.0)

    statuses = [import_url(wistia_emulator.url, SOURCE).status for _ in range(2)]

    assert statuses == [200, 429]


def test_faults_through_control(wistia_emulator: WistiaEmulator, control: EmulatorControl) -> None:
    control.add_fault(Fault(kind="status", count=1, status=502, body="bad gateway"))
    control.add_fault(Fault(kind="rate_limit", probability=1.0, seed=1, retry_after=3))

    first = import_url(wistia_emulator.url, SOURCE)
    second = import_url(wistia_emulator.url, SOURCE)
    control.clear_faults()
    third = import_url(wistia_emulator.url, SOURCE)

    assert (first.status, first.data) == (502, b"bad gateway")
    assert (second.status, second.headers["Retry-After"]) == (429, "3")
    assert third.status == 200


def test_reset_forgets_state_and_keeps_config(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    control.set_tokens("kept-token")
    control.set_video_limit(1)
    import_url(wistia_emulator.url, SOURCE, token="kept-token")
    control.add_fault(Fault(kind="status", match_path="/v1/*", match_method="GET"))

    control.reset()

    assert (control.medias(), control.projects(), control.requests()) == ([], [], [])
    assert import_url(wistia_emulator.url, SOURCE, token="kept-token").status == 200
    assert import_url(wistia_emulator.url, SOURCE, token="kept-token").status == 400
    assert import_url(wistia_emulator.url, SOURCE).status == 401


def test_create_project_through_control(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    project = control.create_project("Imports")

    response = import_url(wistia_emulator.url, SOURCE, project_id=project["hashed_id"])

    assert response.status == 200
    assert control.medias()[0]["project_id"] == project["hashed_id"]


@pytest.fixture
def held_source() -> Iterator[SourceServer]:
    with SourceServer() as server:
        server.hold()
        yield server


def test_settled_waits_for_imports(
    wistia_emulator: WistiaEmulator, control: EmulatorControl, held_source: SourceServer
) -> None:
    import_url(wistia_emulator.url, held_source.add("/slow.mp4", mp4_bytes(b"slow")))

    while_held = control.wait_until_settled(0.2)
    held_source.release()

    assert while_held is False
    assert control.wait_until_settled(5) is True
    assert control.medias()[0]["status"] == "ready"


def test_the_control_plane_is_never_faulted_nor_recorded(
    wistia_emulator: WistiaEmulator, control: EmulatorControl
) -> None:
    control.add_fault(Fault(kind="drop", match_method="*", match_path="/*"))

    medias = control.medias()
    control.clear_faults()

    assert medias == []
    assert wistia_emulator.requests() == []


@pytest.mark.parametrize(
    ("method", "endpoint", "payload"),
    [
        ("POST", "config", {"colour": "blue"}),
        ("POST", "config", {"tokens": "not-a-list"}),
        ("POST", "config", {"video_limit": "ten"}),
        ("POST", "config", {"rate_limit": 0}),
        ("POST", "faults", {"kind": "explode"}),
        ("POST", "faults", {"kind": "drop", "when": "always"}),
        ("GET", "nothing-here", None),
    ],
)
def test_bad_control_calls_are_refused(
    control: EmulatorControl, method: str, endpoint: str, payload: dict[str, object] | None
) -> None:
    with pytest.raises(EmulatorControlError):
        control._call(method, endpoint, payload)


def test_the_control_plane_speaks_plain_json(wistia_emulator: WistiaEmulator) -> None:
    response = HTTP.request(
        "POST",
        wistia_emulator.url + "_emulator/config",
        body=b'{"video_limit": 0}',
        headers={"Content-Type": "application/json"},
    )

    assert (response.status, response.json()) == (200, {"ok": True})
    assert import_url(wistia_emulator.url, SOURCE).status == 400
