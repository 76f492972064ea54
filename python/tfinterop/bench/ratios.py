"""Latency ratios between consumers on one cell, against the targets the consumer registry
declares (``LATENCY_RATIOS``), and what the measurements (and, for a miss, callgrind
instruction profiles) say about a missed one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..consumers import LATENCY_RATIOS, Consumer
from ..pipeline.cases import CaseRef
from ..pipeline.settings import RunSettings
from .measure import BenchRow

# Callgrind runs TensorFlow ~50-100x slower than native (model load and first run included):
# measured 6 min for MobileNetV3 (load 0.1 s, first run 1.5 s, 10 runs of 0.1 s).
CALLGRIND_SLOWDOWN = 100.0


def ratio_name(top: str, bottom: str) -> str:
    return f"{top}/{bottom}"


RATIO_NAMES = tuple(ratio_name(top, bottom) for top, bottom, _target in LATENCY_RATIOS)
"""The ratios' names, in the registry's order (the console table's columns)."""


@dataclass
class Ratio:
    fixture: str
    format: str
    signature: str
    name: str
    value: float | None
    target: float | None
    met: bool | None
    explanation: str = ""
    profiles: dict[str, Any] = field(default_factory=dict)
    """Callgrind profiles (per consumer) behind the explanation of a miss."""


def _ratio(rows: dict[str, BenchRow], top: str, bottom: str) -> float | None:
    a, b = rows.get(top), rows.get(bottom)
    if not a or not b or not a.p50_s or not b.p50_s:
        return None
    return a.p50_s / b.p50_s


def ratios(rows: list[BenchRow]) -> list[Ratio]:
    """Every registry latency ratio of every cell (None where a side has no p50)."""
    grouped: dict[tuple[str, str, str], dict[str, BenchRow]] = {}
    for row in rows:
        grouped.setdefault((row.fixture, row.format, row.signature), {})[row.consumer] = row
    result = []
    for (fixture, fmt, signature), by_consumer in grouped.items():
        for top, bottom, target in LATENCY_RATIOS:  # consumer names as the registry's data
            name = ratio_name(top, bottom)
            value = _ratio(by_consumer, top, bottom)
            met = None if value is None or target is None else value <= target
            explanation = ""
            if met is False:
                explanation = explain_miss(by_consumer[top], by_consumer[bottom])
            result.append(Ratio(fixture, fmt, signature, name, value, target, met, explanation))
    return result


def within_spread(slow: BenchRow, fast: BenchRow) -> bool:
    """Whether the slower p50 lies within the faster's measured run-to-run spread (its p90)."""
    return bool(slow.p50_s and slow.p90_s and fast.p90_s and slow.p50_s <= fast.p90_s)


def explain_miss(slow: BenchRow, fast: BenchRow) -> str:
    """What the measurements say about a missed latency target (no guessing)."""
    assert slow.p50_s is not None and fast.p50_s is not None
    gap_us = (slow.p50_s - fast.p50_s) * 1e6
    notes = [f"{slow.consumer} p50 is {gap_us:.0f} µs above {fast.consumer}"]
    if within_spread(slow, fast):
        assert fast.p90_s is not None
        notes.append(
            f"within run-to-run spread: {slow.consumer} p50 {slow.p50_s * 1e3:.3f} ms <= "
            f"{fast.consumer} p90 {fast.p90_s * 1e3:.3f} ms"
        )
    return "; ".join(notes)


def explain_with_profiles(
    result_ratios: list[Ratio],
    rows: list[BenchRow],
    refs: dict[tuple[str, str, str], CaseRef],
    consumers: dict[str, Consumer],
    settings: RunSettings,
    work_root: Path,
    log: Any,
    profile_budget_s: float = 300.0,
    known: dict[tuple[str, str, str, str], Any] | None = None,
    new_profiles: bool = True,
) -> None:
    """Add callgrind instruction profiles to the explanation of every missed ratio; a
    profile whose estimated callgrind time exceeds ``profile_budget_s`` is skipped (said).
    ``known`` profiles (a re-render) are reused; ``new_profiles=False`` runs no others."""
    from .profile import SteadyProfile, compare_profiles, profile_steady_run

    by_cell = {(r.fixture, r.format, r.signature, r.consumer): r for r in rows}
    cache: dict[tuple[str, str, str, str], SteadyProfile] = dict(known or {})

    def profile(cell: tuple[str, str, str], name: str) -> SteadyProfile | None:
        key = (*cell, name)
        consumer, row = consumers.get(name), by_cell.get(key)
        if consumer is None or row is None or not row.p50_s:
            return None
        if key not in cache:
            # About half a second of native steady runs: enough to swamp start-up noise.
            span = max(5, min(200, int(0.5 / row.p50_s)))
            # Both callgrind processes load the model and run it: ~CALLGRIND_SLOWDOWN x native.
            native = 2 * ((row.load_s or 0) + (row.first_run_s or 0)) + (10 + span) * row.p50_s
            estimate = CALLGRIND_SLOWDOWN * native
            if not new_profiles:
                cache[key] = SteadyProfile(
                    name, 0, {}, [], (5, 5 + span), "not profiled (--no-profile-misses)"
                )
                return cache[key]
            if estimate > profile_budget_s:
                cache[key] = SteadyProfile(
                    name, 0, {}, [], (5, 5 + span),
                    f"skipped: callgrind would take ~{estimate / 60:.0f} min "
                    f"(budget {profile_budget_s / 60:.0f} min, --profile-budget)",
                )  # fmt: skip
                return cache[key]
            log(f"profiling {'/'.join(cell)} on {name} ({span} runs under callgrind) ...")
            cache[key] = profile_steady_run(
                consumer,
                refs[cell],
                settings,
                work_root / "profile" / name / "__".join(cell),
                runs=(5, 5 + span),
            )
        return cache[key]

    for ratio in result_ratios:
        if ratio.met is not False:
            continue
        cell = (ratio.fixture, ratio.format, ratio.signature)
        slow_name, fast_name = ratio.name.split("/")
        slow, fast = profile(cell, slow_name), profile(cell, fast_name)
        ratio.profiles = {p.consumer: asdict(p) for p in (slow, fast) if p is not None}
        usable = [p for p in (slow, fast) if p is not None and not p.error]
        if slow is not None and fast is not None and len(usable) == 2:
            spread = within_spread(by_cell[(*cell, slow_name)], by_cell[(*cell, fast_name)])
            ratio.explanation += "; " + compare_profiles(
                slow, fast, within_spread=spread, wall_ratio=ratio.value
            )
        elif not usable:
            ratio.explanation += "; no instruction profile: " + "; ".join(
                p.summary() for p in (slow, fast) if p is not None
            )
        else:
            # One profile has nothing to be compared with: it says what one side executes,
            # not where the gap between the two lies.
            (profiled,) = usable
            other = slow if profiled is fast else fast
            other_name = fast_name if profiled is slow else slow_name
            other_text = other.summary() if other else f"{other_name}: no profile"
            ratio.explanation += (
                f"; only {profiled.consumer} was profiled ({other_text}), so the gap is "
                f"unexplained; callgrind: {profiled.summary()}"
            )
