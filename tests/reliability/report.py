"""The results as a table: on the console while the suite runs, and as Markdown."""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Sequence

from reliability.suite import ScenarioResult

COLUMNS = (
    "scenario",
    "objects",
    "faults injected",
    "lost",
    "duplicated",
    "dead-lettered (reasons)",
    "redrive",
    "rate vs limit",
    "time",
    "result",
)


def counts_text(counts: Counter[str], limit: int = 8, separator: str = ", ") -> str:
    if not counts:
        return "none"
    items = counts.most_common()
    shown = [f"{name} {count}" for name, count in items[:limit]]
    if len(items) > limit:
        shown.append(f"+{len(items) - limit} more")
    return separator.join(shown)


def reasons_text(result: ScenarioResult, limit: int = 4) -> str:
    verdict = result.verdict
    total = verdict.dead_lettered
    if not total:
        return "0"
    grouped = verdict.dead_letter_reasons
    parts = [f"{count}x {reason}" for reason, count in grouped.most_common(limit)]
    if len(grouped) > limit:
        parts.append(f"+{len(grouped) - limit} more")
    return f"{total}: " + "; ".join(parts)


def duplicated_text(result: ScenarioResult) -> str:
    text = str(result.duplicated)
    if result.scenario.duplicates_measured:
        text += " (measured)"
    return text


def redrive_text(result: ScenarioResult) -> str:
    redrive = result.redrive
    if redrive is None:
        return "-"
    text = f"{redrive.objects} → {redrive.imported} imported"
    if redrive.still_dead:
        text += f", {redrive.still_dead} still failing"
    return text


def rate_text(result: ScenarioResult) -> str:
    if result.rate is None:
        return "-"
    if result.limit_rate is None:
        return f"{result.rate:.1f}/s"
    share = result.rate / result.limit_rate
    text = f"{result.rate:.1f}/s of {result.limit_rate:g}/s ({share:.0%})"
    if result.scenario.report_rate:
        throttled = result.throttled / max(1, result.requests)
        text += f"; 429s {result.throttled} ({throttled:.1%})"
    return text


def budget_line(result: ScenarioResult) -> str:
    """The account's budget at work: what users get, and what Wistia saw."""
    limit = result.limit_rate
    share = (lambda rate: f" ({rate / limit:.1%} of the limit)") if limit else (lambda rate: "")
    text = f"accepted imports {result.rate:.2f}/s{share(result.rate or 0.0)} first to last"
    if result.steady_rate is not None:
        text += (
            f", {result.steady_rate:.2f}/s{share(result.steady_rate)} while first deliveries "
            "were still coming"
        )
    if result.request_rate is not None:
        text += (
            f"; every request Wistia admitted (imports and lookups) "
            f"{result.request_rate:.2f}/s{share(result.request_rate)}"
        )
    text += (
        f"; {result.throttled} of {result.requests} requests answered 429 "
        f"({result.throttled / max(1, result.requests):.2%})"
    )
    if result.killed:
        text += f"; {result.killed} invocations killed holding their slot"
    return text


def verdict_text(result: ScenarioResult) -> str:
    if result.problems:
        return "FAIL"
    if result.findings:
        return "FINDING"
    return "ok"


def row(result: ScenarioResult) -> list[str]:
    objects = f"{result.objects}"
    if result.deliveries:
        objects += f" ({result.deliveries} deliveries)"
    return [
        result.name,
        objects,
        counts_text(result.faults),
        str(result.lost),
        duplicated_text(result),
        reasons_text(result),
        redrive_text(result),
        rate_text(result),
        f"{result.seconds:.0f} s",
        verdict_text(result),
    ]


def console_line(result: ScenarioResult) -> str:
    verdict = result.verdict
    finals = ", ".join(f"{n} {s}" for s, n in sorted(verdict.finals.items()))
    return (
        f"{verdict_text(result):7} {result.name:34} {result.objects:5} objects  lost "
        f"{result.lost}  duplicated {duplicated_text(result)}  dead-lettered "
        f"{verdict.dead_lettered}  ({finals})  {result.seconds:.0f} s"
    )


def details(result: ScenarioResult) -> list[str]:
    lines = []
    scenario = result.scenario
    if scenario.about:
        lines.append(scenario.about)
    verdict = result.verdict
    finals = ", ".join(f"{s} {n}" for s, n in sorted(verdict.finals.items()))
    lines.append(f"end states: {finals}; deliveries {result.deliveries} ({result.repeats} repeats)")
    lines.append(
        f"duplicate media: {verdict.duplicated} by object version, {verdict.duplicated_names} "
        "by media name"
    )
    lines.append(f"faults injected: {counts_text(result.faults, limit=20)}")
    if scenario.report_rate and result.rate is not None:
        lines.append(budget_line(result))
    stats = result.driver
    lines.append(
        f"Lambda: {stats.invocations} invocations, {stats.failed} failed, {stats.retries} "
        f"retries, {stats.on_failure_records} on-failure records, "
        f"{stats.destination_failures} failed deliveries to the destination"
    )
    metrics = {k: v for k, v in result.metrics.items() if k != "ImportsSubmitted"}
    if metrics:
        lines.append(f"function metrics: {counts_text(Counter(metrics), limit=10)}")
    for reason, count in verdict.dead_letter_reasons.most_common():
        lines.append(f"dead letter x{count}: {reason}")
    for reason, count in verdict.other_dead_letters.most_common(6):
        lines.append(f"other message x{count}: {reason}")
    if result.redrive is not None:
        redrive = result.redrive
        lines.append(
            f"redrive (`make redrive` once the faults ended): {redrive.messages} messages "
            f"naming {redrive.objects} objects; {redrive.imported} imported, "
            f"{redrive.still_dead} still dead-lettered; afterwards lost "
            f"{len(redrive.verdict.lost)}, duplicated {redrive.verdict.duplicated}"
        )
        lines += [f"redrive tool: {line.strip()}" for line in redrive.summary]
    if result.phases:
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.phases.items()))
    lines += result.notes
    lines += [f"FINDING: {finding}" for finding in result.findings]
    lines += [f"PROBLEM: {problem}" for problem in result.problems]
    return lines


def markdown(results: Sequence[ScenarioResult], header: Sequence[str]) -> str:
    out = ["# Reliability results", "", *header, ""]
    out.append("| " + " | ".join(COLUMNS) + " |")
    out.append("|" + "|".join(" --- " for _ in COLUMNS) + "|")
    for result in results:
        cells = [cell.replace("|", "\\|") for cell in row(result)]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "## Scenarios", ""]
    for result in results:
        out.append(f"### {result.name}")
        out.append("")
        out += [f"- {line}" for line in details(result)]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def machine() -> str:
    import os

    return (
        f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()}), "
        f"CPython {platform.python_version()}"
    )
