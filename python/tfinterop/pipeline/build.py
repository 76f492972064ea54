"""The build stage: build the consumers that need it, one by one.

A failed build is an outcome with ``error`` set, not an exception: the run goes on, the
consumer's cells report the error (``RunSettings.build_failures``), and the other consumers
still build and run. Every command that builds (interop, check, bench, build) uses this."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..consumers import BuildError, BuildOutcome, Consumer, buildable
from .events import Reporter, SilentReporter


def build_each(
    build_dir: Path,
    consumers: list[Consumer],
    on_start: Callable[[str], None] = lambda name: None,
    *,
    force: bool = False,
) -> Iterator[BuildOutcome]:
    """Build the consumers of ``consumers`` that need it, yielding each outcome as it ends."""
    for consumer in buildable(consumers):
        on_start(consumer.name)
        try:
            yield consumer.build(build_dir, force=force)
        except BuildError as exc:
            yield BuildOutcome(consumer.name, False, "", error=str(exc))


@dataclass
class BuildResult:
    outcomes: list[BuildOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> dict[str, str]:
        """Consumer name -> build error, for ``RunSettings.build_failures``."""
        return {o.consumer: o.error for o in self.outcomes if o.error}


def build_consumers(
    build_dir: Path,
    consumers: list[Consumer],
    progress: Reporter | None = None,
    *,
    force: bool = False,
) -> BuildResult:
    started = time.perf_counter()
    result = BuildResult()
    wanted = buildable(consumers)
    with (progress or SilentReporter()).stage("build", len(wanted)) as stage:
        for outcome in build_each(
            build_dir, wanted, lambda name: stage.start(f"{name} consumer"), force=force
        ):
            note = (
                "FAILED"
                if outcome.error
                else "shared build installed"
                if outcome.shared
                else "built"
                if outcome.built
                else "up to date"
            )
            stage.done(f"{outcome.consumer} consumer", note)
            result.outcomes.append(outcome)
    result.seconds = time.perf_counter() - started
    return result
