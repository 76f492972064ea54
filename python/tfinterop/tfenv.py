"""Find the installed TensorFlow wheel's C API without importing TensorFlow (~3 s saved).

Both consumers link exactly this wheel: ``libtensorflow_cc.so.2`` carries the TF_* graph,
session and SavedModel functions, ``libtensorflow_framework.so.2`` the tensor functions.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from .errors import UserError

CC_LIBRARY = "libtensorflow_cc.so.2"
FRAMEWORK_LIBRARY = "libtensorflow_framework.so.2"
DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tf-nightly-cpu", "tf-nightly")

# Consumer processes get these unless the caller overrides them. oneDNN is off by default
# because it changes float results by ~1e-6 between runs with different thread layouts; the
# value in force is recorded in every report.
DEFAULT_CONSUMER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


@dataclass(frozen=True)
class TensorFlowInstall:
    version: str
    distribution: str
    pinned: str | None
    package_dir: str
    library_dir: str
    include_dir: str

    @property
    def libraries(self) -> tuple[str, str]:
        return (
            os.path.join(self.library_dir, CC_LIBRARY),
            os.path.join(self.library_dir, FRAMEWORK_LIBRARY),
        )

    def c_flags(self) -> list[str]:
        return [f"-I{self.include_dir}"]

    def link_flags(self) -> list[str]:
        return [
            f"-L{self.library_dir}",
            f"-l:{CC_LIBRARY}",
            f"-l:{FRAMEWORK_LIBRARY}",
            f"-Wl,-rpath,{self.library_dir}",
        ]

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = asdict(self)
        data["cflags"] = self.c_flags()
        data["ldflags"] = self.link_flags()
        data["platform"] = f"{platform.system()}-{platform.machine()}"
        return data


def pinned_version() -> str | None:
    """The ``tensorflow-cpu==X`` pin of tfinterop's ``tf`` extra (pyproject is the one place)."""
    try:
        requirements = importlib.metadata.requires("tfinterop") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for requirement in requirements:
        match = re.match(r"tensorflow(?:-cpu)?\s*==\s*([\w.]+)", requirement)
        if match:
            return match.group(1)
    return None


@cache
def find_tensorflow() -> TensorFlowInstall:
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "TensorFlow is not installed in this Python environment; run through nox "
            "(`nox -s interop`) or `pip install -e '.[tf]'`"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations))).resolve()
    for name in DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(name)
            distribution = name
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    else:
        raise UserError(f"found a tensorflow package at {package_dir} but no distribution metadata")
    missing = [lib for lib in (CC_LIBRARY, FRAMEWORK_LIBRARY) if not (package_dir / lib).exists()]
    if missing:
        raise UserError(
            f"the TensorFlow wheel at {package_dir} lacks {', '.join(missing)}; "
            "install the Linux tensorflow-cpu wheel"
        )
    include_dir = package_dir / "include"
    if not (include_dir / "tensorflow" / "c" / "c_api.h").exists():
        raise UserError(f"the TensorFlow wheel at {package_dir} has no C headers under include/")
    return TensorFlowInstall(
        version=version,
        distribution=distribution,
        pinned=pinned_version(),
        package_dir=str(package_dir),
        library_dir=str(package_dir),
        include_dir=str(include_dir),
    )
