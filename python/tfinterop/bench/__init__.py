"""``tfinterop bench``: latency and memory of every fixture x format x consumer, and the ratios.

Each cell runs in its own consumer process, one at a time, so load time and peak RSS are
the cell's own (as in a deployment) and no two measurements share the two cores. Every
consumer gets the same thread settings and oneDNN setting, recorded in the result.

The Python consumer is TensorFlow's Python API on the same file: on a SavedModel it calls the
restored signature (a ``tf.function``), on a frozen graph it runs a TF1 ``Session``.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..consumers import Consumer
from ..errors import UserError
from ..pipeline.cases import CaseRef, applicable, cell_expectation
from ..pipeline.cells import Cell, CellOutcome, apply_expectation
from ..pipeline.compare import compare_job
from ..pipeline.plan import build_plan
from ..pipeline.run import run_consumer
from ..pipeline.settings import RunSettings

# Targets of issue "Performance" checked here, never in timed tests.
RUST_OVER_C_TARGET = 1.05
C_OVER_PYTHON_TARGET = 1.0
WARM_OVER_FLOOR_TARGET = 1.5
WARM_INTEROP_SECONDS_TARGET = 20.0
COLD_INTEROP_SECONDS_TARGET = 600.0
# `interop`'s defaults, passed explicitly: the timed runs are what a plain `interop` runs.
INTEROP_REPEAT = 3
INTEROP_WARMUP = 1
# Callgrind runs TensorFlow ~50-100x slower than native (model load and first run included):
# measured 6 min for MobileNetV3 (load 0.1 s, first run 1.5 s, 10 runs of 0.1 s).
CALLGRIND_SLOWDOWN = 100.0


@dataclass
class BenchRow(CellOutcome):
    process_s: float | None = None
    """Wall time of the consumer process (start, library load, model load, all runs, exit)."""
    startup_s: float | None = None
    """Process wall time not spent in load or runs: interpreter/library start-up and exit."""
    load_s: float | None = None
    first_run_s: float | None = None
    p50_s: float | None = None
    p90_s: float | None = None
    runs: int = 0
    max_rss_mb: float | None = None


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


@dataclass
class BenchResult:
    rows: list[BenchRow]
    ratios: list[Ratio]
    settings: dict[str, Any]
    machine: dict[str, Any]
    interop: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "settings": self.settings,
            "rows": [asdict(r) for r in self.rows],
            "ratios": [asdict(r) for r in self.ratios],
            "interop": self.interop,
        }


def machine_description() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def bench_cell(consumer: Consumer, ref: CaseRef, settings: RunSettings, work: Path) -> BenchRow:
    row = BenchRow(ref.fixture, ref.case.format, ref.label, consumer.name, "error")
    plan = build_plan(
        consumer,
        [ref],
        work / "out",
        warmup=settings.warmup,
        repeat=settings.repeat,
        threads=settings.threads,
    )
    if not plan.jobs:
        declared = cell_expectation(consumer, ref)  # callers pass applicable pairs only
        row.status, row.message = "skip", declared.reason if declared else "declared skip"
        return row
    run = run_consumer(
        consumer,
        plan,
        work,
        settings.build_dir,
        timeout_s=settings.timeout_s,
        environment=settings.environment,
    )
    record = run.jobs.get(ref.job_id)
    failure = run.failure.describe() if run.failure else None
    # Declared expectations (a missing capability is a strict xfail) as in `interop`.
    cell = apply_expectation(
        compare_job(ref, consumer.name, record, failure), cell_expectation(consumer, ref)
    )
    row.status, row.message = cell.status, cell.message
    row.process_s = run.wall_s
    if record and record.ok:
        steady = np.array(record.steady_s, dtype=float)
        row.load_s = record.load_s
        row.first_run_s = record.first_run_s
        row.runs = int(steady.size)
        if steady.size:
            row.p50_s = float(np.percentile(steady, 50))
            row.p90_s = float(np.percentile(steady, 90))
        # Warm-up runs are untimed; estimate them at the median so start-up is not inflated.
        accounted = (row.load_s or 0) + (row.first_run_s or 0) + float(steady.sum())
        accounted += settings.warmup * (row.p50_s or 0)
        row.startup_s = max(0.0, run.wall_s - accounted)
    if run.done.max_rss_kb is not None:
        row.max_rss_mb = round(run.done.max_rss_kb / 1024, 1)
    return row


def _ratio(rows: dict[str, BenchRow], top: str, bottom: str) -> float | None:
    a, b = rows.get(top), rows.get(bottom)
    if not a or not b or not a.p50_s or not b.p50_s:
        return None
    return a.p50_s / b.p50_s


def ratios(rows: list[BenchRow]) -> list[Ratio]:
    grouped: dict[tuple[str, str, str], dict[str, BenchRow]] = {}
    for row in rows:
        grouped.setdefault((row.fixture, row.format, row.signature), {})[row.consumer] = row
    result = []
    for (fixture, fmt, signature), by_consumer in grouped.items():
        for name, top, bottom, target in (
            ("rust/c", "rust", "c", RUST_OVER_C_TARGET),
            ("c/python", "c", "python", C_OVER_PYTHON_TARGET),
            ("rust/python", "rust", "python", None),
        ):
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
) -> None:
    """Add callgrind instruction profiles to the explanation of every missed ratio; a
    profile whose estimated callgrind time exceeds ``profile_budget_s`` is skipped (said)."""
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


def interop_command(arguments: list[str]) -> list[str]:
    """``nox -s interop`` when run from the nox bench session (it sets TFINTEROP_BENCH_NOX),
    so the warm time includes nox's own start-up; else ``tfinterop interop``."""
    if os.environ.get("TFINTEROP_BENCH_NOX") and shutil.which("nox"):
        return ["nox", "-s", "interop", "--", *arguments]
    return [sys.executable, "-m", "tfinterop", "interop", *arguments]


