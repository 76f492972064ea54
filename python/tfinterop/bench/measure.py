"""One bench cell measured: a consumer process on one case, alone (load time, first run,
steady p50/p90, start-up, peak RSS), and the machine the figures come from.

Each cell runs in its own consumer process, one at a time, so load time and peak RSS are
the cell's own (as in a deployment) and no two measurements share the two cores.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..consumers import Consumer
from ..pipeline.cases import CaseRef, cell_expectation
from ..pipeline.cells import CellOutcome, apply_expectation
from ..pipeline.compare import compare_job
from ..pipeline.plan import build_plan
from ..pipeline.run import run_consumer
from ..pipeline.settings import RunSettings


@dataclass
class BenchRow(CellOutcome):
    process_s: float | None = None
    """Wall time of the consumer process (start, library load, model load, all runs, exit)."""
    startup_s: float | None = None
    """Process wall time not spent in load or runs: interpreter/library start-up and exit."""
    load_s: float | None = None
    first_run_s: float | None = None
    p50_s: float | None = None
    p90_s: float | None = None
    runs: int = 0
    max_rss_mb: float | None = None


def machine_description() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def bench_cell(consumer: Consumer, ref: CaseRef, settings: RunSettings, work: Path) -> BenchRow:
    row = BenchRow(ref.fixture, ref.case.format, ref.label, consumer.name, "error")
    plan = build_plan(
        consumer,
        [ref],
        work / "out",
        warmup=settings.warmup,
        repeat=settings.repeat,
        threads=settings.threads,
    )
    if not plan.jobs:
        declared = cell_expectation(consumer, ref)  # callers pass applicable pairs only
        row.status, row.message = "skip", declared.reason if declared else "declared skip"
        return row
    run = run_consumer(
        consumer,
        plan,
        work,
        settings.build_dir,
        timeout_s=settings.timeout_s,
        environment=settings.environment,
    )
    record = run.jobs.get(ref.job_id)
    failure = run.failure.describe() if run.failure else None
    # Declared expectations (a missing capability is a strict xfail) as in `interop`.
    cell = apply_expectation(
        compare_job(ref, consumer.name, record, failure), cell_expectation(consumer, ref)
    )
    row.status, row.message = cell.status, cell.message
    row.process_s = run.wall_s
    if record and record.ok:
        steady = np.array(record.steady_s, dtype=float)
        row.load_s = record.load_s
        row.first_run_s = record.first_run_s
        row.runs = int(steady.size)
        if steady.size:
            row.p50_s = float(np.percentile(steady, 50))
            row.p90_s = float(np.percentile(steady, 90))
        # Warm-up runs are untimed; estimate them at the median so start-up is not inflated.
        accounted = (row.load_s or 0) + (row.first_run_s or 0) + float(steady.sum())
        accounted += settings.warmup * (row.p50_s or 0)
        row.startup_s = max(0.0, run.wall_s - accounted)
    if run.done.max_rss_kb is not None:
        row.max_rss_mb = round(run.done.max_rss_kb / 1024, 1)
    return row
