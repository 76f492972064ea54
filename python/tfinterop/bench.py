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
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .consumers import Consumer
from .pipeline import (
    CaseRef,
    Cell,
    CellOutcome,
    RunSettings,
    apply_expectation,
    build_plan,
    cell_expectation,
    compare_job,
    settings_from_args,
)
from .run import run_consumer

# Targets of issue "Performance" checked here, never in timed tests.
RUST_OVER_C_TARGET = 1.05
C_OVER_PYTHON_TARGET = 1.0
WARM_OVER_FLOOR_TARGET = 1.5
WARM_INTEROP_SECONDS_TARGET = 20.0
COLD_INTEROP_SECONDS_TARGET = 600.0
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
        row.status, row.message = "skip", "declared skip or format not supported"
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
    if record and record.get("status") == "ok":
        steady = np.array(record.get("steady_s") or [], dtype=float)
        row.load_s = record.get("load_s")
        row.first_run_s = record.get("first_run_s")
        row.runs = int(steady.size)
        if steady.size:
            row.p50_s = float(np.percentile(steady, 50))
            row.p90_s = float(np.percentile(steady, 90))
        # Warm-up runs are untimed; estimate them at the median so start-up is not inflated.
        accounted = (row.load_s or 0) + (row.first_run_s or 0) + float(steady.sum())
        accounted += settings.warmup * (row.p50_s or 0)
        row.startup_s = max(0.0, run.wall_s - accounted)
    if run.done.get("max_rss_kb") is not None:
        row.max_rss_mb = round(run.done["max_rss_kb"] / 1024, 1)
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


