"""The TFLite consumer: the LiteRT interpreter on .tflite conversions
(runners/tflite_runner.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from .base import Consumer


class TFLiteConsumer(Consumer):
    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, "-m", "tfinterop.consumers.runners.tflite_runner"]
