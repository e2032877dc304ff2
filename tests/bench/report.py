"""Figures into one table: printed, and written to RESULTS.md as Markdown."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HEADERS = ("figure", "measured", "floor", "ratio", "goal", "met?")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def p99(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[-1]


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    floor: str
    ratio: str
    goal: str
    met: str

    def cells(self) -> tuple[str, ...]:
        return (self.figure, self.measured, self.floor, self.ratio, self.goal, self.met)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds * 1000:.0f} ms"


def ratio_row(
    figure: str, measured: float, floor: float, goal: float | None, fmt: str = "ms"
) -> Row:
    """A measured value against its floor; `goal` is the highest acceptable ratio."""
    ratio = measured / floor if floor else float("inf")
    if fmt == "ms":
        shown = (ms(measured), ms(floor))
    elif fmt == "instructions":
        digits = 0 if floor >= 1e8 else 1
        shown = (f"{measured / 1e6:,.{digits}f} M instr.", f"{floor / 1e6:,.{digits}f} M instr.")
    else:
        shown = (f"{measured:.1f} MiB", f"{floor:.1f} MiB")
    if goal is None:
        return Row(figure, *shown, f"{ratio:.3f}x", "info", "-")
    met = "yes" if ratio <= goal else "NO"
    return Row(figure, *shown, f"{ratio:.3f}x", f"<= {goal:.2f}x", met)


def text_table(rows: Sequence[Row]) -> str:
    table = [HEADERS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


def write_markdown(
    path: Path,
    title_line: str,
    method: str,
    rows: Sequence[Row],
    extra_headers: Sequence[str],
    extra_rows: Sequence[Sequence[str]],
    notes: Sequence[str],
) -> None:
    parts = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`tests/bench`); every run overwrites it.",
        "",
        title_line,
        "",
        f"Method: {method}",
        "",
        markdown_table(HEADERS, [row.cells() for row in rows]),
        "",
        "Largest modules the handler imports beyond the floor's (`-X importtime`, one run; "
        "time spent in each and in what only it pulls in):",
        "",
        markdown_table(extra_headers, extra_rows),
        "",
        *(f"- {note}" for note in notes),
        "",
    ]
    path.write_text("\n".join(parts), encoding="utf-8")