def explain_miss(slow: BenchRow, fast: BenchRow) -> str:
    """What the measurements say about a missed latency target (no guessing)."""
    assert slow.p50_s is not None and fast.p50_s is not None
    gap_us = (slow.p50_s - fast.p50_s) * 1e6
    notes = [f"{slow.consumer} p50 is {gap_us:.0f} µs above {fast.consumer}"]
    if slow.p90_s and fast.p90_s and slow.p50_s <= fast.p90_s:
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
            ratio.explanation += "; " + compare_profiles(slow, fast)
        elif not usable:
            ratio.explanation += "; no instruction profile: " + "; ".join(
                p.summary() for p in (slow, fast) if p is not None
            )
        else:
            (profiled,) = usable
            other = slow if profiled is fast else fast
            tensorflow_share = sum(
                count for name, count in profiled.by_object.items() if "tensorflow" in name
            ) / max(profiled.per_run, 1)
            ratio.explanation += (
                f"; callgrind: {profiled.summary()}: {tensorflow_share:.0%} of it inside "
                "libtensorflow, so the gap lies in TensorFlow's runtime, not in the binding "
                f"(the other consumer is not profiled: {other.error if other else 'n/a'})"
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
    except (OSError, ValueError):
        split, ok = {}, False
    split["other_s"] = round(wall - sum(split.values()), 3)  # nox, venv checks, imports
    return {"wall_s": round(wall, 3), "split": split, "ok": ok}


def cold_interop(work: Path) -> dict[str, Any]:
    """`nox -s interop` in a fresh clone of the committed tree: new virtualenv, exports and
    builds from nothing; package caches (uv's, cargo's registry) stay warm, as on a CI
    runner with a dependency cache."""
    from .build import project_root

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


def floor_estimate(rows: list[BenchRow], interop_repeat: int, interop_warmup: int) -> float:
    """Sum over consumers of one start-up plus every cell's load and runs at interop settings."""
    startups: dict[str, float] = {}
    work = 0.0
    for row in rows:
        if row.status not in ("pass", "fail"):
            continue
        startups[row.consumer] = min(startups.get(row.consumer, np.inf), row.startup_s or 0.0)
        work += (row.load_s or 0) + (row.first_run_s or 0)
        work += (interop_warmup + interop_repeat) * (row.p50_s or 0)
    return sum(startups.values()) + work


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
            justify="left" if column in ("fixture", "format", "consumer", "status") else "right",
        )
    for row in result.rows:
        table.add_row(
            row.fixture, row.format, row.consumer, row.status, ms(row.startup_s), ms(row.load_s),
            ms(row.first_run_s), ms(row.p50_s), ms(row.p90_s),
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


def interop_lines(interop: dict[str, Any]) -> list[str]:
    """The warm (and cold) interop figures against their targets, as sentences."""
    lines = []
    if "warm_s" in interop:
        lines.append(
            "Warm interop on {fixture_set}: {warm_s:.1f} s ({split}); floor (each "
            "consumer's start-up, model loads and runs at interop settings, plus the driver's "
            "start) {floor_s:.1f} s; ratio {ratio:.2f} (targets: ≤ {target_ratio:g} × floor and "
            "≤ {target_s:g} s).".format(
                **{
                    "fixture_set": "the default fixture set",
                    **interop,
                    "split": _split_text(interop["warm_split"]),
                }
            )
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
        "| fixture | format | consumer | status | start-up ms | load ms | first ms | p50 ms | p90 ms | peak RSS MB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1e3:.3f}"

    for row in result.rows:
        lines.append(
            f"| {row.fixture} | {row.format} | {row.consumer} | {row.status} | {ms(row.startup_s)} | "
            f"{ms(row.load_s)} | {ms(row.first_run_s)} | {ms(row.p50_s)} | {ms(row.p90_s)} | "
            f"{row.max_rss_mb if row.max_rss_mb is not None else '-'} |"
        )
    lines += [
        "",
        "| fixture | format | ratio | value | target | met | why (when missed) |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for ratio in result.ratios:
        value = "-" if ratio.value is None else f"{ratio.value:.3f}"
        target = "-" if ratio.target is None else f"{ratio.target:g}"
        met = {None: "-", True: "yes", False: "**no**"}[ratio.met]
        lines.append(
            f"| {ratio.fixture} | {ratio.format} | {ratio.name} | {value} | {target} | {met} | {ratio.explanation} |"
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
    from .export import export_fixtures
    from .fixtures import BrokenFixture, load_fixtures
    from .pipeline import cases_from_manifest

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

    from . import consumers as consumer_registry
    from .profile import SteadyProfile

    saved = json.loads(args.rerender.read_text())
    rows = [BenchRow(**r) for r in saved["rows"]]
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
    settings = RunSettings(build_dir=args.build_dir, environment=dict(saved["settings"]))
    explain_with_profiles(
        result_ratios, rows, refs, consumers, settings, args.build_dir / "bench",
        lambda text: console.print(f"[dim]{text}[/]"), args.profile_budget, known,
    )  # fmt: skip
    result = BenchResult(rows, result_ratios, saved["settings"], saved["machine"], saved["interop"])
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


def run(args: Any, console: Any, environment: dict[str, str]) -> int:
    """The ``bench`` command: export (cached), build, measure every cell, print, write."""
    from . import consumers as consumer_registry
    from .build import build_all, project_root
    from .report import write_json

    consumers = consumer_registry.by_name(args.consumers)
    refs = exported_cases(args.fixtures_dir, args.fixtures, args.build_dir, console)
    if not args.no_build:
        build_all(args.build_dir, consumers=consumers)
    settings = settings_from_args(args, environment, jobs=1)
    work_root = args.build_dir / "bench"
    rows = []
    for ref in refs:
        for consumer in consumers:
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
        # The same fixtures as the cells above, so the floor and the run cover the same work.
        selection = [a for name in args.fixtures or [] for a in ("-f", name)]
        if args.fixtures_dir:
            selection += ["--fixtures-dir", str(args.fixtures_dir)]
        command = interop_command(["--build-dir", str(args.build_dir), *selection])
        time_command(command)  # the first run may still refresh caches
        runs = [timed_interop(command, work_root / "interop.json") for _ in range(2)]
        best = min(runs, key=lambda r: r["wall_s"])
        warm = best["wall_s"]
        # Start-up of the driver itself (nox + tfinterop import, or just the import).
        driver = min(time_command([*command, "--help"]) for _ in range(2))
        floor = floor_estimate(rows, interop_repeat=3, interop_warmup=1) + driver
        result.interop = {
            # Recorded relative to the checkout: benchmarks/ is committed, machine paths are not.
            "command": " ".join(command).replace(f"{project_root()}/", ""),
            "driver_start_s": driver,
            "fixture_set": (
                f"fixtures {', '.join(args.fixtures)}"
                if args.fixtures
                else "the default fixture set"
            ),
            "warm_split": best["split"],
            "warm_ok": best["ok"],
            "warm_s": warm,
            "floor_s": floor,
            "ratio": warm / floor if floor else float("nan"),
            "target_ratio": WARM_OVER_FLOOR_TARGET,
            "target_s": WARM_INTEROP_SECONDS_TARGET,
        }
    if args.cold:
        console.print("[dim]cold `nox -s interop` in a fresh clone (several minutes) ...[/]")
        result.interop["cold"] = cold_interop(work_root)
    render(result, console)
    if args.json:
        write_json(args.json, result.as_dict())
    if args.write:
        write_benchmarks(result, args.write)
        console.print(f"benchmarks written to {args.write}")
    return 0 if all(r.status in ("pass", "skip", "xfail") for r in rows) else 1
