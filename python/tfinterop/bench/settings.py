"""What ``tfinterop bench`` is asked to do: typed settings the CLI builds from its options
(the bench core never sees argparse)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..pipeline.settings import FixtureSelection


@dataclass
class BenchSettings:
    build_dir: Path
    fixtures: FixtureSelection
    consumers: list[str] | None = None
    """Consumer names as given (None: all); passed on as given to the timed interop runs."""
    repeat: int = 100
    warmup: int = 100
    threads: tuple[int, int] = (0, 0)
    onednn: str | None = None
    """TF_ENABLE_ONEDNN_OPTS as asked for (None: the default), passed on to timed interop runs."""
    timeout_s: float = 900.0
    json: Path | None = None
    write: Path | None = None
    """Directory of the committed results (``benchmarks/``) to refresh."""
    build: bool = True
    interop_timing: bool = True
    warm_runs: int = 3
    interop_jobs: int | None = None
    profile_misses: bool = True
    rerender: Path | None = None
    """A saved results.json to re-derive and print (nothing measured)."""
    profile_budget_s: float = 300.0
    cold: bool = False
    check_timing: bool = True
    check_runs: int = 3
    locate_timing: bool = True
    runtime_timing: bool = True
    """Time what one more ``--runtime`` adds to a warm and a first run (runtime_timing.py)."""
    sandbox_timing: bool = True
    """Time what the consumer sandbox adds to a process start and a run (sandbox_timing.py)."""
    sandbox_pairs: int = 10
    """Alternating plain/sandboxed pairs of whole consumer processes timed per consumer."""
    gap_processes: int = 4
    """Processes per consumer for the per-run gap of µs-scale cells (0: not measured)."""
