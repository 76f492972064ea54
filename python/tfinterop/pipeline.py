"""The pipeline: export -> build -> run -> compare -> report, as one function per stage.

``run_interop`` ties them together for the built-in (or user) fixtures. Every fixture x
format x signature x consumer that loads the format becomes a ``Cell`` (other pairs are not
applicable: no cell); nothing raised by one cell stops another.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, tensors
from . import plan as plan_format
from .compare import OutputComparison, compare
from .consumers import PNG_INPUT, Consumer
from .fixtures import BrokenFixture, Expectation, Fixture, Tolerance
from .manifest import Case, Manifest
from .run import ConsumerRun, run_consumer

STATUSES = ("pass", "fail", "error", "skip", "xfail", "xpass")
FAILING = frozenset({"fail", "error", "xpass"})
RUNS_KEPT = 3
RUN_MIN_AGE_S = 3600.0


@dataclass
class CellOutcome:
    """What one consumer did on one fixture x format x signature (the report's row key)."""

    fixture: str
    format: str
    signature: str
    consumer: str
    status: str
    message: str = ""


@dataclass
class Cell(CellOutcome):
    max_abs: float | None = None
    max_rel: float | None = None
    load_s: float | None = None
    first_run_s: float | None = None
    steady_s: list[float] = field(default_factory=list)
    outputs: list[OutputComparison] = field(default_factory=list)

    @property
    def steady_median_s(self) -> float | None:
        return float(np.median(self.steady_s)) if self.steady_s else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fixture": self.fixture,
            "format": self.format,
            "signature": self.signature,
            "consumer": self.consumer,
            "status": self.status,
            "message": self.message,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "load_s": self.load_s,
            "first_run_s": self.first_run_s,
            "steady_median_s": self.steady_median_s,
            "steady_s": self.steady_s,
            "outputs": [o.as_dict() for o in self.outputs],
        }


@dataclass
class CaseRef:
    """A manifest case plus what the comparison needs (fixture tolerances, expectations)."""

    fixture: str
    case: Case
    directory: Path
    tolerance_for: Callable[[str], Tolerance]
    expectation_for: Callable[[str, str, str], Expectation | None]
    requires: dict[str, str]
    reference_problem: str | None = None
    """Why there is no reference to compare with (``tfinterop check``: Python failed)."""

    @property
    def label(self) -> str:
        """The signature as the report shows it; a tag set other than ``serve`` is appended
        (``predict@serve,gpu``) so every MetaGraph's signatures get their own cells."""
        return signature_label(self.case)

    @property
    def job_id(self) -> str:
        return f"{self.fixture}/{self.case.format}/{self.label}"


def signature_label(case: Case) -> str:
    if case.tags and case.tags != ["serve"]:
        return f"{case.signature}@{','.join(case.tags)}"  # '@': no glob meaning in expect=
    return case.signature


def cases_from_manifest(fixture: Fixture, manifest: Manifest) -> list[CaseRef]:
    def tolerance_for(fmt: str) -> Callable[[str], Tolerance]:
        return lambda key: fixture.tolerance_for(key, fmt)

    return [
        CaseRef(
            fixture.name,
            case,
            manifest.directory,
            tolerance_for(case.format),
            fixture.expectation_for,
            fixture.requirements_for(case.format, signature_label(case)),
        )
        for case in manifest.cases
    ]


def applicable(consumer: Consumer, ref: CaseRef) -> bool:
    """Whether the pair is a cell at all: a consumer that does not load the case's format has
    no cell there (no job, not counted, not listed), so a ``skip`` is always a declaration
    with its reason, never the harness filling a matrix."""
    return consumer.supports(ref.case.format)


def cell_expectation(consumer: Consumer, ref: CaseRef) -> Expectation | None:
    """A declared skip/xfail, or a missing capability (strict xfail with the fixture's reason).

    Only meaningful for ``applicable`` pairs."""
    declared = ref.expectation_for(consumer.name, ref.case.format, ref.label)
    if declared is not None:
        return declared
    for capability, reason in ref.requires.items():
        if not consumer.supports(capability):
            return Expectation("xfail", f"{consumer.name} lacks {capability}: {reason}")
    return None


