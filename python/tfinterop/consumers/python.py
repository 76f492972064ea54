"""The Python consumer: TensorFlow's own runtime (runners/python_runner.py), the reference."""

from __future__ import annotations

import sys
from pathlib import Path

from .base import Consumer


class PythonConsumer(Consumer):
    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, "-m", "tfinterop.consumers.runners.python_runner"]
