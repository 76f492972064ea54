"""``tfinterop bench``: latency and memory of every fixture x format x consumer, and the ratios.

Each cell runs in its own consumer process, one at a time, so load time and peak RSS are
the cell's own (as in a deployment) and no two measurements share the two cores. Every
consumer gets the same thread settings and oneDNN setting, recorded in the result.

The Python consumer is TensorFlow's Python API on the same file: on a SavedModel it calls the
restored signature (a ``tf.function``), on a frozen graph it runs a TF1 ``Session``.

Modules, one concern each:

- ``settings``: ``BenchSettings``, what the command is asked to do (built by the CLI).
- ``measure``: one cell measured (``bench_cell`` -> ``BenchRow``), the machine described.
- ``ratios``: the registry's latency ratios against their targets, misses explained
  (with callgrind profiles from ``profile``).
- ``interop_timing``: warm and cold ``interop`` runs timed, the warm run's floor.
- ``check_timing``: ``check`` against ``saved_model_cli run``.
- ``sandbox_timing``: what the consumer sandbox adds to a process start and a run.
- ``render``: the console tables and the committed results (``benchmarks/``).
- ``command``: the command itself (``run``) and ``rerender`` of a saved results.json.
"""

from __future__ import annotations

from .command import cell_key, exported_cases, rerender, run
from .interop_timing import (
    floor_estimate,
    floor_line,
    interop_lines,
    isolated_work,
    time_warm_interop,
    with_floor,
)
from .measure import BenchRow, bench_cell, machine_description
from .ratios import Ratio, explain_miss, explain_with_profiles, ratios, within_spread
from .render import BenchResult, render, write_benchmarks
from .settings import BenchSettings

__all__ = [
    "BenchResult", "BenchRow", "BenchSettings", "Ratio", "bench_cell", "cell_key",
    "explain_miss", "explain_with_profiles", "exported_cases", "floor_estimate", "floor_line",
    "interop_lines", "isolated_work", "machine_description", "ratios", "render", "rerender",
    "run", "time_warm_interop", "with_floor", "within_spread", "write_benchmarks",
]  # fmt: skip
