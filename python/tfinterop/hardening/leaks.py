"""Leak check: one consumer process runs many jobs (frozen, SavedModel and string-tensor
models) under valgrind memcheck; no block may be definitely or indirectly lost.

``python -m tfinterop.hardening.leaks [--jobs 50] [--consumer c]`` exports the fixtures it needs (cached),
writes one plan cycling through their frozen and SavedModel cases until it has ``--jobs`` jobs,
runs the consumer once under valgrind with ``c_consumer/valgrind.supp`` and prints the leak
summary. Exit status 1 on any definite/indirect leak, a job that did not succeed, or a
consumer that did not finish; 2 on a usage problem. See docs/hardening.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..consumers import LEAK_CHECK, Consumer, by_name, first_with
from ..contract import plan as plan_format
from ..errors import UserError
from ..paths import project_root
from ..pipeline.cases import export_cases
from ..pipeline.plan import build_plan
from ..pipeline.run import ConsumerRun, run_consumer
from ..pipeline.settings import FixtureSelection
from ..tfenv import DEFAULT_CONSUMER_ENV

DEFAULT_FIXTURES = ("linear", "binary_strings", "dtypes", "lookup_asset")
DEFAULT_JOBS = 50
TEST_JOBS = 12
"""tests/hardening/test_leaks.py: every case of the default fixtures once, within its time budget."""
SUPPRESSIONS = Path("c_consumer") / "valgrind.supp"
VALGRIND_OPTIONS = [
    "--leak-check=full",
    "--show-leak-kinds=definite,indirect",
    "--errors-for-leak-kinds=definite,indirect",
    # Leaks are the question here; definedness tracking would double the run time and reports
    # uninitialised reads inside TensorFlow's own kernels (Eigen, protobuf), not ours.
    "--undef-value-errors=no",
    "--num-callers=40",
]
_KINDS = ("definitely lost", "indirectly lost", "possibly lost", "still reachable", "suppressed")


@dataclass
class LeakReport:
    """What valgrind said about one run, plus what the consumer reported."""

    command: list[str]
    exit_status: int | None
    seconds: float
    lost: dict[str, tuple[int, int]] = field(default_factory=dict)
    """kind -> (bytes, blocks), kinds as in valgrind's LEAK SUMMARY."""
    errors: int | None = None
    jobs_ok: int = 0
    job_problems: list[str] = field(default_factory=list)
    log: Path | None = None

    def bytes_blocks(self, kind: str) -> tuple[int, int]:
        return self.lost.get(kind, (0, 0))

    @property
    def leaked(self) -> bool:
        return any(self.bytes_blocks(k)[0] or self.bytes_blocks(k)[1] for k in _KINDS[:2])

    @property
    def problems(self) -> list[str]:
        found = []
        if not self.lost:
            found.append(
                f"valgrind printed no leak summary (exit status {self.exit_status}); see {self.log}"
            )
        elif self.leaked:
            found.append(f"leaks attributable to the consumer; stacks in {self.log}")
        if self.errors:
            found.append(f"valgrind reported {self.errors} error(s); see {self.log}")
        found.extend(self.job_problems)
        return found

    def summary(self) -> str:
        parts = [
            f"{kind}: {b:,} bytes in {n:,} blocks"
            for kind in _KINDS
            for b, n in [self.bytes_blocks(kind)]
        ]
        return f"{self.jobs_ok} jobs ok in {self.seconds:.0f} s under valgrind; " + "; ".join(parts)


def parse_valgrind_log(text: str) -> tuple[dict[str, tuple[int, int]], int | None]:
    """LEAK SUMMARY figures and the ERROR SUMMARY count of a memcheck log."""
    lost: dict[str, tuple[int, int]] = {}
    for kind in _KINDS:
        match = re.search(
            rf"==\d+==\s+{kind}: ([\d,]+) bytes in ([\d,]+) blocks", text, re.MULTILINE
        )
        if match:
            lost[kind] = (int(match[1].replace(",", "")), int(match[2].replace(",", "")))
    # With nothing left at exit valgrind prints no LEAK SUMMARY, only this line.
    if "All heap blocks were freed -- no leaks are possible" in text:
        lost = {kind: (0, 0) for kind in _KINDS}
    errors = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    return lost, int(errors[1].replace(",", "")) if errors else None


VALGRIND_LEAK_EXIT = 99
"""valgrind's exit status when it found errors or leaks (``--error-exitcode``)."""