def build_plan(
    consumer: Consumer,
    refs: Iterable[CaseRef],
    out_dir: Path,
    *,
    warmup: int,
    repeat: int,
    threads: tuple[int, int],
) -> plan_format.Plan:
    plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
    for ref in refs:
        if not applicable(consumer, ref):
            continue
        expectation = cell_expectation(consumer, ref)
        if expectation is not None and expectation.kind == "skip":
            continue
        # Names come from models (check: anyone's SavedModel): keep them inside out_dir.
        safe = tensors.safe_file_name
        job_dir = out_dir / safe(ref.fixture) / ref.case.format / safe(ref.label)
        job_dir.mkdir(parents=True, exist_ok=True)
        plan.jobs.append(
            plan_format.Job(
                id=ref.job_id,
                model=str(ref.directory / ref.case.model),
                format=ref.case.format,
                tags=ref.case.tags or ["serve"],
                signature=ref.case.signature,
                inputs=[
                    # A consumer that decodes PNGs itself gets the image, the others its
                    # pillow decoding (the .npy the reference was computed from).
                    plan_format.PlanTensor(e.key, e.tensor, str(ref.directory / e.image), True)
                    if e.image and consumer.supports(PNG_INPUT)
                    else plan_format.PlanTensor(e.key, e.tensor, str(ref.directory / e.file))
                    for e in ref.case.inputs
                ],
                outputs=[
                    plan_format.PlanTensor(e.key, e.tensor, str(job_dir / Path(e.file).name))
                    for e in ref.case.outputs
                ],
                warmup=warmup,
                repeat=repeat,
            )
        )
    return plan


def compare_job(
    ref: CaseRef,
    consumer: str,
    record: dict[str, Any] | None,
    failure: str | None,
    planned: plan_format.Job | None = None,
) -> Cell:
    """The cell of one job. ``planned`` is the job as the consumer got it: its outputs must be
    the plan's files (else whatever file the record names is compared, even the reference).
    A record or file that breaks the contract makes an ``error`` cell naming the rule."""
    cell = Cell(ref.fixture, ref.case.format, ref.label, consumer, "error")
    if record is None:
        cell.message = failure or "consumer reported nothing for this job"
        return cell
    cell.load_s = record.get("load_s")
    cell.first_run_s = record.get("first_run_s")
    cell.steady_s = [float(s) for s in record.get("steady_s") or []]
    if record.get("status") != "ok":
        cell.message = f"[{record.get('stage', '?')}] {record.get('error', 'no error message')}"
        return cell
    if ref.reference_problem:
        cell.message = f"ran, but there is nothing to compare with: {ref.reference_problem}"
        return cell
    written = {o.get("key"): o for o in record.get("outputs") or [] if isinstance(o, dict)}
    planned_files = {o.key: o.file for o in planned.outputs} if planned else {}
    messages = []
    broken = False
    for expected_entry in ref.case.outputs:
        tolerance = ref.tolerance_for(expected_entry.key)
        expected = tensors.read_tensor(ref.directory / expected_entry.file, expected_entry.dtype)
        produced = written.get(expected_entry.key)
        if produced is None:
            messages.append(f"output {expected_entry.key}: not written by the consumer")
            continue
        actual = _read_output(produced, expected_entry.dtype, planned_files.get(expected_entry.key))
        if isinstance(actual, str):
            broken = True
            messages.append(f"output {expected_entry.key}: {consumer} broke the contract: {actual}")
            continue
        result = compare(expected_entry.key, actual, expected, tolerance)
        cell.outputs.append(result)
        if not result.passed:
            messages.append(result.summary())
    errors = [o for o in cell.outputs if o.max_abs is not None]
    cell.max_abs = max((o.max_abs for o in errors), default=None)  # type: ignore[type-var]
    rels = [o.max_rel for o in cell.outputs if o.max_rel is not None]
    cell.max_rel = max(rels, default=None)
    cell.status = "error" if broken else "fail" if messages else "pass"
    cell.message = " || ".join(messages)
    return cell


def _read_output(
    produced: dict[str, Any], dtype: str, planned_file: str | None
) -> np.ndarray | str:
    """The output as the contract defines it: the plan's file read as the reference's
    ``dtype``. Returns the rule the record or file broke instead, when one did."""
    named = produced.get("file")
    declared = produced.get("dtype")
    if planned_file is not None and (
        not isinstance(named, str) or os.path.normpath(named) != os.path.normpath(planned_file)
    ):
        return (
            f"the result record names {named!r}, but the plan asked for {planned_file!r} "
            "(each output goes to its plan file)"
        )
    path = planned_file if planned_file is not None else named
    if not isinstance(path, str) or not path:
        return f"the result record names no output file ({named!r})"
    if declared != dtype:
        return (
            f"the result record declares dtype {declared}, but the graph's output is {dtype} "
            "(outputs are written in the dtype fetched)"
        )
    try:
        actual = tensors.read_tensor(path, dtype)
        held = tensors.dtype_name(actual)
    except Exception as exc:  # any garbage output file is this cell's error, not a crash
        return f"the output file is unreadable ({exc})"
    if held != declared:
        return f"the result record declares dtype {declared}, but the file holds {held} ({path})"
    return actual


