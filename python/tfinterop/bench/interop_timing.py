"""Timing whole ``tfinterop interop`` runs: warm (median of several) and cold (a fresh
clone), and the warm run's lower bound (the floor) built from serial runs of the same plan,
with the sentences that report them against their targets."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..pipeline.settings import RunSettings
from .settings import BenchSettings

# Targets of issue "Performance" checked here, never in timed tests.
WARM_OVER_FLOOR_TARGET = 1.5
WARM_INTEROP_SECONDS_TARGET = 20.0
COLD_INTEROP_SECONDS_TARGET = 600.0
# `interop`'s defaults, passed explicitly: the timed runs are what a plain `interop` runs.
INTEROP_REPEAT = 3
INTEROP_WARMUP = 1


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


def time_warm_interop(settings: BenchSettings, work_root: Path) -> dict[str, Any]:
    """``settings.warm_runs`` timed warm interop runs over the benched fixtures and consumers, and
    as many serial (``-j 1``) runs of the same plan, interleaved so that load drifts reach
    both: the serial runs measure each consumer process alone, which the floor is built from."""
    from ..paths import project_root

    workers = settings.interop_jobs or RunSettings(build_dir=settings.build_dir).jobs
    names = settings.fixtures.names
    # The same fixtures, consumers and settings as the cells above.
    selection = [a for name in names or [] for a in ("-f", name)]
    selection += [a for name in settings.consumers or [] for a in ("-c", name)]
    selection += ["--fixtures-dir", str(settings.fixtures.directory)]
    if settings.onednn is not None:
        selection += ["--onednn", settings.onednn]
    selection += [
        "--build-dir", str(settings.build_dir), "--repeat", str(INTEROP_REPEAT),
        "--warmup", str(INTEROP_WARMUP), "--threads", ",".join(map(str, settings.threads)),
    ]  # fmt: skip
    command = interop_command([*selection, "-j", str(workers)])
    serial = interop_command([*selection, "-j", "1"])
    report = work_root / "interop.json"
    time_command(command)  # the first run may still refresh caches
    runs, isolated, drivers = [], [], []
    for _ in range(settings.warm_runs):
        runs.append(timed_interop(command, report))
        isolated.append(timed_interop(serial, report))
        # Start-up of the driver itself (nox + tfinterop import, or just the import).
        drivers.append(round(time_command([*command, "--help"]), 3))
    walls = [r["wall_s"] for r in runs]
    median = statistics.median(walls)
    interop = {
        # Recorded relative to the checkout: benchmarks/ is committed, machine paths are not.
        "command": " ".join(command).replace(f"{project_root()}/", ""),
        "fixture_set": (f"fixtures {', '.join(names)}" if names else "the default fixture set"),
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
