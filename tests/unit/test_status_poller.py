"""The status poller with in-memory fakes: it finds the records whose events never came,
asks Wistia about them 100 at a time within its request budget, applies the answers as
webhook events are applied, and stops without losing anything at a 429, a 5xx or a 401."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import pytest
import urllib3

from s3_to_wistia.budget import POLLER
from s3_to_wistia.errors import PermanentError, RetryableError, WistiaUnreachable
from s3_to_wistia.media_status import StatusUpdater
from s3_to_wistia.model import ObjectRef, WistiaAnswer
from s3_to_wistia.polling import BookedRun, PollReport, RunAllowance, StatusPoller, Stop
from s3_to_wistia.times import iso_precise
from unit.fakes import (
    Clock,
    CountingMetrics,
    FakeDeadLetters,
    FakeRecords,
    FakeTokens,
    ListLog,
    obj,
)

POLL_AFTER = 900


@dataclass
class FakeDataApi:
    """Wistia's media list: the status of each media it holds; answers from `script` first."""

    statuses: dict[str, str] = field(default_factory=dict)
    script: list[WistiaAnswer | Exception] = field(default_factory=list)
    asked: list[list[str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def medias_by_hashed_ids(
        self, hashed_ids: list[str], token: str, deadline: float | None = None
    ) -> WistiaAnswer:
        assert len(hashed_ids) <= 100
        self.asked.append(list(hashed_ids))
        self.tokens.append(token)
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        medias = [
            {"hashed_id": h, "status": self.statuses[h]} for h in hashed_ids if h in self.statuses
        ]
        return WistiaAnswer(200, json.dumps(medias).encode(), "application/json", None)


@dataclass
class Poll:
    poller: StatusPoller
    records: FakeRecords
    wistia: FakeDataApi
    tokens: FakeTokens
    dead_letters: FakeDeadLetters
    metrics: CountingMetrics
    log: ListLog
    clock: Clock
    refs: list[ObjectRef]

    def run(self, requests: int = 10) -> tuple[RunAllowance, PollReport]:
        budget = RunAllowance(requests)
        report = self.poller.run(self.clock() + 60, budget)
        return budget, report

    def statuses(self) -> list[str | None]:
        return [self.records.record(ref).media_status for ref in self.refs]


def poll(count: int, max_requests: int = 10) -> Poll:
    clock = Clock()
    records = FakeRecords(clock)
    wistia = FakeDataApi()
    tokens = FakeTokens()
    dead_letters = FakeDeadLetters()
    metrics = CountingMetrics()
    log = ListLog()
    updater = StatusUpdater(records, dead_letters, metrics, log, clock=clock)
    poller = StatusPoller(
        records, wistia, tokens, updater, metrics, log, POLL_AFTER, max_requests, clock=clock
    )
    refs = []
    submitted = iso_precise(clock() - 3600)
    for n in range(count):
        ref = obj(f"clips/{n:04d}.mp4")
        records.add_submitted(ref, f"media{n:05d}", submitted)
        wistia.statuses[f"media{n:05d}"] = "ready"
        refs.append(ref)
    return Poll(poller, records, wistia, tokens, dead_letters, metrics, log, clock, refs)


def hashed_ids(place: Poll, indexes: Iterable[int]) -> list[str]:
    return [f"media{n:05d}" for n in indexes]


def test_records_whose_events_never_came_are_found_and_brought_up_to_date() -> None:
    place = poll(250)

    budget, _report = place.run()

    assert place.statuses() == ["ready"] * 250
    assert budget.used == 3  # 100 hashed ids a request
    assert [len(ids) for ids in place.wistia.asked] == [100, 100, 50]
    assert place.records.pending_media("9999", 1000) == []
    assert place.metrics.counts["StatusPollMediaChecked"] == 250


def test_a_record_heard_of_recently_is_left_to_its_webhooks() -> None:
    place = poll(2)
    # one heard of a minute ago, one not since its submission an hour ago
    place.records.item(place.records.records_of_media("media00000")[0])["media_checked_at"] = (
        iso_precise(place.clock() - 60)
    )

    place.run()

    assert place.wistia.asked == [["media00001"]]
    assert place.statuses() == [None, "ready"]


def test_the_poller_never_exceeds_its_request_budget_and_the_rest_waits() -> None:
    place = poll(450, max_requests=10)

    budget, report = place.run(requests=2)

    assert budget.used == 2
    assert report.stopped is Stop.BUDGET
    assert place.statuses().count("ready") == 200
    # the next run takes the next ones: least recently checked first
    place.clock.now += POLL_AFTER
    place.run(requests=2)
    place.clock.now += POLL_AFTER
    place.run(requests=2)
    assert place.statuses() == ["ready"] * 450


def test_still_processing_is_recorded_and_asked_again_in_a_later_run() -> None:
    place = poll(1)
    place.wistia.statuses["media00000"] = "processing"

    place.run()
    assert place.statuses() == ["processing"]
    place.wistia.statuses["media00000"] = "ready"
    place.run()  # checked just now: not asked again yet
    assert len(place.wistia.asked) == 1
    place.clock.now += POLL_AFTER + 1
    place.run()

    assert place.statuses() == ["ready"]


def test_a_media_wistia_no_longer_lists_is_recorded_deleted() -> None:
    place = poll(2)
    del place.wistia.statuses["media00001"]

    _, report = place.run()

    assert place.statuses() == ["ready", "deleted"]
    assert report.missing == 1


def test_a_media_the_poller_finds_failed_is_dead_lettered_once() -> None:
    place = poll(1)
    place.wistia.statuses["media00000"] = "failed"

    place.run()
    place.clock.now += POLL_AFTER + 1
    place.run()

    record = place.records.record(place.refs[0])
    assert (record.status, record.media_status) == ("FAILED", "failed")
    assert len(place.dead_letters.sent) == 1
    # nothing is asked about it any more
    assert len(place.wistia.asked) == 1


def test_a_failure_whose_dead_letter_is_due_is_sent_without_asking_wistia() -> None:
    # Given a failed media read while the dead-letter queue was down: that run fails
    place = poll(1)
    place.dead_letters.down = True
    place.wistia.statuses["media00000"] = "failed"
    with pytest.raises(RetryableError, match="dead-letter queue"):
        place.run()
    assert place.records.record(place.refs[0]).status == "FAILED"
    place.dead_letters.down = False
    asked = len(place.wistia.asked)

    place.clock.now += 3600
    _, report = place.run()

    assert len(place.dead_letters.sent) == 1
    assert len(place.wistia.asked) == asked  # no Wistia request for it
    assert report.tally.failures == 1


def answer(status: int, body: str = "", retry_after: str | None = None) -> WistiaAnswer:
    return WistiaAnswer(status, body.encode(), "text/plain", retry_after)


@pytest.mark.parametrize(
    ("fault", "stop", "metric"),
    [
        (answer(429, "Rate limit exceeded", "30"), Stop.THROTTLED, "StatusPollThrottled"),
        (answer(503, "busy", "10"), Stop.THROTTLED, "StatusPollThrottled"),
        (answer(500, "oops"), Stop.UNAVAILABLE, "StatusPollErrors"),
        (answer(502, "<html>bad gateway</html>"), Stop.UNAVAILABLE, "StatusPollErrors"),
        (
            WistiaUnreachable("Wistia did not answer in time", True, True),
            Stop.UNAVAILABLE,
            "StatusPollErrors",
        ),
    ],
    ids=["429", "503 + Retry-After", "500", "502", "timeout"],
)
def test_429_and_5xx_stop_the_run_and_nothing_is_lost(
    fault: WistiaAnswer | Exception, stop: Stop, metric: str
) -> None:
    # Given Wistia refusing the first request of a run
    place = poll(250)
    place.wistia.script = [fault]

    budget, report = place.run()

    # Then the run stops there, counting it, within its budget
    assert report.stopped is stop
    assert budget.used == 1
    assert place.metrics.counts[metric] == 1
    assert place.statuses() == [None] * 250
    # and the next run brings every record up to date
    place.clock.now += 60
    place.run()
    assert place.statuses() == ["ready"] * 250


def test_an_upload_only_token_says_so_and_the_run_still_succeeds() -> None:
    # Given a token with upload rights only: the Data API answers 401, also after a re-read
    place = poll(3)
    place.wistia.script = [answer(401, "<html>401</html>"), answer(401, "<html>401</html>")]

    budget, report = place.run()

    assert report.stopped is Stop.UNAUTHORIZED
    assert place.tokens.reads == 2  # read once more, in case it was rotated
    assert budget.used == 2
    assert place.metrics.counts["StatusPollUnauthorized"] == 1
    [(_level, message, _)] = [line for line in place.log.lines if line[0] == "error"]
    assert "cannot read the Data API" in message and "upload-only" in message
    assert place.statuses() == [None] * 3


def test_a_rotated_token_is_read_again_after_a_401() -> None:
    place = poll(1)
    place.tokens.values = ["old-token", "new-token"]
    place.wistia.script = [answer(401, "<html>401</html>")]

    place.run()

    assert place.wistia.tokens == ["old-token", "new-token"]
    assert place.statuses() == ["ready"]


def test_a_token_secret_that_cannot_be_read_stops_the_run_with_a_clear_line() -> None:
    place = poll(1)

    def unreadable(refresh: bool = False) -> str:
        raise PermanentError("the Wistia token secret 'x' still holds the placeholder")

    place.tokens.get = unreadable  # type: ignore[method-assign]

    _, report = place.run()

    assert report.stopped is Stop.NO_TOKEN
    assert place.wistia.asked == []


def test_the_lookup_asks_for_the_hashed_ids_and_a_full_page() -> None:
    # What the adapter sends, seen from its query string
    from s3_to_wistia.adapters.wistia import WistiaClient

    class Recorder:
        def request(self, method: str, url: str, **kwargs: object) -> object:
            self.url = url
            raise RuntimeError("stop here")

    recorder = Recorder()
    client = WistiaClient(
        recorder,  # type: ignore[arg-type]
        "https://upload.wistia.com/",
        urllib3.Timeout(connect=1, read=1),
        api_url="https://api.wistia.com/",
    )
    with pytest.raises(RuntimeError):
        client.medias_by_hashed_ids(["aaa", "bbb"], "token")

    path, _, query = recorder.url.partition("?")
    assert path == "https://api.wistia.com/v1/medias.json"
    assert parse_qs(query) == {"hashed_ids[]": ["aaa", "bbb"], "per_page": ["100"]}


# --- on the account's shared request budget -------------------------------------------------


@dataclass
class Schedule:
    """The account's shared budget (RateBudget): `slots` more requests in time, then none;
    every booking and pause as the poller made it."""

    slots: int
    takers: list[str] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)
    broken: bool = False

    def take(self, caller: str, deadline: float) -> bool:
        if self.broken:
            raise RetryableError("the request budget could not be read: throttled")
        if self.slots <= 0:
            return False
        self.slots -= 1
        self.takers.append(caller)
        return True

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def booked_run(place: Poll, schedule: Schedule, requests: int = 10) -> PollReport:
    return place.poller.run(place.clock() + 60, BookedRun(RunAllowance(requests), schedule, POLLER))


def test_with_a_budget_table_every_request_of_a_run_is_booked_as_the_pollers() -> None:
    place, schedule = poll(250), Schedule(slots=100)

    report = booked_run(place, schedule)

    assert place.statuses() == ["ready"] * 250
    assert schedule.takers == [POLLER] * 3  # one slot a request, at the poller's priority
    assert report.stopped is None


def test_when_imports_leave_the_poller_no_slot_the_rest_waits_for_the_next_run() -> None:
    place, schedule = poll(250), Schedule(slots=1)

    report = booked_run(place, schedule)

    assert report.stopped is Stop.BUDGET
    assert place.statuses().count("ready") == 100
    schedule.slots = 10
    place.clock.now += POLL_AFTER
    booked_run(place, schedule)
    assert place.statuses() == ["ready"] * 250


def test_the_runs_allowance_still_caps_it_on_the_shared_budget() -> None:
    place, schedule = poll(450, max_requests=10), Schedule(slots=100)

    report = booked_run(place, schedule, requests=2)

    assert report.stopped is Stop.BUDGET
    assert len(schedule.takers) == 2


def test_a_429_with_retry_after_pauses_every_caller_of_the_shared_budget() -> None:
    place, schedule = poll(150), Schedule(slots=100)
    place.wistia.script = [answer(429, "Rate limit exceeded", "30")]

    report = booked_run(place, schedule)

    assert report.stopped is Stop.THROTTLED
    assert schedule.pauses == [30.0]
    assert place.statuses() == [None] * 150  # nothing lost: the next run asks again


def test_a_budget_table_that_cannot_be_read_ends_the_run_with_nothing_sent() -> None:
    place, schedule = poll(5), Schedule(slots=100, broken=True)

    report = booked_run(place, schedule)

    assert report.stopped is Stop.NO_BUDGET
    assert "could not be read" in report.detail
    assert place.wistia.asked == []
