"""``tfinterop bench``: what one more ``--runtime`` costs.

Three commands, alternating, ``runs`` times each, fresh ``tfinterop`` processes timed by wall
clock on the benched fixtures with the native consumers and the Python reference:

* ``pinned``: ``interop --no-build`` on the pinned runtime only;
* ``warm``: the same plus ``--runtime OTHER --runtime PINNED`` with OTHER installed;
* ``first``: ``warm`` with a fresh runtime cache (``TFINTEROP_CACHE_DIR``), so the runtime is
  installed in the run's build stage (all three run it: consumers up to date, so it only
  checks fingerprints, equally in each); the wheel is in uv's cache (the issue's "after the wheel is
  downloaded": the download itself depends on the network, not on tfinterop).

``warm - pinned`` is held against the extra consumers' own process walls (what they cannot
avoid costing; two run at once, so the sum is an upper bound of their share), ``first - warm``
against 60 s. Disk: the runtime's installed bytes, and how many of them are hard links into
uv's cache (no new blocks).
"""

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

from ..runtimes import Runtime, disk_usage, ensure_installed, pinned_runtime
from .render import write_measurement
from .settings import BenchSettings

RUNTIME = "2.15.1"
FIRST_RUN_TARGET_S = 60.0
KINDS = ("pinned", "warm", "first")


def _command(settings: BenchSettings, kind: str, report: Path) -> list[str]:
    command = [
        sys.executable, "-m", "tfinterop", "interop", "--repeat", "1",
        "--warmup", "0", "--build-dir", str(settings.build_dir), "--json", str(report),
        "--fixtures-dir", str(settings.fixtures.directory),
    ]  # fmt: skip
    for name in settings.fixtures.names or []:
        command += ["-f", name]
    for name in settings.consumers or []:
        command += ["-c", name]
    if kind != "pinned":
        command += ["--runtime", RUNTIME, "--runtime", pinned_runtime()]
    return command


def time_runtime(settings: BenchSettings, console: Any) -> dict[str, Any]:
    runtime = Runtime(RUNTIME, False)
    ensure_installed(runtime)  # downloads the wheel into uv's cache once, if it is not there
    work = settings.build_dir / "bench" / "runtime"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    walls: dict[str, list[float]] = {kind: [] for kind in KINDS}
    extra_walls: list[float] = []
    statuses: dict[str, dict[str, int]] = {}
    for number in range(settings.check_runs):
        for kind in KINDS:
            console.print(f"[dim]timing interop ({kind} runtime set, {number + 1}) ...[/]")
            report = work / f"{kind}-{number}.json"
            environment = dict(os.environ)
            if kind == "first":
                environment["TFINTEROP_CACHE_DIR"] = str(work / f"cache-{number}")
            started = time.perf_counter()
            done = subprocess.run(
                _command(settings, kind, report),
                capture_output=True, text=True, timeout=3600, env=environment, check=False,
            )  # fmt: skip
            walls[kind].append(time.perf_counter() - started)
            if not report.exists():
                raise RuntimeError(f"interop ({kind}) wrote no report: {done.stderr[-2000:]}")
            doc = json.loads(report.read_text())
            counts: dict[str, int] = {}
            for row in doc["rows"]:
                counts[row["status"]] = counts.get(row["status"], 0) + 1
            statuses[kind] = counts
            if kind == "warm":
                consumers = doc["environment"].get("consumers", {})
                extra_walls.append(
                    sum(
                        float(info.get("wall_s") or 0.0)
                        for name, info in consumers.items()
                        if name.endswith(f"@{RUNTIME}")
                    )
                )
    median = {kind: statistics.median(values) for kind, values in walls.items()}
    added_warm = [w - p for w, p in zip(walls["warm"], walls["pinned"], strict=True)]
    added_first = [f - w for f, w in zip(walls["first"], walls["warm"], strict=True)]
    size, own = disk_usage(runtime)
    return {
        "runtime": RUNTIME,
        "pinned": pinned_runtime(),
        "runs": settings.check_runs,
        "walls_s": walls,
        "median_s": median,
        "added_warm_s": added_warm,
        "extra_consumer_walls_s": extra_walls,
        "added_first_s": added_first,
        "first_target_s": FIRST_RUN_TARGET_S,
        "first_met": statistics.median(added_first) <= FIRST_RUN_TARGET_S,
        "statuses": statuses,
        "disk_bytes": size,
        "hard_linked_bytes": size - own,
    }


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f})"


def runtime_line(figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"runtime cost: not measured ({figures['skipped']})."
    added = figures["added_warm_s"]
    extra = figures["extra_consumer_walls_s"]
    verdict = "within" if statistics.median(added) <= statistics.median(extra) else "MORE than"
    first = figures["added_first_s"]
    disk = figures["disk_bytes"] / 1e6
    linked = figures["hard_linked_bytes"] / 1e6
    return (
        f"One more runtime (`--runtime {figures['runtime']} --runtime {figures['pinned']}` on "
        f"the benched fixtures, python + native consumers, {figures['runs']} alternating rounds "
        f"of fresh processes): warm interop {_spread(figures['walls_s']['pinned'])} on the "
        f"pinned runtime alone, {_spread(figures['walls_s']['warm'])} with the extra runtime: "
        f"+{_spread(added)}, {verdict} the extra consumers' own process walls "
        f"(sum {_spread(extra)}; they run beside the others, so the sum bounds their share). "
        f"First run with the runtime not installed (wheel in uv's cache): "
        f"+{_spread(first)} over warm (target ≤ {figures['first_target_s']:g} s: "
        f"{'met' if figures['first_met'] else 'MISSED'}); no consumer is rebuilt per runtime "
        f"(one binary runs on every C API, checked by its reported TF_Version). Disk: "
        f"{disk:.0f} MB installed, of which {linked:.0f} MB are hard links into uv's cache "
        f"(no new blocks beyond uv's unpacked wheel)."
    )


def run(settings: BenchSettings, console: Any) -> dict[str, Any]:
    figures = time_runtime(settings, console)
    line = runtime_line(figures)
    console.print(line, markup=False)
    write_measurement(settings.write, "RUNTIMES.md", "One more TensorFlow runtime", "runtime", line)
    return figures
