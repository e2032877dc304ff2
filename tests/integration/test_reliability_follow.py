"""The follow-changes scenario of `make reliability`, small: 40 keys through the same code
(first versions made ready, then overwritten 0-3 times and 20% deleted, every event once or
twice and shuffled, the poller until no swap is due). Asserted: the end state at the
emulator matches the bucket's, as reliability.follow checks it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from local_stack.aws import LocalAws
from reliability.rig import quiet_servers
from reliability.scenarios import fast, follow_changes
from reliability.suite import run_scenario


def test_overwrites_and_deletions_shuffled_and_repeated_end_as_the_bucket_is(
    moto_server: LocalAws, tmp_path: Path
) -> None:
    scenario = replace(fast(follow_changes(40, seed=118)), timeout=120.0)
    with quiet_servers():
        result = run_scenario(moto_server, scenario, tmp_path)

    assert result.problems == [], "\n".join(result.problems)
    assert (result.lost, result.duplicated, result.verdict.dead_lettered) == (0, 0, 0)
    # The run did what it is about: keys overwritten, some deleted, events repeated and late
    assert result.faults["events delivered twice"] > 0
    assert result.faults["events after a later one of their key"] > 0
    summary = " ".join(result.notes)
    assert " 0 overwrites" not in summary and " 0 deleted" not in summary
    assert "finished 0 " not in summary
