"""``run_interop``: export -> build -> run -> compare, the one pipeline every command uses.

``interop`` calls it as is; ``check`` runs its own cases through the same build and run
stages; ``bench`` and ``leaks`` use its export and build stages and the run stage's
``run_consumer``. Reports are rendered from the ``RunResult`` by report/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .build import build_consumers
from .cases import ExportedCases, export_cases
from .cells import Cell, failed
from .environment import environment_record
from .events import Reporter, SilentReporter
from .run import ConsumerRun, run_consumers
from .settings import InteropSettings, RunSettings


@dataclass
class RunResult:
    cells: list[Cell]
    settings: RunSettings
    consumer_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per consumer, what it reported about itself (binding, TF version, peak RSS, wall)."""
    runs: dict[str, ConsumerRun] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage (``export_s``, ``build_s``, ``run_and_compare_s``)."""

    @property
    def failed(self) -> bool:
        return failed(self.cells)

    def environment(self) -> dict[str, Any]:
        return environment_record(self.settings, self.consumer_info)


def run_interop(settings: InteropSettings, progress: Reporter | None = None) -> RunResult:
    progress = progress or SilentReporter()
    timings = dict(settings.timings)
    consumers = settings.consumers
    exported = _export(settings, progress)
    timings["export_s"] = exported.seconds

    run_settings = settings.run
    if settings.build:
        built = build_consumers(run_settings.build_dir, consumers, progress)
        run_settings.build_failures = {**run_settings.build_failures, **built.failures}
        timings["build_s"] = built.seconds
    else:
        timings["build_s"] = 0.0

    started = time.perf_counter()
    with progress.stage("run", len(consumers)) as stage:
        cells, consumer_info, runs = run_consumers(
            consumers,
            exported.refs,
            run_settings,
            on_start=lambda consumer, jobs: stage.start(consumer.name),
            on_done=lambda run: stage.done(
                run.consumer,
                f"{run.jobs_ok} jobs ok" + (f", {len(run.jobs)} reported" if run.failure else ""),
            ),
        )
    timings["run_and_compare_s"] = time.perf_counter() - started
    return RunResult(exported.cells + cells, run_settings, consumer_info, runs, timings)


def _export(settings: InteropSettings, progress: Reporter) -> ExportedCases:
    """The pinned TensorFlow's exports, or (``--export-tf``) each asked-for TensorFlow's."""
    exports = settings.run.build_dir / "exports"
    if not settings.exporters:
        return export_cases(settings.fixtures, exports, settings.consumers, progress)
    from ..runtimes import pinned_runtime
    from .export_tf import export_cases_with

    result = ExportedCases()
    for exporter in settings.exporters:
        if exporter.version == pinned_runtime():
            part = export_cases(settings.fixtures, exports, settings.consumers, progress)
        else:
            part = export_cases_with(
                exporter, settings.fixtures, settings.run.build_dir, settings.consumers, progress
            )
        result.refs += part.refs
        result.cells += part.cells
        result.seconds += part.seconds
    return result
