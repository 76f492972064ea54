"""``tfinterop bench``: what the consumer sandbox (and its resource limits) costs.

Each consumer runs a trivial plan (``linear``'s frozen graph, else the first benched case) in
``--sandbox-pairs`` pairs of fresh processes, one plain (no sandbox, no limits) and one as ``check``
starts it (bubblewrap and the default limits), alternating which comes first so that drift
in the machine's load hits both alike. Start overhead: ``PROGRAM --help`` (the
program starts and exits, no TensorFlow work) in ``START_PAIRS`` alternating pairs, the pair
differences of the walls (median, min-max) against ``START_TARGET_S``; the whole-process
differences of the real runs are reported beside it (their own noise is seconds for a
process importing TensorFlow); steady cost: the difference of the pairs' p50 of the timed
runs (the sandbox adds nothing to a run once the process started).
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import consumers as registry
from ..pipeline.cases import CaseRef, applicable
from ..pipeline.plan import build_plan
from ..pipeline.run import run_consumer
from ..pipeline.settings import RunSettings
from ..process import child_environment, tail_lines
from ..sandbox import Limits, SandboxPolicy, confine, probe, unavailable
from .render import write_measurement
from .settings import BenchSettings

START_PAIRS = 30
REPEAT = 50
WARMUP = 50
START_TARGET_S = 0.050
PREFERRED = ("linear", "frozen")


def pick_case(refs: list[CaseRef]) -> CaseRef | None:
    for ref in refs:
        if (ref.fixture, ref.case.format) == PREFERRED:
            return ref
    return refs[0] if refs else None


def _one(
    consumer: registry.Consumer,
    ref: CaseRef,
    run_settings: RunSettings,
    work: Path,
    policy: SandboxPolicy,
) -> tuple[float, float] | str:
    """(process wall, p50 of the steady runs), or what went wrong."""
    plan = build_plan(
        consumer, [ref], work / "out", warmup=WARMUP, repeat=REPEAT, threads=run_settings.threads
    )
    run = run_consumer(
        consumer, plan, work, run_settings.build_dir, timeout_s=run_settings.timeout_s,
        environment=run_settings.environment, sandbox=policy,
    )  # fmt: skip
    record = run.jobs.get(ref.job_id)
    if run.failure or record is None or not record.ok or not record.steady_s:
        return run.problem() or (record.failure_text() if record else "no record")
    return run.wall_s, float(np.percentile(record.steady_s, 50))


def _start_costs(
    consumer: registry.Consumer, run_settings: RunSettings, work: Path
) -> list[float] | str:
    """What the sandbox adds to starting this consumer's program, apart from its work:
    ``START_PAIRS`` alternating pairs of ``PROGRAM --help`` (exits before loading a model),
    plain and as ``check`` starts it; the pair differences of the process walls."""
    command = [*consumer.command(run_settings.build_dir), "--help"]
    environment = child_environment({**run_settings.environment, **consumer.process_environment()})
    differences = []
    for number in range(START_PAIRS):
        walls = {}
        order = (False, True) if number % 2 == 0 else (True, False)
        for enabled in order:
            policy = SandboxPolicy(enabled, Limits.defaults() if enabled else Limits())
            confined = confine(
                command, policy, environment=environment, work_dir=work / str(enabled)
            )
            started = time.perf_counter()
            done = subprocess.run(
                confined.command, env=confined.environment, capture_output=True, check=False,
                timeout=120,
            )  # fmt: skip
            walls[enabled] = time.perf_counter() - started
            if done.returncode != 0:
                tail = tail_lines(done.stderr.decode(errors="replace"))
                return f"`{' '.join(command)}` exited {done.returncode}: {tail}"
        differences.append(walls[True] - walls[False])
    return differences


def time_sandbox(
    settings: BenchSettings, refs: list[CaseRef], run_settings: RunSettings, console: Any
) -> dict[str, Any]:
    problem = unavailable()
    ref = pick_case(refs)
    if problem or ref is None:
        return {"skipped": problem or "no exported case"}
    tool = probe().tool
    assert tool is not None
    plain = SandboxPolicy(False, Limits())
    confined = SandboxPolicy(True, Limits.defaults())
    work_root = settings.build_dir / "bench" / "sandbox"
    figures: dict[str, Any] = {
        "tool": f"{tool.name} {tool.version}",
        "case": f"{ref.fixture}/{ref.case.format}/{ref.label}",
        "pairs": settings.sandbox_pairs,
        "start_pairs": START_PAIRS,
        "repeat": REPEAT,
        "warmup": WARMUP,
        "start_target_s": START_TARGET_S,
        "limits": confined.limits.as_dict(),
        "consumers": {},
    }
    for consumer in registry.by_name(settings.consumers):
        if not applicable(consumer, ref) or run_settings.unavailable(consumer):
            continue
        started = _start_costs(consumer, run_settings, work_root / consumer.name / "start")
        if isinstance(started, str):
            figures["consumers"][consumer.name] = {"error": started}
            continue
        walls: dict[str, list[float]] = {"plain": [], "sandboxed": []}
        p50s: dict[str, list[float]] = {"plain": [], "sandboxed": []}
        error = None
        for number in range(settings.sandbox_pairs):
            order = ("plain", "sandboxed") if number % 2 == 0 else ("sandboxed", "plain")
            console.print(f"[dim]sandbox timing: {consumer.name}, pair {number + 1}[/]")
            for kind in order:
                policy = confined if kind == "sandboxed" else plain
                outcome = _one(
                    consumer, ref, run_settings, work_root / consumer.name / kind, policy
                )
                if isinstance(outcome, str):
                    error = f"{kind}: {outcome}"
                    break
                walls[kind].append(outcome[0])
                p50s[kind].append(outcome[1])
            if error:
                break
        if error:
            figures["consumers"][consumer.name] = {"error": error}
            continue
        whole = [s - p for s, p in zip(walls["sandboxed"], walls["plain"], strict=True)]
        steady = [s - p for s, p in zip(p50s["sandboxed"], p50s["plain"], strict=True)]
        figures["consumers"][consumer.name] = {
            "walls_s": walls,
            "p50_s": p50s,
            "start_added_s": started,
            "run_added_s": whole,
            "steady_added_s": steady,
            "start_median_s": statistics.median(started),
            "run_median_s": statistics.median(whole),
            "steady_median_s": statistics.median(steady),
            "start_met": statistics.median(started) <= START_TARGET_S,
        }
    return figures


def _ms(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1e3:+.1f} ms "
        f"(min {min(values) * 1e3:+.1f}, max {max(values) * 1e3:+.1f})"
    )


def _us(values: list[float]) -> str:
    return (
        f"{statistics.median(values) * 1e6:+.1f} µs "
        f"(min {min(values) * 1e6:+.1f}, max {max(values) * 1e6:+.1f})"
    )


def sandbox_line(figures: dict[str, Any]) -> str:
    if "skipped" in figures:
        return f"sandbox cost: not measured ({figures['skipped']})."
    limits = figures["limits"]
    parts = []
    for name, data in figures["consumers"].items():
        if "error" in data:
            parts.append(f"{name}: not measured ({data['error']})")
            continue
        met = "met" if data["start_met"] else "MISSED"
        parts.append(
            f"{name}: start {_ms(data['start_added_s'])} ({met}); whole process "
            f"{_ms(data['run_added_s'])}; steady p50 {_us(data['steady_added_s'])}"
        )
    return (
        f"The consumer sandbox ({figures['tool']}, with the default limits: data "
        f"{limits['memory_mib']} MiB, output {limits['output_mib']} MiB) against plain "
        f"processes, on {figures['case']}, {figures['pairs']} alternating pairs of fresh "
        f"processes per consumer ({figures['warmup']} warm-up and {figures['repeat']} timed "
        f"runs each), and {figures.get('start_pairs', START_PAIRS)} alternating pairs of "
        f"`PROGRAM --help` for the start alone. Added (pair differences, median, min-max) "
        f"per process start (target ≤ {figures['start_target_s'] * 1e3:g} ms), per whole "
        f"process, and per steady run: " + " | ".join(parts) + "."
    )


def run(
    settings: BenchSettings, refs: list[CaseRef], run_settings: RunSettings, console: Any
) -> dict[str, Any]:
    figures = time_sandbox(settings, refs, run_settings, console)
    line = sandbox_line(figures)
    console.print(line, markup=False)
    write_measurement(settings.write, "SANDBOX.md", "The consumer sandbox", "sandbox", line)
    return figures
