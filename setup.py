"""The wheel carries the consumer sources and the built-in fixtures (``tfinterop/_bundled``),
so an installed tfinterop builds its consumers from any directory (paths.py finds them);
everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# What a consumer build reads (consumers/c.py, consumers/rust.py) and the fixtures; not the
# fuzz targets, C tests or build output.
BUNDLED = {
    "c_consumer": ["src"],
    "rust_consumer": [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "pyproject.toml",
        "src",
        "crate-0.21",
    ],
    "fixtures": ["."],
}


class BuildWithSources(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "tfinterop" / "_bundled"
        for directory, entries in BUNDLED.items():
            for entry in entries:
                source = ROOT / directory / entry
                destination = target / directory / entry
                if source.is_dir():
                    shutil.copytree(
                        source, destination, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "target", "*.pyc"),
                    )  # fmt: skip
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildWithSources})
