"""The README's figures, copied from the results files the commands write.

Every figure the README quotes sits between two markers naming its source:

    <!-- figures: tests/bench/RESULTS.md -->
    | figure | measured | ... |
    <!-- /figures -->

and is that source's first Markdown table, verbatim; `RESULTS.md#some-section` quotes the
first table under the heading whose slug that is (`## Some section`). `make bench` and
`make reliability` call `sync()` after writing their results; `make figures` does it alone;
a unit test fails when a quoted table and its source disagree, so no figure in the README
is typed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- figures: (?P<source>\S+) -->\n)(?P<table>.*?)(<!-- /figures -->)", re.S)


def first_table(text: str) -> str:
    """The first Markdown table in `text`: its consecutive lines starting with '|'."""
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    if not lines:
        raise ValueError("no Markdown table")
    return "\n".join(lines) + "\n"


def slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def quoted_table(source: str, root: Path = ROOT) -> str:
    """The table a figures block names: `path` (its first table) or `path#section-slug`."""
    path, _, section = source.partition("#")
    text = (root / path).read_text(encoding="utf-8")
    if section:
        headings = list(re.finditer(r"^#+ (.+)$", text, re.M))
        starts = [h.end() for h in headings if slug(h.group(1)) == section]
        if not starts:
            raise ValueError(f"{path} has no section #{section}")
        text = text[starts[0] :]
    return first_table(text)


def blocks(readme: str) -> list[tuple[str, str]]:
    """(source, quoted table) for every figures block of the README."""
    return [(m.group("source"), m.group("table")) for m in BLOCK.finditer(readme)]


def synced(readme: str, root: Path = ROOT) -> str:
    """The README with every figures block replaced by its source's first table."""

    def replace(match: re.Match[str]) -> str:
        table = quoted_table(match.group("source"), root)
        return match.group(1) + table + match.group(4)

    return BLOCK.sub(replace, readme)


def sync(readme_path: Path = README) -> bool:
    """Rewrite the README's figures from their sources; True when anything changed."""
    before = readme_path.read_text(encoding="utf-8")
    after = synced(before, readme_path.parent)
    if after != before:
        readme_path.write_text(after, encoding="utf-8")
    return after != before
