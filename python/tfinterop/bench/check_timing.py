"""``tfinterop bench``: `check` against ``saved_model_cli run`` on the same SavedModel and inputs.

``saved_model_cli run`` is what a user runs to get one model's outputs from Python alone;
``tfinterop check`` gets them from Python, Rust and C and compares them. Both are timed as a
user runs them (fresh processes, wall clock), alternating so that a change in the machine's
load hits both alike; the ratio of their medians is held against ``CHECK_OVER_SMC_TARGET``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..consumers import SAVED_MODEL, by_name, with_capability
from ..pipeline.cases import CaseRef
from .render import write_measurement
from .settings import BenchSettings

CHECK_OVER_SMC_TARGET = 1.3
PREFERRED_CASE = ("mobilenet_v3", "saved_model", "serving_default")
"""The model of issue 13's measurement: the MobileNetV3 SavedModel export."""
# The consumers `check` compares on a SavedModel by default: every default one that loads
# SavedModels (the .tflite interpreter does not; opt-in ones are not run), in registry order.
COMPARED = tuple(c.name for c in with_capability(SAVED_MODEL, by_name(None)))


def pick_case(refs: list[CaseRef]) -> CaseRef | None:
    """MobileNetV3's SavedModel when exported, else the first SavedModel case whose inputs
    ``saved_model_cli`` can read from .npy files (no strings); None if there is none."""
    usable = [
        ref
        for ref in refs
        if ref.case.format == "saved_model"
        and ref.case.inputs
        and all(e.dtype != tensors.STRING for e in ref.case.inputs)
    ]
    for ref in usable:
        if (ref.fixture, ref.case.format, ref.label) == PREFERRED_CASE:
            return ref
    return usable[0] if usable else None


def _program(name: str) -> list[str]:
    """A console script of this environment (what a user types), else ``python -m``."""
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "tfinterop"] if name == "tfinterop" else [name]


def commands(ref: CaseRef, build_dir: Path, work: Path) -> tuple[list[str], list[str]]:
    """(check, saved_model_cli run) on ``ref``'s SavedModel, fed ``ref``'s inputs."""
    work.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {
        e.key: tensors.read_tensor(ref.directory / e.file, e.dtype) for e in ref.case.inputs
    }
    np.savez(work / "inputs.npz", **arrays)
    feeds = []
    for key, array in arrays.items():
        np.save(work / f"{tensors.safe_file_name(key)}.npy", array)
        feeds.append(f"{key}={work / tensors.safe_file_name(key)}.npy")
    model = str(ref.directory / ref.case.model)
    tags = ["--tags", ",".join(ref.case.tags)] if ref.case.tags not in ([], ["serve"]) else []
    check = [
        *_program("tfinterop"), "check", model, *tags, "--signature", ref.case.signature,
        "--inputs", str(work / "inputs.npz"), "--no-build", "--build-dir", str(build_dir),
        "--work-dir", str(work / "check"), "--json", str(work / "check.json"),
    ]  # fmt: skip
    smc = [
        *_program("saved_model_cli"), "run", "--dir", model,
        "--tag_set", ",".join(ref.case.tags or ["serve"]), "--signature_def", ref.case.signature,
        "--inputs", ";".join(feeds), "--outdir", str(work / "smc"), "--overwrite",
    ]  # fmt: skip
    return check, smc


