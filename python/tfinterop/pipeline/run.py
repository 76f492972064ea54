"""The run stage: one consumer process per plan, with a timeout, every outcome a record.

A crash, hang or garbage output of a consumer is a result like any other: the jobs it did
not report become error cells naming the command, the exit status or signal, and the tail of
its stderr; the run goes on. ``run_consumers`` runs several consumers in parallel and hands
each job to the compare step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..consumers import Consumer
from ..contract import plan as plan_format
from ..contract.records import ConsumerRecord, DoneRecord, JobRecord, RecordError, parse_line
from ..process import ProcessFailure, child_environment, file_tail
from ..sandbox import LimitFailure, SandboxPolicy, annotate_jobs, confine
from ..sandbox import plan_paths as sandbox_paths
from .cases import CaseRef, applicable, cell_expectation
from .cells import Cell, apply_expectation
from .compare import compare_job
from .plan import build_plan
from .predict import predict_runtimes
from .settings import RunSettings

RUNS_KEPT = 3
RUN_MIN_AGE_S = 3600.0


@dataclass
class ConsumerRun:
    consumer: str
    command: list[str]
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    """The consumer record's fields (name, binding, TF version), as the consumer wrote them."""
    done: DoneRecord = field(default_factory=DoneRecord)
    failure: ProcessFailure | None = None
    protocol_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    plan: plan_format.Plan | None = None
    """The plan the consumer got (each output's plan file is where it must write)."""
    returncode: int | None = None
    """None until the process ended (or when it never started, or was killed at the timeout)."""

    @property
    def jobs_ok(self) -> int:
        return sum(job.ok for job in self.jobs.values())

    def problem(self) -> str | None:
        """Why jobs this run did not report failed: the process failure, else a broken rule."""
        if self.failure:
            return self.failure.describe()
        if self.protocol_errors:
            return f"{self.consumer} broke the contract: {self.protocol_errors[0]}"
        return None