def valgrind_command(log: Path, suppressions: Path | None) -> list[str]:
    """The memcheck prefix that goes in front of a program's command."""
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise UserError("valgrind not found: `apt-get install valgrind` (see .ci/run)")
    command = [valgrind, *VALGRIND_OPTIONS, f"--error-exitcode={VALGRIND_LEAK_EXIT}"]
    command.append(f"--log-file={log}")
    if suppressions is not None:
        command.append(f"--suppressions={suppressions}")
    return command


def report_from_log(
    command: list[str], exit_status: int | None, seconds: float, log: Path
) -> LeakReport:
    report = LeakReport(command, exit_status, seconds, log=log)
    text = log.read_text(errors="replace") if log.exists() else ""
    report.lost, report.errors = parse_valgrind_log(text)
    return report


def run_under_valgrind(
    command: list[str], log: Path, *, suppressions: Path | None, timeout_s: float = 1800
) -> LeakReport:
    """Any program under memcheck (consumers go through ``check``, which reads their results)."""
    full = [*valgrind_command(log, suppressions), *command]
    started = time.perf_counter()
    try:
        status: int | None = subprocess.run(
            full, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        status = None
    report = report_from_log(full, status, time.perf_counter() - started, log)
    if status is None:
        report.job_problems.append(f"timed out after {timeout_s:.0f} s: `{' '.join(full)}`")
    return report


def leak_plan(names: list[str], jobs: int, out_dir: Path, consumer: Consumer) -> plan_format.Plan:
    """Every frozen/SavedModel case of the named fixtures the consumer runs, cycled to ``jobs``
    jobs (job IDs get a ``#k`` suffix: the same models load again and again in one process)."""
    root = project_root()
    exported = export_cases(
        FixtureSelection(root / "fixtures", names), root / "build" / "exports", [consumer]
    )
    if exported.cells:  # a fixture that failed to load or export
        raise UserError(exported.cells[0].message)
    base = build_plan(consumer, exported.refs, out_dir, warmup=1, repeat=2, threads=(1, 1))
    if not base.jobs:
        raise UserError(f"consumer {consumer.name} runs none of the cases of {', '.join(names)}")
    plan = plan_format.Plan(intra_op_threads=1, inter_op_threads=1)
    for k in range(jobs):
        job = base.jobs[k % len(base.jobs)]
        plan.jobs.append(replace(job, id=f"{job.id}#{k // len(base.jobs)}"))
    return plan


def leak_checked_consumer(name: str | None = None) -> Consumer:
    """The named consumer, or the registry's consumer declaring the leak-check capability."""
    return by_name([name])[0] if name else first_with(LEAK_CHECK)


def check(
    names: list[str],
    jobs: int,
    work: Path,
    consumer: Consumer | None = None,
    timeout_s: float = 1800,
) -> LeakReport:
    consumer = consumer or leak_checked_consumer()
    root = project_root()
    build_dir = root / "build"
    reason = consumer.missing(build_dir)
    if reason:
        raise UserError(reason)
    plan = leak_plan(names, jobs, work / "outputs", consumer)
    log = work / "valgrind.log"
    run = run_consumer(
        consumer,
        plan,
        work,
        build_dir,
        timeout_s=timeout_s,
        environment={
            key: os.environ.get(key, value) for key, value in DEFAULT_CONSUMER_ENV.items()
        },
        wrapper=valgrind_command(log, root / SUPPRESSIONS),
    )
    return consumer_leak_report(run, len(plan.jobs), log)


def consumer_leak_report(run: ConsumerRun, planned_jobs: int, log: Path) -> LeakReport:
    """valgrind's verdict plus the consumer's own: every planned job reported and ok."""
    # Exit status 99 is valgrind saying "leaks": a verdict read from the log, not a crash.
    leak_verdict = run.failure is not None and run.failure.returncode == VALGRIND_LEAK_EXIT
    status = run.failure.returncode if run.failure else run.returncode
    report = report_from_log(run.command, status, run.wall_s, log)
    if run.failure and not leak_verdict:
        report.job_problems.append(run.failure.describe())
    report.job_problems += run.protocol_errors
    report.jobs_ok = run.jobs_ok
    for job_id, job in run.jobs.items():
        if not job.ok:
            report.job_problems.append(f"job {job_id} failed at {job.stage}: {job.error}")
    if len(run.jobs) != planned_jobs:
        report.job_problems.append(
            f"the consumer reported {len(run.jobs)} of {planned_jobs} jobs (exit status {status})"
        )
    return report