def time_command(command: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, cwd=cwd
    )
    return time.perf_counter() - started


def timed_interop(command: list[str], report: Path, cwd: Path | None = None) -> dict[str, Any]:
    """Wall time of one interop run and its own split (install, export, build, run)."""
    import json

    report.unlink(missing_ok=True)
    wall = time_command([*command, "--json", str(report)], cwd=cwd)
    try:
        doc = json.loads(report.read_text())
        split = dict(doc.get("timings") or {})
        ok = bool(doc.get("summary", {}).get("ok"))
        # Each consumer process's wall (start to exit), as interop measured it.
        consumers = (doc.get("environment") or {}).get("consumers") or {}
        walls = {name: float(info["wall_s"]) for name, info in consumers.items() if info["wall_s"]}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        split, ok, walls = {}, False, {}
    split["other_s"] = round(wall - sum(split.values()), 3)  # nox, venv checks, imports
    return {"wall_s": round(wall, 3), "split": split, "ok": ok, "consumer_walls_s": walls}


def cold_interop(work: Path) -> dict[str, Any]:
    """`nox -s interop` in a fresh clone of the committed tree: new virtualenv, exports and
    builds from nothing; package caches (uv's, cargo's registry) stay warm, as on a CI
    runner with a dependency cache."""
    from ..paths import project_root

    clone = work / "cold-clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(
        ["git", "clone", "--quiet", str(project_root()), str(clone)], check=True, timeout=300
    )
    try:
        result = timed_interop(["nox", "-s", "interop", "--"], work / "cold.json", cwd=clone)
    finally:
        shutil.rmtree(clone, ignore_errors=True)
    result["target_s"] = COLD_INTEROP_SECONDS_TARGET
    return result


def _split_text(split: dict[str, float]) -> str:
    return ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in split.items())


