"""What a run is asked to do: typed settings the CLI (or a test, or another program) builds.

The core never sees argparse: every command turns its options into these objects."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..consumers import Consumer
from ..exporters import Exporter
from ..sandbox import SandboxPolicy


def default_jobs() -> int:
    """Consumer processes at once: TensorFlow uses every core per process, so two at most."""
    return max(1, min(os.cpu_count() or 1, 2))


@dataclass
class RunSettings:
    build_dir: Path
    timeout_s: float = 600.0
    jobs: int = field(default_factory=default_jobs)
    warmup: int = 0
    repeat: int = 3
    threads: tuple[int, int] = (0, 0)
    environment: dict[str, str] = field(default_factory=dict)
    runs_dir: Path | None = None
    """Where run directories go (default ``build_dir/runs``; ``check`` uses its own)."""
    build_failures: dict[str, str] = field(default_factory=dict)
    """Consumers whose build failed in this run, with the error: their cells report it instead
    of running a binary left by an earlier build, which would test stale code."""
    sandbox: SandboxPolicy = field(default_factory=SandboxPolicy)
    """Whether consumer processes run in the sandbox, and their resource limits (the
    default: neither; the CLI's ``check`` sandboxes, ``interop --sandbox`` too)."""

    def unavailable(self, consumer: Consumer) -> str | None:
        """Why ``consumer`` cannot run now, or None."""
        if consumer.name in self.build_failures:
            return f"build failed: {self.build_failures[consumer.name]}"
        return consumer.missing(self.build_dir)


@dataclass
class FixtureSelection:
    """Which fixtures a run covers: a directory of fixture files (or several: a project's
    ``fixtures = [...]``), optionally narrowed."""

    directory: Path
    names: list[str] | None = None
    shard: tuple[int, int] | None = None
    """(K, N): only the K-th of N deterministic slices (CI matrices)."""
    more: list[Path] = field(default_factory=list)
    """Further fixture directories, after ``directory`` (where new fixtures are written)."""

    @property
    def directories(self) -> list[Path]:
        return [self.directory, *self.more]


@dataclass
class InteropSettings:
    """``run_interop``'s input: fixtures, consumers, whether to build, how to run."""

    run: RunSettings
    fixtures: FixtureSelection
    consumers: list[Consumer]
    build: bool = True
    exporters: list[Exporter] = field(default_factory=list)
    """``--export-tf``: export with these TensorFlows (each in its own environment) instead
    of the pinned one, whose consumers then run the exports (the pinned version among them
    is the ordinary export). Empty: the pinned TensorFlow exports."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent before this process (``install_s`` from nox), shown with the stages'."""
