"""tfinterop: cross-language interop test harness for TensorFlow models."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tfinterop")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