def isolated_work(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each consumer's work: the least wall time of its whole-plan process over the serial
    (``-j 1``) interop runs, where it ran alone. A consumer with no process is left out."""
    work: dict[str, float] = {}
    for run in runs:
        for name, wall in (run.get("consumer_walls_s") or {}).items():
            if wall > 0:
                work[name] = min(work.get(name, wall), wall)
    return work


def floor_estimate(work: dict[str, float], workers: int, driver_start_s: float) -> float:
    """A lower bound of an interop run's wall time: with at most ``workers`` consumer processes
    at once, none faster than alone, no schedule ends before the work spread evenly over the
    workers, nor before the longest consumer; the driver starts before any of them."""
    if not work:
        return driver_start_s
    return max(sum(work.values()) / max(workers, 1), max(work.values())) + driver_start_s


def with_floor(interop: dict[str, Any]) -> dict[str, Any]:
    """``interop`` with its floor, the per-consumer work behind it, and the warm/floor ratio,
    derived from its recorded serial runs, workers and driver start-ups."""
    work = isolated_work(interop["isolated_runs"])
    driver = min(interop["driver_starts_s"])
    floor = floor_estimate(work, interop["workers"], driver)
    return {
        **interop,
        "consumer_work_s": {name: round(seconds, 3) for name, seconds in work.items()},
        "driver_start_s": driver,
        "floor_s": floor,
        "ratio": interop["warm_s"] / floor if floor else float("nan"),
    }


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
    for column in ("fixture", "format", "signature", "rust/c", "c/python", "rust/python"):
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
        ratio_table.add_row(
            fixture,
            fmt,
            signature,
            show(cell.get("rust/c")),
            show(cell.get("c/python")),
            show(cell.get("rust/python")),
        )
    console.print(ratio_table)
    for ratio in result.ratios:
        if ratio.met is False:
            console.print(
                f"MISSED {ratio.name} on {ratio.fixture}/{ratio.format}/{ratio.signature}: "
                f"{ratio.explanation}"
            )
    for line in interop_lines(result.interop):
        console.print(line, markup=False)


def warm_measure(interop: dict[str, Any]) -> str:
    """How the warm figure was measured, and which run's split is shown."""
    walls = interop.get("warm_walls_s")
    if not walls:  # a results.json from before every run was recorded
        return "best of 2 runs; the best run's split"
    return (
        f"median of {len(walls)} runs after an untimed one, min–max "
        f"{min(walls):.1f}–{max(walls):.1f} s; the median run's split"
    )


def floor_line(interop: dict[str, Any]) -> str:
    """What the floor is, what it assumes, and the warm/floor ratio, as one or two sentences."""
    targets = (
        f"Ratio {interop['ratio']:.2f} (targets: ≤ {interop['target_ratio']:g} × the floor and "
        f"≤ {interop['target_s']:g} s)."
    )
    if "isolated_runs" not in interop:
        return (
            f"Floor {interop['floor_s']:.1f} s is the old serial estimate (every consumer's "
            "benched cells summed, plus the driver's start), not a lower bound: this file "
            f"predates the isolated runs a bound is measured from. {targets}"
        )
    work = interop["consumer_work_s"]
    longest = max(work, key=work.__getitem__, default="none")
    workers = interop["workers"]
    # A failed consumer may stop early: its wall then understates its work (the bound holds).
    failed = any(not run["ok"] for run in interop["isolated_runs"])
    return (
        f"Lower bound {interop['floor_s']:.1f} s = max(Σ consumer work "
        f"{sum(work.values()):.1f} s / {workers} workers, longest {longest} "
        f"{work.get(longest, 0.0):.1f} s) + driver start {interop['driver_start_s']:.1f} s, a "
        f"consumer's work being its least process wall over {len(interop['isolated_runs'])} "
        f"`-j 1` interop runs of the same plan; it holds as long as no consumer runs faster "
        f"than alone and at most {workers} run at once"
        f"{' (a serial run FAILED)' if failed else ''}. {targets}"
    )


def interop_lines(interop: dict[str, Any]) -> list[str]:
    """The warm (and cold) interop figures against their targets, as sentences."""
    lines = []
    if "warm_s" in interop:
        failed = "" if interop.get("warm_ok", True) else "; a run FAILED"
        lines.append(
            f"Warm interop on {interop.get('fixture_set', 'the default fixture set')}: "
            f"{interop['warm_s']:.1f} s ({warm_measure(interop)}: "
            f"{_split_text(interop['warm_split'])}{failed}). {floor_line(interop)}"
        )
    cold = interop.get("cold")
    if cold:
        lines.append(
            f"Cold `nox -s interop` (fresh clone, new environment, nothing exported or built; "
            f"package caches warm): {cold['wall_s']:.0f} s ({_split_text(cold['split'])}); "
            f"target ≤ {cold['target_s']:.0f} s; {'passed' if cold['ok'] else 'FAILED'}."
        )
    return lines


def write_benchmarks(result: BenchResult, directory: Path, note: str = "") -> None:
    """Refresh the committed results: results.json and a Markdown table with the machine."""
    import json

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
    for line in interop_lines(result.interop):
        lines += ["", line]
    (directory / "RESULTS.md").write_text("\n".join(lines) + "\n")


def cell_key(ref: CaseRef) -> tuple[str, str, str]:
    """A case's (fixture, format, signature label): how rows and ratios name their cell."""
    return (ref.fixture, ref.case.format, ref.label)


def exported_cases(
    fixtures_dir: Path, names: list[str] | None, build_dir: Path, console: Any = None
) -> list[CaseRef]:
    """The cases of the named fixtures, exported (cached); a failed export is left out, and
    said on ``console`` when one is given."""
    from ..export import export_fixtures
    from ..fixtures import BrokenFixture, load_fixtures
    from ..pipeline.cases import cases_from_manifest

    fixtures = [f for f in load_fixtures(fixtures_dir, names) if not isinstance(f, BrokenFixture)]
    refs: list[CaseRef] = []
    for fixture, outcome in zip(
        fixtures, export_fixtures(fixtures, build_dir / "exports"), strict=True
    ):
        if outcome.manifest is None:
            if console is not None:
                console.print(f"[red]export of {fixture.name} failed:[/] {outcome.error}")
            continue
        refs += cases_from_manifest(fixture, outcome.manifest)
    return refs


def rerender(args: Any, console: Any) -> int:
    """``bench --rerender FILE``: rebuild rows' expectations, ratios and explanations from a
    saved results.json (no re-measuring; successful profiles are reused, failed ones are
    retried under --profile-budget) and print/write it again."""
    import json

    from .. import consumers as consumer_registry
    from .profile import SteadyProfile

    try:
        saved = json.loads(args.rerender.read_text())
        rows = [BenchRow(**r) for r in saved["rows"]]
        interop = dict(saved.get("interop") or {})
        if "isolated_runs" in interop:
            interop = with_floor(interop)  # the floor is derived, so it is re-derived
        interop_lines(interop)  # an old file's floor is shown as recorded, and said to be old
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"cannot re-render {args.rerender}: not a results.json written by `tfinterop bench` "
            f"({type(exc).__name__}: {exc})"
        ) from None
    refs = {
        cell_key(ref): ref
        for ref in exported_cases(
            args.fixtures_dir, sorted({r.fixture for r in rows}), args.build_dir
        )
    }
    consumers = {c.name: c for c in consumer_registry.ALL_CONSUMERS}
    for row in rows:
        ref, consumer = (
            refs.get((row.fixture, row.format, row.signature)),
            consumers.get(row.consumer),
        )
        if ref is not None and consumer is not None and row.status in ("error", "fail"):
            cell = Cell(
                row.fixture, row.format, row.signature, row.consumer, row.status, row.message
            )
            cell = apply_expectation(cell, cell_expectation(consumer, ref))
            row.status, row.message = cell.status, cell.message
    known = {
        (r["fixture"], r["format"], r["signature"], name): SteadyProfile(
            **{
                **p,
                "runs": tuple(p["runs"]),
                "top_functions": [tuple(t) for t in p["top_functions"]],
            }
        )
        for r in saved["ratios"]
        for name, p in (r.get("profiles") or {}).items()
        if not p.get("error")
    }
    result_ratios = ratios(rows)
    recorded = saved["settings"]
    # The settings hold the run options (numbers) and the consumers' environment (strings).
    settings = RunSettings(
        build_dir=args.build_dir,
        threads=(recorded.get("intra_op_threads", 0), recorded.get("inter_op_threads", 0)),
        environment={k: v for k, v in recorded.items() if isinstance(v, str)},
    )
    explain_with_profiles(
        result_ratios, rows, refs, consumers, settings, args.build_dir / "bench",
        lambda text: console.print(f"[dim]{text}[/]"), args.profile_budget, known,
    )  # fmt: skip
    result = BenchResult(rows, result_ratios, saved["settings"], saved["machine"], interop)
    render(result, console)
    if args.write:
        write_benchmarks(
            result,
            args.write,
            "Re-rendered from a saved results.json by `tfinterop bench --rerender` "
            "(expectations, ratios and explanations re-derived; nothing re-measured).",
        )
        console.print(f"benchmarks written to {args.write}")
    return 0 if all(r.status in ("pass", "skip", "xfail") for r in rows) else 1


