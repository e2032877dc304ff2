"""The README quotes its figures from the results files the commands write, verbatim."""

from __future__ import annotations

from pathlib import Path

from figures import README, ROOT, blocks, first_table, synced


def test_every_figure_in_the_readme_is_its_results_files_table() -> None:
    readme = README.read_text(encoding="utf-8")

    quoted = blocks(readme)

    assert quoted, "the README quotes no results file"
    for source, table in quoted:
        assert table == first_table((ROOT / source).read_text(encoding="utf-8")), source


def test_sync_replaces_a_stale_table_and_leaves_the_rest(tmp_path: Path) -> None:
    (tmp_path / "RESULTS.md").write_text("# x\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\nmore\n")
    stale = "intro\n<!-- figures: RESULTS.md -->\n| a | b |\n| 9 | 9 |\n<!-- /figures -->\nend\n"

    fresh = synced(stale, tmp_path)

    assert fresh == (
        "intro\n<!-- figures: RESULTS.md -->\n| a | b |\n| - | - |\n| 1 | 2 |\n"
        "<!-- /figures -->\nend\n"
    )