def _timed(command: list[str], environment: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the process and its children, exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu, done.returncode


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def _compared(report: Path) -> dict[str, str]:
    """Consumer -> status of the main rows of a check's --json report."""
    try:
        rows = json.loads(report.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return {}
    label_rows = [r for r in rows if " vs expected" not in r["fixture"]]
    return {str(r["consumer"]): str(r["status"]) for r in label_rows}


def time_check(
    refs: list[CaseRef],
    build_dir: Path,
    work: Path,
    environment: dict[str, str],
    runs: int = 3,
    log: Any = None,
) -> dict[str, Any]:
    """Time ``runs`` alternating pairs (after one untimed pair, which warms the page cache);
    returns the figures, the ratio of the medians and whether check compared every
    ``COMPARED`` consumer (every row passing)."""
    ref = pick_case(refs)
    if ref is None:
        return {"skipped": "no exported SavedModel case with non-string inputs"}
    check, smc = commands(ref, build_dir, work)
    env = {**os.environ, **environment}
    if log:
        log(f"timing check vs saved_model_cli run on {ref.fixture} ({runs} pairs) ...")
    _timed(check, env), _timed(smc, env)
    walls: dict[str, list[float]] = {"check": [], "smc": []}
    cpus: dict[str, list[float]] = {"check": [], "smc": []}
    failed: list[str] = []
    for index in range(runs):
        order = [("check", check), ("smc", smc)]
        for name, command in order if index % 2 == 0 else order[::-1]:
            wall, cpu, status = _timed(command, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
            if status != 0:
                failed.append(f"{name} run {index + 1} exited {status}")
    compared = _compared(work / "check.json")
    check_s, smc_s = _spread(walls["check"]), _spread(walls["smc"])
    ratio = check_s["median"] / smc_s["median"]
    root = Path.cwd()
    return {
        "model": f"{ref.fixture}/{ref.case.model}",
        "signature": ref.case.signature,
        "check_command": " ".join(check).replace(f"{root}/", ""),
        "smc_command": " ".join(smc).replace(f"{root}/", ""),
        "runs": runs,
        "check_s": walls["check"],
        "smc_s": walls["smc"],
        "check_cpu_s": cpus["check"],
        "smc_cpu_s": cpus["smc"],
        "check": check_s,
        "smc": smc_s,
        "pair_ratios": [c / s for c, s in zip(walls["check"], walls["smc"], strict=True)],
        "ratio": ratio,
        "target": CHECK_OVER_SMC_TARGET,
        "met": ratio <= CHECK_OVER_SMC_TARGET and not failed,
        "compared": compared,
        "all_compared": all(compared.get(name) == "pass" for name in COMPARED),
        "failures": failed,
        "load_average": os.getloadavg()[0],
    }


def check_line(figures: dict[str, Any]) -> str:
    """The measurement as one sentence (console and CHECK.md)."""
    if "skipped" in figures:
        return f"check vs saved_model_cli run: not measured ({figures['skipped']})."
    check, smc = figures["check"], figures["smc"]
    compared = ", ".join(f"{k} {v}" for k, v in figures["compared"].items()) or "no report"
    verdict = "met" if figures["met"] else "MISSED"
    failures = f"; FAILED: {', '.join(figures['failures'])}" if figures["failures"] else ""
    return (
        f"`tfinterop check` vs `saved_model_cli run` on {figures['model']} "
        f"({figures['signature']}, the export's inputs; {figures['runs']} alternating runs "
        f"each): check {check['median']:.2f} s median (min {check['min']:.2f}, max "
        f"{check['max']:.2f}; CPU {statistics.median(figures['check_cpu_s']):.1f} s), "
        f"saved_model_cli run {smc['median']:.2f} s (min {smc['min']:.2f}, max {smc['max']:.2f}; "
        f"CPU {statistics.median(figures['smc_cpu_s']):.1f} s); ratio {figures['ratio']:.2f} "
        f"(pairs {', '.join(f'{r:.2f}' for r in figures['pair_ratios'])}), target ≤ "
        f"{figures['target']:g}: {verdict}; check compared {compared}{failures} "
        f"(1-min load average {figures['load_average']:.1f})."
    )


def run(
    settings: BenchSettings, refs: list[CaseRef], environment: dict[str, str], console: Any
) -> dict[str, Any]:
    """The bench hook: measure, print, and with ``--write DIR`` write ``DIR/CHECK.md``."""
    figures = time_check(
        refs,
        settings.build_dir,
        settings.build_dir / "bench" / "check-vs-smc",
        environment,
        runs=settings.check_runs,
        log=lambda text: console.print(f"[dim]{text}[/]"),
    )
    line = check_line(figures)
    console.print(line, markup=False)
    write_measurement(
        settings.write, "CHECK.md", "`tfinterop check` vs `saved_model_cli run`", "check", line
    )
    return figures