def time_warm_interop(args: Any, work_root: Path) -> dict[str, Any]:
    """``args.warm_runs`` timed warm interop runs over the benched fixtures and consumers, and
    as many serial (``-j 1``) runs of the same plan, interleaved so that load drifts reach
    both: the serial runs measure each consumer process alone, which the floor is built from."""
    from ..paths import project_root

    workers = args.interop_jobs or RunSettings(build_dir=args.build_dir).jobs
    # The same fixtures, consumers and settings as the cells above.
    selection = [a for name in args.fixtures or [] for a in ("-f", name)]
    selection += [a for name in args.consumers or [] for a in ("-c", name)]
    if args.fixtures_dir:
        selection += ["--fixtures-dir", str(args.fixtures_dir)]
    if args.onednn is not None:
        selection += ["--onednn", args.onednn]
    selection += [
        "--build-dir", str(args.build_dir), "--repeat", str(INTEROP_REPEAT),
        "--warmup", str(INTEROP_WARMUP), "--threads", ",".join(map(str, args.threads)),
    ]  # fmt: skip
    command = interop_command([*selection, "-j", str(workers)])
    serial = interop_command([*selection, "-j", "1"])
    report = work_root / "interop.json"
    time_command(command)  # the first run may still refresh caches
    runs, isolated, drivers = [], [], []
    for _ in range(args.warm_runs):
        runs.append(timed_interop(command, report))
        isolated.append(timed_interop(serial, report))
        # Start-up of the driver itself (nox + tfinterop import, or just the import).
        drivers.append(round(time_command([*command, "--help"]), 3))
    walls = [r["wall_s"] for r in runs]
    median = statistics.median(walls)
    interop = {
        # Recorded relative to the checkout: benchmarks/ is committed, machine paths are not.
        "command": " ".join(command).replace(f"{project_root()}/", ""),
        "fixture_set": (
            f"fixtures {', '.join(args.fixtures)}" if args.fixtures else "the default fixture set"
        ),
        "workers": workers,
        "interop_repeat": INTEROP_REPEAT,
        "interop_warmup": INTEROP_WARMUP,
        "warm_runs": runs,
        "warm_walls_s": walls,
        # The split of the run nearest the median (with an even count, the median is a mean).
        "warm_split": min(runs, key=lambda r: abs(r["wall_s"] - median))["split"],
        "warm_ok": all(r["ok"] for r in runs),
        "warm_s": median,
        "isolated_runs": isolated,
        "driver_starts_s": drivers,
        "target_ratio": WARM_OVER_FLOOR_TARGET,
        "target_s": WARM_INTEROP_SECONDS_TARGET,
    }
    return with_floor(interop)