def run_consumer(
    consumer: Consumer,
    plan: plan_format.Plan,
    work_dir: Path,
    build_dir: Path,
    *,
    timeout_s: float,
    environment: dict[str, str],
    wrapper: Sequence[str] = (),
    sandbox: SandboxPolicy | None = None,
) -> ConsumerRun:
    """Run ``consumer`` over ``plan``; ``wrapper`` prefixes the command (e.g. a profiler);
    ``sandbox`` confines it and limits its resources (sandbox.py)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    plan_path = work_dir / "plan.tsv"
    results_path = work_dir / "results.jsonl"
    stderr_path = work_dir / "stderr.txt"
    plan_format.write(plan, plan_path)
    results_path.unlink(missing_ok=True)
    command = [
        *wrapper,
        *consumer.command(build_dir),
        "--plan",
        str(plan_path),
        "--results",
        str(results_path),
    ]
    run = ConsumerRun(consumer.name, command, plan=plan)
    readable, writable = sandbox_paths(plan.jobs)
    confined = confine(
        command,
        sandbox or SandboxPolicy(),
        environment=child_environment({**environment, **consumer.process_environment()}),
        work_dir=work_dir,
        readable=readable,
        writable=writable,
    )
    started = time.perf_counter()
    with open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                confined.command,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env=confined.environment,
                start_new_session=True,  # so a timeout can kill the consumer's whole group
            )
        except OSError as exc:
            run.failure = ProcessFailure(
                command, None, False, f"cannot start: {exc.strerror}", timeout_s
            )
            return run
        returncode, timed_out = confined.wait(process, timeout_s)
    run.wall_s = time.perf_counter() - started
    run.returncode = None if timed_out else returncode
    _read_results(run, results_path)
    _check_runtime(run, consumer)
    annotate_jobs(run.jobs, confined)
    limit = confined.explain(returncode, file_tail(stderr_path), jobs_reported=bool(run.jobs))
    # A sandbox that could not be set up exits 1 before the consumer wrote anything.
    unset = confined.sandboxed and returncode == 1 and not run.info and not run.jobs
    if sandbox is not None:
        run.info.update(confined.record())
    if limit or timed_out or unset or returncode not in (0, 1):
        tail = file_tail(stderr_path)
        if timed_out and confined.sandboxed:
            # What it waited for is unknown; that nothing from outside could come is known.
            limit = "wall-clock timeout (--timeout); it ran sandboxed, without network"
        run.failure = (
            LimitFailure(command, returncode, timed_out, tail, timeout_s, limit)
            if limit
            else ProcessFailure(command, returncode, timed_out, tail, timeout_s)
        )
    elif returncode == 1 and not any(job.status == "error" for job in run.jobs.values()):
        run.protocol_errors.append("exited 1 without reporting a failed job")
    return run


def _check_runtime(run: ConsumerRun, consumer: Consumer) -> None:
    """A consumer bound to a runtime must report that runtime's ``TF_Version()``: otherwise
    its numbers belong to another TensorFlow (e.g. an RPATH, which LD_LIBRARY_PATH cannot
    override, pinned the library it was built with)."""
    reported = run.info.get("tf_version")
    if consumer.runtime is not None and reported is not None and reported != consumer.runtime:
        run.protocol_errors.append(
            f"asked to run on TensorFlow {consumer.runtime}, it reported TensorFlow {reported} "
            "(its program does not load the C API from LD_LIBRARY_PATH)"
        )
        run.jobs.clear()  # every job's numbers came from the wrong runtime: none is compared


def _read_results(run: ConsumerRun, path: Path) -> None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = parse_line(line)
        except RecordError as exc:
            if str(exc) == "not a contract record":
                run.protocol_errors.append(
                    f"results line {number} is not a contract record: {line[:120]!r}"
                )
            else:
                run.protocol_errors.append(f"results line {number}: {exc}")
            continue
        if isinstance(record, ConsumerRecord):
            run.info = record.fields
        elif isinstance(record, DoneRecord):
            run.done = record
        else:
            run.jobs[record.id] = record


def run_consumers(
    consumers: list[Consumer],
    refs: list[CaseRef],
    settings: RunSettings,
    on_done: Callable[[ConsumerRun], None] | None = None,
    on_start: Callable[[Consumer, int], None] | None = None,
) -> tuple[list[Cell], dict[str, dict[str, Any]], dict[str, ConsumerRun]]:
    """Run every consumer over every case (one process per consumer) and compare.

    Returns the cells; per consumer, what it reported about itself (binding, TF version,
    peak RSS, wall time); and the runs themselves (their records)."""
    # Before anything runs: what each bound runtime is predicted not to load (predict.py).
    unpredicted = predict_runtimes(
        refs, [c for c in consumers if not settings.unavailable(c)], settings.build_dir
    )
    runs_root = settings.runs_dir or settings.build_dir / "runs"
    runs_root.mkdir(parents=True, exist_ok=True)
    _prune_runs(runs_root)
    run_dir = runs_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    cells: list[Cell] = []
    runnable: list[tuple[Consumer, plan_format.Plan]] = []
    for consumer in consumers:
        missing = settings.unavailable(consumer)
        if missing:
            for ref in (r for r in refs if applicable(consumer, r)):
                expectation = cell_expectation(consumer, ref)
                cell = Cell(
                    ref.fixture, ref.case.format, ref.label, consumer.name, "error", missing
                )
                cells.append(
                    apply_expectation(cell, expectation)
                    if expectation and expectation.kind == "skip"
                    else cell
                )
            continue
        plan = build_plan(
            consumer,
            refs,
            run_dir / consumer.name,
            warmup=settings.warmup,
            repeat=settings.repeat,
            threads=settings.threads,
        )
        runnable.append((consumer, plan))

    def execute(item: tuple[Consumer, plan_format.Plan]) -> ConsumerRun:
        consumer, plan = item
        if not plan.jobs:
            return ConsumerRun(consumer.name, [])
        if on_start:
            on_start(consumer, len(plan.jobs))
        run = run_consumer(
            consumer,
            plan,
            run_dir / consumer.name,
            settings.build_dir,
            timeout_s=settings.timeout_s,
            environment=settings.environment,
            sandbox=settings.sandbox,
        )
        if on_done:
            on_done(run)
        return run

    # Longest first (by the last run's wall time), so the slowest consumer never starts last
    # and leaves the other cores idle while it runs alone.
    walls_file = runs_root / "consumer-walls.json"
    last_walls = _read_walls(walls_file)
    order = sorted(
        range(len(runnable)),
        key=lambda i: -last_walls.get(runnable[i][0].name, len(runnable[i][1].jobs)),
    )
    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool:
        finished = dict(zip(order, pool.map(execute, [runnable[i] for i in order]), strict=True))
    runs = [finished[i] for i in range(len(runnable))]
    _write_walls(walls_file, {**last_walls, **{r.consumer: r.wall_s for r in runs if r.jobs}})
    consumer_info: dict[str, dict[str, Any]] = {}
    for (consumer, plan), run in zip(runnable, runs, strict=True):
        planned = {job.id: job for job in plan.jobs}
        consumer_info[consumer.name] = {
            **run.info,
            "max_rss_kb": run.done.max_rss_kb,
            "wall_s": round(run.wall_s, 3),
        }
        if consumer.runtime is not None:
            consumer_info[consumer.name]["runtime"] = consumer.runtime
            if consumer.runtime in unpredicted:
                consumer_info[consumer.name]["not_predicted"] = unpredicted[consumer.runtime]
        failure = run.problem()
        for ref in (r for r in refs if applicable(consumer, r)):
            expectation = cell_expectation(consumer, ref)
            if expectation is not None and expectation.kind == "skip":
                cells.append(
                    apply_expectation(
                        Cell(ref.fixture, ref.case.format, ref.label, consumer.name, "skip"),
                        expectation,
                    )
                )
                continue
            cell = compare_job(
                ref,
                consumer.name,
                run.jobs.get(ref.job_id),
                failure,
                planned.get(ref.job_id),
                consumer.runtime,
            )
            cells.append(apply_expectation(cell, expectation))
    return cells, consumer_info, {r.consumer: r for r in runs}


def _read_walls(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}  # no history (or a damaged one): fall back to job counts


def _write_walls(path: Path, walls: dict[str, float]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(walls))
        os.replace(temporary, path)  # atomic: a concurrent run reads old or new, never half
    except OSError:
        temporary.unlink(missing_ok=True)


def _prune_runs(runs_root: Path) -> None:
    """Keep the newest runs; never touch one younger than an hour, which a concurrent
    ``interop`` may still be writing."""
    old = sorted((p for p in runs_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    cutoff = time.time() - RUN_MIN_AGE_S
    for path in old[:-RUNS_KEPT] if len(old) > RUNS_KEPT else []:
        if path.stat().st_mtime < cutoff:
            shutil.rmtree(path, ignore_errors=True)
