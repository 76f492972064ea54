"""``tfinterop bench``: ``locate`` and ``reduce`` timed as a user runs them.

``locate`` fetches every tensor of MobileNetV3's frozen graph in the reference and every
consumer that can (with oneDNN on in the located consumers, the divergence the README
shows); ``reduce`` locates it in the C-API consumer and writes and confirms the repro. Each
is a fresh ``tfinterop`` process, timed by wall clock, ``runs`` times alternating; medians
with min and max are held against the issue's targets (locate ≤ 30 s, reduce ≤ 120 s).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..consumers import KERNEL_REGISTRY, LOCATE_TIMED, first_with
from ..pipeline.cases import CaseRef
from .render import write_measurement
from .settings import BenchSettings

LOCATE_TARGET_S = 30.0
REDUCE_TARGET_S = 120.0
CASE = ("mobilenet_v3", "frozen")


def _command(kind: str, build_dir: Path, work: Path, consumer: str) -> list[str]:
    fixture, fmt = CASE
    common = [
        "-f", fixture, "--format", fmt, "--onednn", "1", "--atol", "0", "--rtol", "1e-7",
        "--build-dir", str(build_dir), "--no-build", "--json", str(work / f"{kind}.json"),
    ]  # fmt: skip
    if kind == "reduce":
        common += ["-c", consumer, "--out", str(work / "repro")]
    else:  # the consumers the target is stated for (registry LOCATE_TIMED)
        common += [a for name in LOCATE_TIMED for a in ("-c", name)]
    return [sys.executable, "-m", "tfinterop", kind, *common]


def time_locate(settings: BenchSettings, refs: list[CaseRef], console: Any) -> dict[str, Any]:
    if not any((r.fixture, r.case.format) == CASE for r in refs):
        return {"skipped": f"{'/'.join(CASE)} is not among the benched fixtures"}
    work = settings.build_dir / "bench" / "locate"
    work.mkdir(parents=True, exist_ok=True)
    # reduce works on one consumer: the C-API one (the registry's kernel-registry program).
    consumer = first_with(KERNEL_REGISTRY).name
    walls: dict[str, list[float]] = {"locate": [], "reduce": []}
    outcome: dict[str, Any] = {}
    for number in range(settings.check_runs):
        for kind in ("locate", "reduce"):
            console.print(f"[dim]timing {kind} on {'/'.join(CASE)} ({number + 1}) ...[/]")
            command = _command(kind, settings.build_dir, work, consumer)
            started = time.perf_counter()
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=1800, check=False
            )
            walls[kind].append(time.perf_counter() - started)
            report = work / f"{kind}.json"
            outcome[kind] = {
                "exit": done.returncode,
                "first_divergence": {
                    name: (loc.get("first_divergence") or {}).get("node")
                    for name, loc in json.loads(report.read_text())["consumers"].items()
                }
                if report.exists()
                else None,
                "reproduces": json.loads(report.read_text()).get("repro", {}).get("reproduces")
                if kind == "reduce" and report.exists()
                else None,
            }
    figures: dict[str, Any] = {
        "case": "/".join(CASE),
        "runs": settings.check_runs,
        "outcome": outcome,
    }
    for kind, target in (("locate", LOCATE_TARGET_S), ("reduce", REDUCE_TARGET_S)):
        values = walls[kind]
        median = statistics.median(values)
        figures[kind] = {
            "walls_s": values, "median": median, "min": min(values), "max": max(values),
            "target": target, "met": median <= target,
        }  # fmt: skip
    return figures


def locate_line(figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"locate/reduce: not measured ({figures['skipped']})."
    parts = []
    for kind in ("locate", "reduce"):
        f = figures[kind]
        verdict = "met" if f["met"] else "MISSED"
        parts.append(
            f"{kind} {f['median']:.1f} s median (min {f['min']:.1f}, max {f['max']:.1f}; "
            f"target ≤ {f['target']:g} s: {verdict})"
        )
    found = figures["outcome"].get("locate", {}).get("first_divergence") or {}
    repro = figures["outcome"].get("reduce", {}).get("reproduces")
    return (
        f"`tfinterop locate`/`reduce` on {figures['case']} (every fetchable tensor; locate in "
        f"{', '.join(LOCATE_TIMED)} against the reference, oneDNN on in the located consumers, {figures['runs']} alternating runs each, fresh processes): "
        + "; ".join(parts)
        + f"; first divergence {', '.join(f'{k}: {v}' for k, v in found.items()) or 'none'}; "
        f"repro fails on its own: {repro}."
    )


def run(settings: BenchSettings, refs: list[CaseRef], console: Any) -> dict[str, Any]:
    figures = time_locate(settings, refs, console)
    line = locate_line(figures)
    console.print(line, markup=False)
    write_measurement(
        settings.write, "LOCATE.md", "`tfinterop locate` and `reduce`", "locate", line
    )
    return figures