def run(args: Any, console: Any, environment: dict[str, str]) -> int:
    """The ``bench`` command: export (cached), build, measure every cell, print, write."""
    from .. import consumers as consumer_registry
    from ..consumers import BuildError
    from ..pipeline.build import build_each
    from ..report import write_json

    consumers = consumer_registry.by_name(args.consumers)
    refs = exported_cases(args.fixtures_dir, args.fixtures, args.build_dir, console)
    if not args.no_build:
        for outcome in build_each(args.build_dir, consumers):
            if outcome.error:  # measuring a stale binary would publish wrong figures
                raise BuildError(outcome.error)
    settings = RunSettings(
        build_dir=args.build_dir,
        timeout_s=args.timeout,
        jobs=1,
        warmup=args.warmup,
        repeat=args.repeat,
        threads=args.threads,
        environment=environment,
    )
    work_root = args.build_dir / "bench"
    rows = []
    for ref in refs:
        for consumer in (c for c in consumers if applicable(c, ref)):  # other pairs: no cell
            work = work_root / consumer.name / ref.job_id.replace("/", "__")
            console.print(f"[dim]bench {ref.job_id} on {consumer.name} ...[/]")
            rows.append(bench_cell(consumer, ref, settings, work))
    result_ratios = ratios(rows)
    if args.profile_misses:
        explain_with_profiles(
            result_ratios,
            rows,
            {cell_key(r): r for r in refs},
            {c.name: c for c in consumers},
            settings,
            work_root,
            lambda text: console.print(f"[dim]{text}[/]"),
            profile_budget_s=args.profile_budget,
        )
    result = BenchResult(
        rows=rows,
        ratios=result_ratios,
        settings={
            "repeat": args.repeat,
            "warmup": args.warmup,
            "intra_op_threads": args.threads[0],
            "inter_op_threads": args.threads[1],
            **environment,
        },
        machine=machine_description(),
    )
    if args.interop_timing:
        result.interop = time_warm_interop(args, work_root)
    if args.cold:
        console.print("[dim]cold `nox -s interop` in a fresh clone (several minutes) ...[/]")
        result.interop["cold"] = cold_interop(work_root)
    if args.check_timing:  # `check` vs `saved_model_cli run`: bench_check.py
        from .check_timing import run as time_check

        result.interop["check"] = time_check(args, refs, environment, console)
    render(result, console)
    if args.json:
        write_json(args.json, result.as_dict())
    if args.write:
        write_benchmarks(result, args.write)
        console.print(f"benchmarks written to {args.write}")
    return 0 if all(r.status in ("pass", "skip", "xfail") for r in rows) else 1
