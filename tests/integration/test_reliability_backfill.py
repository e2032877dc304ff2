"""The backfill measurement of `make reliability`, small: 100 objects through the same code
(uploads, events first, a job in a process of its own with invocations killed mid-flight,
the failed tasks run again, reconcile). Asserted: what must hold whatever the machine's
speed (nothing lost, nothing imported twice, every object's report line agreeing with its
record, no secret anywhere); the figures (rate, 429s, memory, time) are only measured."""

from __future__ import annotations

from pathlib import Path

from local_stack.aws import LocalAws
from reliability.backfill import run_backfill, small
from reliability.rig import quiet_servers


def test_a_small_backfill_with_kills_loses_nothing_and_duplicates_nothing(
    moto_server: LocalAws, tmp_path: Path
) -> None:
    with quiet_servers():
        result = run_backfill(moto_server, small(100), tmp_path)

    verdict = result.verdict
    assert verdict is not None
    assert result.problems == []
    assert (len(verdict.lost), verdict.duplicated, verdict.secrets) == (0, 0, {})
    # Each ended as it should: imported, skipped (zero bytes) or refused with a dead letter
    ends = {"import": "SUBMITTED", "skip": "SKIPPED", "fail": "FAILED"}
    assert all(outcome.final == ends[outcome.expect] for outcome in verdict.outcomes)
    assert verdict.finals["FAILED"] >= 1 and verdict.finals["SKIPPED"] >= 1
    # and its last line in the completion reports says so
    assert sum(result.lines.values()) == 100
    assert result.lines["already handled"] >= 5  # the 5% its events had imported
    assert sum(result.job["killed"].values()) >= 1
    assert result.job["result"]["status"] == "Complete"
    assert result.reconcile["counts"]["never seen"] == 0
    assert result.reconcile["counts"]["unfinished"] == 0
