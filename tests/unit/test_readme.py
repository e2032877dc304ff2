"""The README quotes its figures from the results files the commands write, verbatim."""

from __future__ import annotations

from pathlib import Path

from figures import README, ROOT, blocks, quoted_table, synced


def test_every_figure_in_the_readme_is_its_results_files_table() -> None:
    readme = README.read_text(encoding="utf-8")

    quoted = blocks(readme)

    assert quoted, "the README quotes no results file"
    for source, table in quoted:
        assert table == quoted_table(source, ROOT), source


def test_sync_replaces_a_stale_table_and_leaves_the_rest(tmp_path: Path) -> None:
    (tmp_path / "RESULTS.md").write_text("# x\n\n| a | b |\n| - | - |\n| 1 | 2 |\n\nmore\n")
    stale = "intro\n<!-- figures: RESULTS.md -->\n| a | b |\n| 9 | 9 |\n<!-- /figures -->\nend\n"

    fresh = synced(stale, tmp_path)

    assert fresh == (
        "intro\n<!-- figures: RESULTS.md -->\n| a | b |\n| - | - |\n| 1 | 2 |\n"
        "<!-- /figures -->\nend\n"
    )


def test_a_section_names_the_table_under_its_heading(tmp_path: Path) -> None:
    (tmp_path / "RESULTS.md").write_text(
        "# Run\n\n| a |\n| - |\n| 1 |\n\n## Backfill through S3\n\ntext\n\n| b |\n| - |\n| 2 |\n"
    )
    quoting = "<!-- figures: RESULTS.md#backfill-through-s3 -->\n| old |\n<!-- /figures -->\n"

    assert synced(quoting, tmp_path) == (
        "<!-- figures: RESULTS.md#backfill-through-s3 -->\n| b |\n| - |\n| 2 |\n<!-- /figures -->\n"
    )