def apply_expectation(cell: Cell, expectation: Expectation | None) -> Cell:
    if expectation is None:
        return cell
    if expectation.kind == "skip":
        cell.status, cell.message = "skip", expectation.reason
    elif cell.status == "pass":
        cell.status = "xpass"
        cell.message = f"expected to fail ({expectation.reason}) but passed: remove the declaration"
    else:
        cell.message = f"expected failure: {expectation.reason} — observed: {cell.message}"
        cell.status = "xfail"
    return cell


@dataclass
class RunSettings:
    build_dir: Path
    timeout_s: float = 600.0
    jobs: int = max(1, min(os.cpu_count() or 1, 2))
    warmup: int = 0
    repeat: int = 3
    threads: tuple[int, int] = (0, 0)
    environment: dict[str, str] = field(default_factory=dict)
    runs_dir: Path | None = None
    """Where run directories go (default ``build_dir/runs``; ``check`` uses its own)."""
    build_failures: dict[str, str] = field(default_factory=dict)
    """Consumers whose build failed in this run, with the error: their cells report it instead
    of running a binary left by an earlier build, which would test stale code."""

    def unavailable(self, consumer: Consumer) -> str | None:
        """Why ``consumer`` cannot run now, or None."""
        if consumer.name in self.build_failures:
            return f"build failed: {self.build_failures[consumer.name]}"
        return consumer.missing(self.build_dir)


def settings_from_args(args: Any, environment: dict[str, str], **overrides: Any) -> RunSettings:
    """RunSettings from the run options the interop, check and bench commands share."""
    values: dict[str, Any] = {
        "build_dir": args.build_dir,
        "timeout_s": args.timeout,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "threads": args.threads,
        "environment": environment,
    }
    if getattr(args, "jobs", None):
        values["jobs"] = args.jobs
    values.update(overrides)
    return RunSettings(**values)


def run_consumers(
    consumers: list[Consumer],
    refs: list[CaseRef],
    settings: RunSettings,
    on_done: Callable[[ConsumerRun], None] | None = None,
    on_start: Callable[[Consumer, int], None] | None = None,
) -> tuple[list[Cell], dict[str, dict[str, Any]]]:
    """Run every consumer over every case (one process per consumer) and compare.

    Returns the cells and, per consumer, what it reported about itself (binding, TF
    version, peak RSS, wall time)."""
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
                    ref.fixture,
                    ref.case.format,
                    ref.label,
                    consumer.name,
                    "error",
                    missing,
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
            **{k: v for k, v in run.info.items() if k != "record"},
            "max_rss_kb": run.done.get("max_rss_kb"),
            "wall_s": round(run.wall_s, 3),
        }
        failure = run.failure.describe() if run.failure else None
        if run.protocol_errors and not failure:
            failure = f"{consumer.name} broke the contract: {run.protocol_errors[0]}"
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
                ref, consumer.name, run.jobs.get(ref.job_id), failure, planned.get(ref.job_id)
            )
            cells.append(apply_expectation(cell, expectation))
    return cells, consumer_info


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


def error_cells(
    name: str, consumers: list[Consumer], message: str, formats: Iterable[str] = ("*",)
) -> list[Cell]:
    return [Cell(name, fmt, "*", c.name, "error", message) for fmt in formats for c in consumers]


def broken_fixture_cells(broken: BrokenFixture, consumers: list[Consumer]) -> list[Cell]:
    return error_cells(broken.name, consumers, f"fixture failed to load: {broken.error}")


def environment_record(settings: RunSettings, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from .tfenv import find_tensorflow

    tf = find_tensorflow()
    return {
        "tfinterop": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "tensorflow": {
            "version": tf.version,
            "distribution": tf.distribution,
            "library_dir": tf.library_dir,
        },
        "consumer_environment": settings.environment,
        "threads": {"intra_op": settings.threads[0], "inter_op": settings.threads[1]},
        "toolchain": toolchain_record(),
        "consumers": runs,
    }


def toolchain_record() -> dict[str, str | None]:
    """What built the consumers: compiler versions and the locked `tensorflow` crate version."""
    import subprocess
    import tomllib

    from .build import c_compiler, project_root
    from .errors import UserError

    def first_line(command: list[str]) -> str | None:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else None

    crate = None
    try:
        lock = tomllib.loads((project_root() / "rust_consumer" / "Cargo.lock").read_text())
        crate = next(
            (p["version"] for p in lock.get("package", []) if p.get("name") == "tensorflow"), None
        )
    except (UserError, OSError, tomllib.TOMLDecodeError):
        pass
    return {
        "c_compiler": first_line([c_compiler(), "--version"]),
        "rustc": first_line(["rustc", "--version"]),
        "tensorflow_crate": crate,
    }
