"""Instruction profiles of a consumer's steady run, for explaining missed latency targets.

Wall-clock latency on a shared 2-core machine moves with whatever else runs; instruction
counts do not. ``valgrind --tool=callgrind`` runs the consumer's own process twice on one
job, with ``few`` and ``many`` steady runs; the difference divided by ``many - few`` is the
cost of one steady run, free of start-up and model load, attributed to the shared objects
(libtensorflow, the consumer program, libc's allocator, ...) and functions that spend it.
Two consumers profiled on the same cell show where one spends more than the other.

Callgrind is ~50x slower than native: only consumers declaring ``INSTRUCTION_PROFILE``
(native programs whose start-up is short) are profiled.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..consumers import INSTRUCTION_PROFILE, Consumer
from ..pipeline.cases import CaseRef
from ..pipeline.plan import build_plan
from ..pipeline.run import run_consumer
from ..pipeline.settings import RunSettings

_NAME = re.compile(r"^\((\d+)\)(?: (.*))?$")
# Idle workers of TensorFlow's Eigen thread pools spin (steal attempts, queue polls) before
# they sleep: instructions that depend on scheduling, not work. They are counted apart.
_POOL_SPIN = re.compile(r"Eigen::(ThreadPoolTempl|RunQueue|EventCount)\b|EigenEnvironment::Task::")
POOL_SPIN = "thread-pool spin"


@dataclass
class CallgrindCosts:
    """Exclusive instruction counts (event Ir) by (shared object, function)."""

    by_function: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def by_object(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for (obj, _function), cost in self.by_function.items():
            totals[obj] += cost
        return dict(totals)

    @property
    def total(self) -> int:
        return sum(self.by_function.values())


def parse_callgrind(text: str) -> CallgrindCosts:
    """Exclusive costs from a callgrind output file (format of valgrind 3.x, event Ir).

    Cost lines after ``calls=`` are the callee's inclusive cost and belong to the callee's
    own exclusive lines elsewhere, so they are skipped; names may be compressed as ``(id)``."""
    names: dict[str, dict[str, str]] = {"ob": {}, "fn": {}}
    obj, function = "???", "???"
    skip_next = False
    by_function: dict[tuple[str, str], int] = defaultdict(int)
    events: list[str] = []

    def resolve(kind: str, value: str) -> str:
        match = _NAME.match(value)
        if not match:
            return value
        ident, name = match.groups()
        if name is not None:
            names[kind][ident] = name
        return names[kind].get(ident, f"({ident})")

    for line in text.splitlines():
        if not line:
            continue
        head = line[0]
        if head.isdigit() or head in "+-*":
            if skip_next:
                skip_next = False
                continue
            fields = line.split()
            if len(fields) < 2:
                continue
            by_function[(obj, function)] += int(fields[1])
        elif line.startswith("ob="):
            obj = resolve("ob", line[3:])
        elif line.startswith("fn="):
            function = resolve("fn", line[3:])
        elif line.startswith(("cob=", "cfn=")):
            resolve("ob" if line.startswith("cob=") else "fn", line[4:])
        elif line.startswith("calls="):
            skip_next = True
        elif line.startswith("events:"):
            events = line.split()[1:]
    if events and events[0] != "Ir":
        raise ValueError(f"callgrind output has events {events}, expected Ir first")
    return CallgrindCosts(dict(by_function))


@dataclass
class SteadyProfile:
    consumer: str
    per_run: float
    """Instructions per steady run, all threads, without thread-pool spinning."""
    by_object: dict[str, float]
    top_functions: list[tuple[str, str, float]]
    runs: tuple[int, int]
    error: str = ""

    def summary(self) -> str:
        if self.error:
            return f"{self.consumer}: no profile ({self.error})"
        work = {k: v for k, v in self.by_object.items() if k != POOL_SPIN}
        parts = ", ".join(f"{name} {count / 1e3:.1f}k" for name, count in _largest(work, 4))
        spin = self.by_object.get(POOL_SPIN, 0.0)
        return (
            f"{self.consumer} {self.per_run / 1e3:.1f}k instructions/run ({parts}; "
            f"plus {spin / 1e3:.0f}k of idle thread-pool spin, counted apart)"
        )


def _largest(counts: dict[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(counts.items(), key=lambda item: -item[1])[:n]


def object_label(path: str) -> str:
    """A short, stable name for a shared object: the file name without version suffixes."""
    name = os.path.basename(path) or path
    return re.sub(r"(\.so)(\.[\d.]+)?$", r"\1", name)


def valgrind_available() -> bool:
    return shutil.which("valgrind") is not None


def profile_steady_run(
    consumer: Consumer,
    ref: CaseRef,
    settings: RunSettings,
    work: Path,
    runs: tuple[int, int] = (5, 55),
) -> SteadyProfile:
    """Profile one consumer on one cell with callgrind; see the module docstring."""
    if not consumer.supports(INSTRUCTION_PROFILE):
        return SteadyProfile(consumer.name, 0, {}, [], runs, "not profiled: not a native program")
    if not valgrind_available():
        return SteadyProfile(consumer.name, 0, {}, [], runs, "valgrind is not installed")
    costs: list[CallgrindCosts] = []
    for repeat in runs:
        directory = work / f"callgrind-{repeat}"
        output = directory / "callgrind.out"
        plan = build_plan(
            consumer, [ref], directory / "out", warmup=1, repeat=repeat, threads=settings.threads
        )
        run = run_consumer(
            consumer,
            plan,
            directory,
            settings.build_dir,
            timeout_s=max(settings.timeout_s, 900.0),
            environment=settings.environment,
            wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}"],
        )
        record = run.jobs.get(ref.job_id)
        if run.failure or record is None or not record.ok or not output.exists():
            reason = (
                run.failure.describe()
                if run.failure
                else (record.error if record and record.error is not None else "no output")
            )
            return SteadyProfile(consumer.name, 0, {}, [], runs, f"callgrind run failed: {reason}")
        costs.append(parse_callgrind(output.read_text(errors="replace")))
    return steady_profile(consumer.name, costs[0], costs[1], runs)


def steady_profile(
    consumer: str, low: CallgrindCosts, high: CallgrindCosts, runs: tuple[int, int]
) -> SteadyProfile:
    """The per-run profile from the costs of a ``runs[0]``-run and a ``runs[1]``-run process."""
    span = runs[1] - runs[0]
    functions = {
        key: (high.by_function.get(key, 0) - low.by_function.get(key, 0)) / span
        for key in set(low.by_function) | set(high.by_function)
    }
    by_object: dict[str, float] = defaultdict(float)
    for (obj, function), count in functions.items():
        by_object[POOL_SPIN if _POOL_SPIN.search(function) else object_label(obj)] += count
    top = [
        (object_label(obj), function, count)
        for (obj, function), count in sorted(functions.items(), key=lambda item: -item[1])
        if not _POOL_SPIN.search(function)
    ][:8]
    per_run = (high.total - low.total) / span - by_object[POOL_SPIN]
    significant = {k: v for k, v in by_object.items() if abs(v) >= 0.005 * max(per_run, 1)}
    return SteadyProfile(consumer, per_run, significant, top, runs)


# Margins within which two consumers' per-run counts "agree", in both directions. Spin depends
# on thread scheduling (it moved by ~10% between two profiles of one consumer), so it gets a
# wider one, and a spin difference under WORK_MARGIN of the work is negligible; beyond that,
# the difference is reported, not called noise.
WORK_MARGIN = 0.05
SPIN_MARGIN = 0.25


def _times(a: float, b: float) -> float:
    """How many times the larger of two counts is the smaller (1 when both are zero)."""
    low, high = sorted((a, b))
    return high / low if low > 0 else (1.0 if high <= 0 else float("inf"))


def verdict(
    slow: SteadyProfile,
    fast: SteadyProfile,
    within_spread: bool = False,
    wall_ratio: float | None = None,
) -> str:
    """What two consumers' profiles say about the slower one's wall-clock gap.

    "noise" only when the gap lies within the measured run-to-run spread (``within_spread``)
    and both the work and the idle spin agree within their margins; the slower side doing
    less work, or a gap the counts do not account for, is "unexplained"."""
    slow_spin, fast_spin = (p.by_object.get(POOL_SPIN, 0.0) for p in (slow, fast))
    spin_times = _times(slow_spin, fast_spin)
    spin = f"{slow_spin / 1e3:.0f}k vs {fast_spin / 1e3:.0f}k per run"
    agree = f"work within {WORK_MARGIN:.0%}, spin within {SPIN_MARGIN:.0%}"
    if fast.per_run <= 0 or slow.per_run <= 0:
        return "unexplained: no positive per-run instruction count to compare"
    work = slow.per_run / fast.per_run
    if work > 1 + WORK_MARGIN:
        deltas = {
            name: slow.by_object.get(name, 0.0) - fast.by_object.get(name, 0.0)
            for name in (set(slow.by_object) | set(fast.by_object)) - {POOL_SPIN}
        }
        where = ", ".join(
            f"{name} {delta / 1e3:+.1f}k" for name, delta in _largest(deltas, 3) if delta > 0
        )
        text = f"{slow.consumer} executes {work:.2f}x the instructions per run" + (
            f"; the extra is in {where}" if where else ""
        )
        if wall_ratio is not None and wall_ratio > work * (1 + WORK_MARGIN):
            text += (
                f" (the wall-clock ratio, {wall_ratio:.2f}x, is larger: the rest is unexplained)"
            )
        return text
    if work < 1 / (1 + WORK_MARGIN):
        return (
            f"unexplained: {slow.consumer} is slower yet executes {1 - work:.0%} fewer "
            f"instructions per run than {fast.consumer} (idle spin {spin})"
        )
    negligible = abs(slow_spin - fast_spin) <= WORK_MARGIN * fast.per_run
    if spin_times > 1 + SPIN_MARGIN and not negligible:
        times = f"{spin_times:.2f}x" if spin_times != float("inf") else "unboundedly"
        if slow_spin > fast_spin:
            return (
                f"scheduling: work agrees within {WORK_MARGIN:.0%}, but {slow.consumer}'s idle "
                f"thread-pool spin is {times} {fast.consumer}'s ({spin})"
            )
        return (
            f"unexplained: work agrees within {WORK_MARGIN:.0%} and the faster "
            f"{fast.consumer} spins {times} as much ({spin})"
        )
    if not within_spread:
        return (
            f"unexplained: instruction counts agree ({agree}), yet the wall-clock gap is "
            "beyond the run-to-run spread"
        )
    return (
        f"noise: instruction counts agree ({agree}) and the wall-clock gap is within the "
        "run-to-run spread"
    )


def compare_profiles(
    slow: SteadyProfile,
    fast: SteadyProfile,
    within_spread: bool = False,
    wall_ratio: float | None = None,
) -> str:
    """One sentence: both profiles and the verdict they support (see ``verdict``)."""
    if slow.error or fast.error:
        return "; ".join(p.summary() for p in (slow, fast) if p.error)
    return (
        f"callgrind, {fast.runs[1] - fast.runs[0]} steady runs: {slow.summary()}; "
        f"{fast.summary()}; {verdict(slow, fast, within_spread, wall_ratio)}"
    )
