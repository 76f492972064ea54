"""The reference of a check: one process of the reference consumer (the registry's
``REFERENCE`` consumer, TensorFlow's Python API) runs the reference jobs and, when that
consumer is also a chosen one, its row's jobs; ``import tensorflow`` (2-3 s) is paid once.

``reference_run`` only runs (it may run in a worker thread) and returns what it got;
``apply_reference`` then writes it into the cases, on the thread that owns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import tensors
from ..consumers import NON_UTF8_STRINGS, Consumer
from ..contract import plan as plan_format
from ..pipeline.cases import CaseRef, cell_expectation
from ..pipeline.cells import Cell, apply_expectation
from ..pipeline.compare import compare_job
from ..pipeline.plan import build_plan
from ..pipeline.run import ConsumerRun, run_consumer
from ..pipeline.settings import RunSettings
from .inputs import non_utf8
from .options import CheckOptions
from .prepare import PreparedCase

REFERENCE_JOB = "reference/{index}"


def one_line(message: str) -> str:
    """TensorFlow's multi-line errors (kernel lists, ``[[node]]`` trailers) on one line."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


@dataclass
class ReferenceRun:
    """The one process of the reference consumer: the reference jobs, then its row's jobs."""

    consumer: Consumer
    run: ConsumerRun | None
    missing: str | None
    rows: bool
    """Whether the reference consumer was chosen (its row's jobs are in the plan)."""
    planned: dict[str, plan_format.Job]
    """Job id -> the job as the consumer got it (its outputs' plan files)."""

    def failure(self) -> str | None:
        if self.missing:
            return self.missing
        if self.run is not None and self.run.failure:
            return self.run.failure.describe()
        return None


def _environment(
    consumer: Consumer, settings: RunSettings, options: CheckOptions, share: bool
) -> dict[str, str]:
    return {**settings.environment, **consumer.loader_environment(options.python_loader, share)}


def reference_run(
    consumer: Consumer,
    prepared: list[PreparedCase],
    refs: list[CaseRef],
    work: Path,
    settings: RunSettings,
    options: CheckOptions,
    *,
    rows: bool,
    share: bool,
) -> ReferenceRun:
    """Run the reference jobs (and, with ``rows``, the consumer's row). Reference outputs are
    written straight into ``reference/``. With ``share`` (no checked signature writes state)
    the row's jobs reuse the reference's load, so the row compares a later run of the same
    load with the first (random ops and state leaking between runs still show); otherwise
    every job loads the model afresh, as each consumer does.

    Reads the cases and refs, changes neither: ``apply_reference`` does, afterwards."""
    plan = plan_format.Plan(
        intra_op_threads=settings.threads[0], inter_op_threads=settings.threads[1]
    )
    for index, item in enumerate(prepared):
        case = item.case
        plan.jobs.append(
            plan_format.Job(
                id=REFERENCE_JOB.format(index=index),
                model=case.model,
                format=case.format,
                tags=case.tags or ["serve"],
                signature=case.signature,
                inputs=[plan_format.PlanTensor(e.key, e.tensor, e.file) for e in case.inputs],
                outputs=[plan_format.PlanTensor(e.key, e.tensor, e.file) for e in case.outputs],
                warmup=0,
                repeat=1,
            )
        )
    missing = settings.unavailable(consumer)
    run_dir = work / f"{consumer.name}-run"
    if rows:
        plan.jobs += build_plan(
            consumer,
            refs,
            run_dir / "row",
            warmup=settings.warmup,
            repeat=settings.repeat,
            threads=settings.threads,
        ).jobs
    run: ConsumerRun | None = None
    if not missing:
        run = run_consumer(
            consumer,
            plan,
            run_dir,
            settings.build_dir,
            timeout_s=settings.timeout_s,
            environment=_environment(consumer, settings, options, share),
            sandbox=settings.sandbox,
        )
    return ReferenceRun(consumer, run, missing, rows, {job.id: job for job in plan.jobs})


def apply_reference(
    result: ReferenceRun, prepared: list[PreparedCase], refs: list[CaseRef]
) -> None:
    """What the reference run found, into the cases (output dtypes and shapes, requirements,
    how the model was loaded) and the refs (why there is no reference)."""
    name = result.consumer.name
    run = result.run
    for index, item in enumerate(prepared):
        record = run.jobs.get(REFERENCE_JOB.format(index=index)) if run else None
        if record is None:
            why = result.failure() or "no record"
            item.reference_problem = f"{name} (the reference) did not run: {why}"
        elif not record.ok:
            item.reference_problem = (
                f"{name} (the reference) failed: "
                f"[{record.stage or '?'}] {one_line(record.error or '')}"
            )
        refs[index].reference_problem = item.reference_problem
        if record is not None and record.loader:
            item.python_load = record.loader
        if item.reference_problem or record is None:
            continue
        written = {o.key: o for o in record.outputs}
        for entry in item.case.outputs:
            produced = written.get(entry.key)
            if produced is not None and isinstance(produced.dtype, str):
                entry.dtype = produced.dtype
            shape = produced.shape if produced is not None else None
            entry.shape = list(shape) if isinstance(shape, list) else []
            if entry.dtype == tensors.STRING and non_utf8(
                tensors.read_tensor(entry.file, tensors.STRING)
            ):
                item.requires.setdefault(
                    NON_UTF8_STRINGS, f"output {entry.key!r} holds bytes that are not valid UTF-8"
                )


def reference_cells(result: ReferenceRun, refs: list[CaseRef]) -> tuple[list[Cell], dict[str, Any]]:
    """The reference consumer's row (as ``run_consumers`` makes rows) and what it reported."""
    consumer = result.consumer
    run = result.run
    failure = result.failure()
    if run is not None and run.protocol_errors and not failure:
        failure = f"{consumer.name} broke the contract: {run.protocol_errors[0]}"
    cells = []
    for index, ref in enumerate(refs):
        expectation = cell_expectation(consumer, ref)
        if expectation is not None and expectation.kind == "skip":
            cell = Cell(ref.fixture, ref.case.format, ref.label, consumer.name, "skip")
            cells.append(apply_expectation(cell, expectation))
            continue
        record = run.jobs.get(ref.job_id) if run else None
        cell = compare_job(ref, consumer.name, record, failure, result.planned.get(ref.job_id))
        reference = run.jobs.get(REFERENCE_JOB.format(index=index)) if run else None
        if record and reference and "reusing" in (record.loader or ""):
            cell.load_s = reference.load_s  # the load it shares, not the lookup
        cells.append(apply_expectation(cell, expectation))
    info: dict[str, Any] = {}
    if run is not None:
        info = {
            **run.info,
            "max_rss_kb": run.done.max_rss_kb,
            "wall_s": round(run.wall_s, 3),
        }
    return cells, info
