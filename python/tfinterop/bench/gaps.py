"""The per-run difference between two consumers on microsecond-scale cells, measured over
alternating processes.

One process's p50 of a µs-scale graph moves by tens of µs from one process to the next (the
thread pools' wake-ups, where the allocator and the code land), more than the few µs a
consumer may add per run. So a per-run difference is measured as the median of several
processes' p50s per consumer, the processes alternating between the two (ABBA order, so a
drift of the machine reaches both), and reported with the spread of the per-pair differences.
The verdict says only what these numbers show: met, not resolved (the pairs disagree in
sign), or an unexplained gap (the consumer is slower in every pair).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..consumers import PER_RUN_GAPS, Consumer
from ..pipeline.cases import CaseRef
from ..pipeline.settings import RunSettings
from .measure import BenchRow, bench_cell

MICROSECOND_SCALE_S = 1e-3
"""A cell is µs-scale when the baseline consumer's p50 is below this."""


@dataclass
class PerRunGap:
    fixture: str
    format: str
    signature: str
    consumer: str
    baseline: str
    limit_s: float
    consumer_p50s: list[float] = field(default_factory=list)
    baseline_p50s: list[float] = field(default_factory=list)
    """Each process's p50, in the order run (pair i is the i-th of each list)."""

    @property
    def difference_s(self) -> float | None:
        if not self.consumer_p50s or not self.baseline_p50s:
            return None
        return statistics.median(self.consumer_p50s) - statistics.median(self.baseline_p50s)

    @property
    def pair_differences_s(self) -> list[float]:
        return [a - b for a, b in zip(self.consumer_p50s, self.baseline_p50s, strict=False)]

    @property
    def baseline_self_differences_s(self) -> list[float]:
        """Between the baseline's own consecutive processes (the same binary, the same cell):
        what a per-pair difference looks like when there is no difference to find (A/A)."""
        return [b - a for a, b in zip(self.baseline_p50s, self.baseline_p50s[1:], strict=False)]

    @property
    def met(self) -> bool | None:
        difference = self.difference_s
        return None if difference is None else difference <= self.limit_s

    def verdict(self) -> str:
        difference = self.difference_s
        if difference is None:
            return "not measured (a process failed)"
        pairs = self.pair_differences_s
        low, high = min(pairs) * 1e6, max(pairs) * 1e6
        what = (
            f"{self.consumer} − {self.baseline} = {difference * 1e6:+.1f} µs at p50 (medians of "
            f"{len(self.consumer_p50s)} alternating processes each; per pair {low:+.1f}..{high:+.1f} µs)"
        )
        if self.met:
            return f"{what}: within {self.limit_s * 1e6:g} µs"
        if low < 0 < high:
            return (
                f"{what}: above {self.limit_s * 1e6:g} µs, but the pairs disagree in sign: the "
                "difference is smaller than the process-to-process spread, which this bench "
                "cannot resolve"
            )
        return (
            f"{what}: above {self.limit_s * 1e6:g} µs, {self.consumer} slower in every pair: "
            "unexplained"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "fixture": self.fixture,
            "format": self.format,
            "signature": self.signature,
            "consumer": self.consumer,
            "baseline": self.baseline,
            "limit_s": self.limit_s,
            "consumer_p50s": self.consumer_p50s,
            "baseline_p50s": self.baseline_p50s,
            "difference_s": self.difference_s,
            "met": self.met,
            "verdict": self.verdict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerRunGap:
        """A saved gap (results.json): its measurements; the verdict is derived again."""
        return cls(
            fixture=str(data["fixture"]),
            format=str(data["format"]),
            signature=str(data["signature"]),
            consumer=str(data["consumer"]),
            baseline=str(data["baseline"]),
            limit_s=float(data["limit_s"]),
            consumer_p50s=[float(v) for v in data.get("consumer_p50s") or []],
            baseline_p50s=[float(v) for v in data.get("baseline_p50s") or []],
        )


def gap_cells(rows: list[BenchRow]) -> list[tuple[tuple[str, str, str], str, str, float]]:
    """The (cell, consumer, baseline, limit) to measure: µs-scale cells where both passed."""
    by_cell: dict[tuple[str, str, str], dict[str, BenchRow]] = {}
    for row in rows:
        by_cell.setdefault((row.fixture, row.format, row.signature), {})[row.consumer] = row
    found = []
    for cell, by_consumer in by_cell.items():
        for name, baseline, limit in PER_RUN_GAPS:  # consumer names as the registry's data
            a, b = by_consumer.get(name), by_consumer.get(baseline)
            if not a or not b or a.status != "pass" or b.status != "pass":
                continue
            if b.p50_s is not None and a.p50_s is not None and b.p50_s < MICROSECOND_SCALE_S:
                found.append((cell, name, baseline, limit))
    return found


def measure_gaps(
    rows: list[BenchRow],
    refs: dict[tuple[str, str, str], CaseRef],
    consumers: dict[str, Consumer],
    settings: RunSettings,
    work_root: Path,
    processes: int,
    log: Callable[[str], None],
) -> list[PerRunGap]:
    """``processes`` processes per consumer on every µs-scale cell, alternating ABBA."""
    gaps = []
    for cell, name, baseline, limit in gap_cells(rows):
        if name not in consumers or baseline not in consumers:
            continue
        gap = PerRunGap(*cell, name, baseline, limit)
        log(f"per-run gap {'/'.join(cell)}: {processes} processes each of {name} and {baseline}")
        for index in range(processes):
            order = (name, baseline) if index % 2 == 0 else (baseline, name)
            p50s: dict[str, float | None] = {}
            for who in order:
                work = work_root / "gaps" / who / "__".join(cell) / str(index)
                p50s[who] = bench_cell(consumers[who], refs[cell], settings, work).p50_s
            first, second = p50s[name], p50s[baseline]
            if first is None or second is None:
                gap.consumer_p50s, gap.baseline_p50s = [], []
                break
            gap.consumer_p50s.append(first)
            gap.baseline_p50s.append(second)
        gaps.append(gap)
    return gaps
