"""A bench result shown on the console and written as the committed results
(``benchmarks/results.json`` and ``RESULTS.md``)."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .gaps import PerRunGap
from .interop_timing import interop_lines
from .measure import BenchRow
from .ratios import RATIO_NAMES, Ratio


@dataclass
class BenchResult:
    rows: list[BenchRow]
    ratios: list[Ratio]
    settings: dict[str, Any]
    machine: dict[str, Any]
    interop: dict[str, Any] = field(default_factory=dict)
    gaps: list[PerRunGap] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "rows": [asdict(r) for r in self.rows],
            "ratios": [asdict(r) for r in self.ratios],
            "per_run_gaps": [g.as_dict() for g in self.gaps],
            "interop": self.interop,
        }


def gap_lines(gaps: list[PerRunGap]) -> list[str]:
    """One line per measured per-run gap, and a summary (console and RESULTS.md)."""
    if not gaps:
        return []
    measured = [g for g in gaps if g.difference_s is not None]
    lines = [f"per-run gap {g.fixture}/{g.format}/{g.signature}: {g.verdict()}" for g in gaps]
    if measured:
        differences = sorted(g.difference_s * 1e6 for g in measured if g.difference_s is not None)
        met = sum(bool(g.met) for g in measured)
        names = f"{measured[0].consumer} − {measured[0].baseline}"
        lines.append(
            f"per-run gap {names} over {len(measured)} µs-scale cells: median "
            f"{statistics.median(differences):+.1f} µs (range {differences[0]:+.1f}.."
            f"{differences[-1]:+.1f}), within the limit on {met}"
        )
        pairs = [abs(d) * 1e6 for g in measured for d in g.pair_differences_s]
        selves = [abs(d) * 1e6 for g in measured for d in g.baseline_self_differences_s]
        if pairs and selves:
            baseline = measured[0].baseline
            lines.append(
                f"A/A control: |{names}| between one process of each, median "
                f"{statistics.median(pairs):.1f} µs over {len(pairs)} pairs; "
                f"|{baseline} − {baseline}| between consecutive processes of {baseline} alone "
                f"(same binary, same cell), median {statistics.median(selves):.1f} µs over "
                f"{len(selves)} pairs"
            )
    return lines


def render(result: BenchResult, console: Any) -> None:
    from rich.table import Table

    def ms(value: float | None) -> str:
        return (
            "-" if value is None else f"{value * 1e3:.3f}" if value < 0.01 else f"{value * 1e3:.1f}"
        )

    table = Table(title="tfinterop bench (times in ms, p50/p90 of steady runs)")
    for column in (
        "fixture",
        "format",
        "signature",
        "consumer",
        "status",
        "start-up",
        "load",
        "first",
        "p50",
        "p90",
        "RSS MB",
    ):
        table.add_column(
            column,
            justify="left"
            if column in ("fixture", "format", "signature", "consumer", "status")
            else "right",
        )
    for row in result.rows:
        table.add_row(
            row.fixture, row.format, row.signature, row.consumer, row.status,
            ms(row.startup_s), ms(row.load_s), ms(row.first_run_s), ms(row.p50_s), ms(row.p90_s),
            "-" if row.max_rss_mb is None else f"{row.max_rss_mb:.0f}",
        )  # fmt: skip
    console.print(table)
    ratio_table = Table(title="latency ratios (p50; target in brackets)")
    for column in ("fixture", "format", "signature", *RATIO_NAMES):
        ratio_table.add_column(column)
    by_cell: dict[tuple[str, str, str], dict[str, Ratio]] = {}
    for ratio in result.ratios:
        by_cell.setdefault((ratio.fixture, ratio.format, ratio.signature), {})[ratio.name] = ratio

    def show(ratio: Ratio | None) -> str:
        if ratio is None or ratio.value is None:
            return "-"
        mark = "" if ratio.met is None else (" ok" if ratio.met else " MISSED")
        target = f" [≤{ratio.target:g}]" if ratio.target is not None else ""
        return f"{ratio.value:.2f}{target}{mark}"

    for (fixture, fmt, signature), cell in by_cell.items():
        ratio_table.add_row(fixture, fmt, signature, *(show(cell.get(n)) for n in RATIO_NAMES))
    console.print(ratio_table)
    for ratio in result.ratios:
        if ratio.met is False:
            console.print(
                f"MISSED {ratio.name} on {ratio.fixture}/{ratio.format}/{ratio.signature}: "
                f"{ratio.explanation}"
            )
    for line in [*gap_lines(result.gaps), *interop_lines(result.interop)]:
        console.print(line, markup=False)


def write_benchmarks(result: BenchResult, directory: Path, note: str = "") -> None:
    """Refresh the committed results: results.json and a Markdown table with the machine."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(
        json.dumps(result.as_dict(), indent=2, default=str) + "\n"
    )
    lines = [
        "# Benchmark results",
        "",
        "Written by `nox -s bench` (`tfinterop bench --write benchmarks`); do not edit by hand.",
        *([note] if note else []),
        "",
        f"Machine: {result.machine['cpu']}, {result.machine['cores']} cores, "
        f"{result.machine['memory_gb']} GiB, {result.machine['platform']}, Python {result.machine['python']}.",
        f"Settings: {', '.join(f'{k}={v}' for k, v in result.settings.items())}.",
        "",
        "| fixture | format | signature | consumer | status | start-up ms | load ms | first ms "
        "| p50 ms | p90 ms | peak RSS MB |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1e3:.3f}"

    for row in result.rows:
        lines.append(
            f"| {row.fixture} | {row.format} | {row.signature} | {row.consumer} | {row.status} | "
            f"{ms(row.startup_s)} | "
            f"{ms(row.load_s)} | {ms(row.first_run_s)} | {ms(row.p50_s)} | {ms(row.p90_s)} | "
            f"{row.max_rss_mb if row.max_rss_mb is not None else '-'} |"
        )
    lines += [
        "",
        "| fixture | format | signature | ratio | value | target | met | why (when missed) |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for ratio in result.ratios:
        value = "-" if ratio.value is None else f"{ratio.value:.3f}"
        target = "-" if ratio.target is None else f"{ratio.target:g}"
        met = {None: "-", True: "yes", False: "**no**"}[ratio.met]
        lines.append(
            f"| {ratio.fixture} | {ratio.format} | {ratio.signature} | {ratio.name} | {value} | "
            f"{target} | {met} | {ratio.explanation} |"
        )
    for line in [*gap_lines(result.gaps), *interop_lines(result.interop)]:
        lines += ["", line]
    (directory / "RESULTS.md").write_text("\n".join(lines) + "\n")


def write_measurement(directory: Path | None, file: str, title: str, key: str, line: str) -> None:
    """A one-measurement page of the committed results (CHECK.md, LOCATE.md), if writing."""
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    (directory / file).write_text(
        f"# {title}\n\n"
        "Written by `nox -s bench` (`tfinterop bench --write benchmarks`); the figures are "
        f"also in results.json under `interop.{key}`.\n\n" + line + "\n"
    )
