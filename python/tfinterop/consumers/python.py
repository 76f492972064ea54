"""The Python consumer: TensorFlow's own runtime (runners/python_runner.py), the reference."""

from __future__ import annotations

import sys
from pathlib import Path

from .base import Consumer

LOADER_VARIABLE = "TFINTEROP_PYTHON_LOADER"
"""``auto`` | ``object`` | ``session``: how the runner loads SavedModels (contract "loader")."""
SHARE_LOADS_VARIABLE = "TFINTEROP_PYTHON_SHARE_LOADS"
"""``1``: jobs on the same SavedModel and tag set share one load (``check`` sets it when no
checked signature writes state): the contract's fresh load per job is kept otherwise."""


class PythonConsumer(Consumer):
    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, "-m", "tfinterop.consumers.runners.python_runner"]

    def loader_environment(self, loader: str, share_loads: bool) -> dict[str, str]:
        return {LOADER_VARIABLE: loader, SHARE_LOADS_VARIABLE: "1" if share_loads else "0"}
