"""TensorFlow exporters other than the pinned one (``interop --export-tf VERSION``).

TensorFlow promises that a model exported by an older release loads and computes the same in
a newer runtime. To test that promise the fixtures are exported by the older TensorFlow in an
environment of its own, ``<cache>/exporters/<version>/``: a virtual environment made with uv
(which links the wheels from its cache) holding ``tensorflow-cpu==VERSION`` with its own
dependencies (Keras 2 before 2.16), a numpy it supports and pillow. It is made once per
machine, under a lock, in a staging directory renamed into place, like the runtimes
(``runtimes``): concurrent runs share it and never see half of it.

tfinterop itself is not installed there: the exporter process imports the driver's own package
through ``PYTHONPATH`` (``package_path``), so the exporting code is the driver's by
construction, and a checkout edited since the environment was made never exports with stale
code (an installed copy would be).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from .cached_install import cache_root, install_once, run_step, uv
from .cached_install import disk_usage as cached_disk_usage
from .errors import UserError
from .runtimes import DISTRIBUTION, resolve_versions

STAMP = ".tfinterop-exporter"
"""Written last into a finished environment: its content is ``stamp(version)``."""
OPTIONS = "compile-bytecode"
"""Bump when the environment's making changes, so existing ones are made again."""
NUMPY_2_FROM = Version("2.18")
"""The first TensorFlow built against numpy 2; older ones need numpy<2 (their wheels say so
too, but the environment states it rather than trusting every release's metadata)."""


class ExporterInstallError(UserError):
    """An exporter environment could not be made: only that exporter's cells report it."""


def exporters_dir() -> Path:
    return cache_root() / "exporters"


def _stamp(version: str) -> str:
    return "\n".join([*requirements(version), OPTIONS]) + "\n"


def requirements(version: str) -> list[str]:
    """What an exporter environment holds (besides the dependencies TensorFlow pulls in)."""
    # pillow decodes image inputs, packaging reads version ranges, rich is imported by
    # inspect/ (whose SavedModel reader the export uses); the rest comes with TensorFlow.
    found = [f"{DISTRIBUTION}=={version}", "pillow>=10", "packaging>=23", "rich>=13"]
    if Version(version) < NUMPY_2_FROM:
        found.append("numpy<2")
    return found


@dataclass(frozen=True)
class Exporter:
    """One TensorFlow that exports the fixtures in its own environment."""

    version: str

    @property
    def label(self) -> str:
        """What the report appends to its fixtures' names (``linear@tf2.15.1``)."""
        return f"tf{self.version}"

    @property
    def directory(self) -> Path:
        return exporters_dir() / self.version

    @property
    def python(self) -> Path:
        return self.directory / "bin" / "python"

    def installed(self) -> bool:
        try:
            stamp = (self.directory / STAMP).read_text()
        except OSError:
            return False
        return stamp == _stamp(self.version) and self.python.exists()

    def exports_dir(self, build_dir: Path) -> Path:
        """Its export cache, beside the pinned one (``build/exports-tf2.15.1``)."""
        return build_dir / f"exports-{self.label}"


def resolve_exporters(requested: list[str]) -> list[Exporter]:
    """The exporters asked for, in version order, once each; a version without a
    ``tensorflow-cpu`` wheel for this Python is the same one-line error as ``--runtime``'s."""
    return [Exporter(rt.version) for rt in resolve_versions(requested)]


def package_path() -> Path:
    """A directory to put on the exporter's ``PYTHONPATH``: it holds only ``tfinterop``, the
    driver's own package (a symlink), never the driver's site-packages and its TensorFlow."""
    package = Path(__file__).resolve().parent
    link_dir = cache_root() / "exporter-path" / _path_digest(package)
    link = link_dir / "tfinterop"
    if not link.is_symlink() or link.resolve() != package:
        link_dir.mkdir(parents=True, exist_ok=True)
        staging = link_dir / f".tfinterop.{os.getpid()}"
        staging.unlink(missing_ok=True)
        staging.symlink_to(package, target_is_directory=True)
        os.replace(staging, link)  # atomic: a concurrent run sees the old link or the new
    return link_dir


def _path_digest(package: Path) -> str:
    import hashlib

    return hashlib.sha256(str(package).encode()).hexdigest()[:16]


def _commands(target: Path, version: str) -> list[list[str]]:
    python = str(target / "bin" / "python")
    found = uv()
    # Byte-compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI images) every
    # `import tensorflow` would otherwise compile its ~2,500 modules again (see noxfile.py).
    if found:  # links TensorFlow from uv's cache: a second environment costs no copy
        return [
            [found, "venv", "--quiet", "--relocatable", "--python", sys.executable, str(target)],
            [found, "pip", "install", "--quiet", "--compile-bytecode", "--python", python,
             *requirements(version)],
        ]  # fmt: skip
    return [
        [sys.executable, "-m", "venv", str(target)],
        [python, "-m", "pip", "install", "--quiet", *requirements(version)],
    ]


CHECK = (
    "import importlib.metadata as m, tensorflow as tf, numpy, PIL, packaging, rich; "
    "assert m.version('tensorflow-cpu') == tf.__version__, tf.__version__; print(tf.__version__)"
)
"""Run in a new environment before it is trusted: TensorFlow imports with its numpy."""


def ensure_exporter(exporter: Exporter) -> bool:
    """Make ``exporter``'s environment unless it is there; returns whether this call made it.

    Raises ExporterInstallError with the failing command, its status and last lines."""
    what = f"making the TensorFlow {exporter.version} exporter environment"

    def populate(staging: Path) -> None:
        for command in _commands(staging, exporter.version):
            run_step(command, what, ExporterInstallError)
        python = str(staging / "bin" / "python")
        checked = run_step([python, "-c", CHECK], what, ExporterInstallError)
        if checked.strip().splitlines()[-1:] != [exporter.version]:
            raise ExporterInstallError(
                f"the TensorFlow {exporter.version} exporter imports TensorFlow {checked.strip()!r}"
            )
        (staging / STAMP).write_text(_stamp(exporter.version))

    return install_once(exporter.directory, lambda _: exporter.installed(), populate)


def disk_usage(exporter: Exporter) -> tuple[int, int]:
    """(bytes of the environment's files, bytes of those not hard-linked from elsewhere, i.e.
    what it costs beyond uv's cache)."""
    return cached_disk_usage(exporter.directory)
