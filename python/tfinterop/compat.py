"""``run_compat``: the runtime matrix, fixtures and other people's models x runtimes x consumers.

The fixtures go through ``run_interop`` and each model through ``run_check``, both with the
consumers bound to every runtime asked for (``c@2.12.0``, ``rust@2.12.0``, ...); exports and
the Python reference come from the pinned TensorFlow, so every cell of a row is compared with
the same reference. Before anything runs, each case is checked statically against each
runtime's op registry (``inspect.compat``): a cell predicted not to load is expected to fail
at load (``incompatible``), and the prediction is held to reality.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .check.options import CheckOptions
from .check.run import run_check
from .consumers import Consumer
from .errors import UserError
from .pipeline.cells import Cell, failed
from .pipeline.environment import environment_record
from .pipeline.events import Reporter, SilentReporter
from .pipeline.interop import run_interop
from .pipeline.settings import FixtureSelection, InteropSettings, RunSettings

DEFAULT_RUNTIMES = ("2.12.0", "2.15.1", "2.18.1")
"""Spanning the wheels with the C API for Python 3.11 (2.12.0 is the oldest); the pinned
runtime is always added."""


@dataclass
class CompatSettings:
    run: RunSettings
    consumers: list[Consumer]
    """Already bound to the runtimes (``consumers.on_runtimes``)."""
    fixtures: FixtureSelection | None = None
    models: list[CheckOptions] = field(default_factory=list)
    build: bool = True


@dataclass
class CompatResult:
    cells: list[Cell]
    settings: RunSettings
    consumer_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    model_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return failed(self.cells) or bool(self.model_errors)

    def environment(self) -> dict[str, Any]:
        return environment_record(self.settings, self.consumer_info)

    def runtimes(self) -> list[str]:
        return sorted({c.consumer.partition("@")[2] for c in self.cells} - {""})


def run_compat(settings: CompatSettings, progress: Reporter | None = None) -> CompatResult:
    progress = progress or SilentReporter()
    result = CompatResult([], settings.run)
    if settings.fixtures is not None:
        interop = run_interop(
            InteropSettings(settings.run, settings.fixtures, settings.consumers, settings.build),
            progress,
        )
        result.cells += interop.cells
        result.consumer_info.update(interop.consumer_info)
        result.timings.update(interop.timings)
        settings.run.build_failures.update(interop.settings.build_failures)
    started = time.perf_counter()
    for options in settings.models:
        try:
            checked = run_check(options, settings.consumers, settings.run)
        except UserError as exc:  # one model the tool cannot check: say so, go on
            result.model_errors.append(f"{options.path}: {exc}")
            continue
        result.cells += checked.cells
        for name, info in checked.consumer_info.items():
            result.consumer_info.setdefault(name, info)
    result.timings["models_s"] = time.perf_counter() - started
    return result
