"""Contract: the account's rate limit, upload and Data API together, before auth."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from wistia_emulator import WistiaEmulator
from wistia_emulator.ratelimit import SlidingWindowRateLimiter
from wistia_emulator.testing import HTTP, bearer, import_url, upload_bytes

SOURCE = "http://127.0.0.1:9/a.mp4"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited() -> Iterator[WistiaEmulator]:
    with WistiaEmulator(processing_delay=0.01, rate_limit=5, rate_window=1.0) as emu:
        yield emu


def test_the_window_slides() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(limit=3, window=10.0, clock=clock)
    for offset in (0.0, 2.0, 4.0):
        clock.now = 1000.0 + offset
        assert limiter.try_acquire()

    clock.now = 1005.0
    refused = limiter.try_acquire()
    wait = limiter.seconds_until_free()
    clock.now = 1010.0  # the request of t=0 leaves the window, one slot frees
    admitted = limiter.try_acquire()
    refused_again = limiter.try_acquire()

    assert (refused, wait, admitted, refused_again) == (False, 5, True, False)
    assert limiter.seconds_until_free() == 2  # the request of t=2 leaves at t=12


def test_retry_after_is_at_least_one_second() -> None:
    clock = FakeClock()
    limiter = SlidingWindowRateLimiter(limit=1, window=0.5, clock=clock)
    limiter.try_acquire()
    clock.now += 0.4

    assert limiter.seconds_until_free() == 1


def test_no_limit_admits_everything() -> None:
    limiter = SlidingWindowRateLimiter(limit=None, window=1.0)

    assert all(limiter.try_acquire() for _ in range(10_000))


def test_over_the_limit_gets_429_text_with_retry_after_then_succeeds(
    limited: WistiaEmulator,
) -> None:
    for n in range(5):
        assert upload_bytes(limited.url, f"{n}.mp4", b"x").status == 200

    refused = upload_bytes(limited.url, "6.mp4", b"x")

    assert refused.status == 429
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert refused.data == b"Rate limit exceeded"
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after == 1
    assert len(limited.medias()) == 5

    time.sleep(retry_after)
    assert upload_bytes(limited.url, "6.mp4", b"x").status == 200


def test_upload_and_data_api_share_the_limit(limited: WistiaEmulator) -> None:
    for _ in range(3):
        assert import_url(limited.url, SOURCE).status == 200
    for _ in range(2):
        assert HTTP.request("GET", limited.url + "v1/medias.json", headers=bearer()).status == 200

    assert HTTP.request("GET", limited.url + "v1/projects.json", headers=bearer()).status == 429
    assert import_url(limited.url, SOURCE).status == 429


def test_the_limit_is_checked_before_auth(limited: WistiaEmulator) -> None:
    statuses = [upload_bytes(limited.url, "a.mp4", b"x", token="wrong").status for _ in range(6)]

    assert statuses == [401] * 5 + [429]
    assert upload_bytes(limited.url, "a.mp4", b"x").status == 429


def test_the_control_plane_is_not_counted(limited: WistiaEmulator) -> None:
    for _ in range(20):
        limited.medias()  # in-process calls
        assert HTTP.request("GET", limited.url + "_emulator/medias").status == 200

    assert upload_bytes(limited.url, "a.mp4", b"x").status == 200
    assert [r["path"] for r in limited.requests()] == ["/"]


def test_the_limit_can_change_at_run_time(wistia_emulator: WistiaEmulator) -> None:
    wistia_emulator.set_rate_limit(2, 30.0)
    statuses = [
        import_url(wistia_emulator.url, "http://127.0.0.1:9/a.mp4").status for _ in range(3)
    ]
    refused = import_url(wistia_emulator.url, "http://127.0.0.1:9/a.mp4")
    wistia_emulator.set_rate_limit(None, 30.0)

    assert statuses == [200, 200, 429]
    assert 29 <= int(refused.headers["Retry-After"]) <= 30
    assert import_url(wistia_emulator.url, "http://127.0.0.1:9/a.mp4").status == 200
