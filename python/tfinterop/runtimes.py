"""TensorFlow runtimes other than the pinned one: the C API of another ``tensorflow-cpu`` wheel.

A deployment's libtensorflow is rarely the TensorFlow that exported its model. The native
consumers link the C API dynamically and find it through a RUNPATH, so pointing
``LD_LIBRARY_PATH`` at another wheel's ``tensorflow/`` directory runs the *same* binary
against that runtime (measured: binaries built on 2.21 ran on 2.12.0-2.21.0; each consumer
record reports the ``TF_Version()`` it got, and the pipeline checks it). No rebuild per
runtime: only the wheel is installed, ``--no-deps`` into ``<cache>/runtimes/<version>``,
once per machine, under a lock so that concurrent runs share it and never see half of it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from packaging.tags import sys_tags
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from .cached_install import cache_root, install_once, run_step, uv
from .cached_install import disk_usage as cached_disk_usage
from .errors import UserError
from .tfenv import CC_LIBRARY, FRAMEWORK_LIBRARY, find_tensorflow

DISTRIBUTION = "tensorflow-cpu"
INDEX_URL = "https://pypi.org/simple"
VERSIONS_MAX_AGE_S = 24 * 3600.0


class RuntimeInstallError(UserError):
    """A runtime could not be installed: only that runtime's cells report it."""


def runtimes_dir() -> Path:
    return cache_root() / "runtimes"


@dataclass(frozen=True)
class Runtime:
    """One TensorFlow C API a native consumer can run against."""

    version: str
    pinned: bool

    @property
    def directory(self) -> Path:
        """Where the wheel is installed (the pinned one: this environment's)."""
        if self.pinned:
            return Path(find_tensorflow().package_dir).parent
        return runtimes_dir() / self.version

    @property
    def library_dir(self) -> Path:
        return self.directory / "tensorflow"

    def installed(self) -> bool:
        return all((self.library_dir / lib).is_file() for lib in (CC_LIBRARY, FRAMEWORK_LIBRARY))

    def environment(self) -> dict[str, str]:
        """What a consumer process needs to load this runtime instead of its RUNPATH's."""
        return {} if self.pinned else {"LD_LIBRARY_PATH": str(self.library_dir)}


def pinned_runtime() -> str:
    return find_tensorflow().version


def runtime(version: str) -> Runtime:
    return Runtime(version, version == pinned_runtime())


def _index_url() -> str:
    return (os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or INDEX_URL).rstrip(
        "/"
    )


def _wheel_matches(filename: str) -> bool:
    """A wheel this interpreter could install (the C API libraries are in every such wheel)."""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return bool(tags & _supported_tags())


@cache
def _supported_tags() -> frozenset[object]:
    return frozenset(sys_tags())


def _fetch_versions() -> list[str]:
    request = urllib.request.Request(
        f"{_index_url()}/{DISTRIBUTION}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data = json.load(response)
    versions: set[Version] = set()
    for item in data.get("files", []):
        name = item.get("filename", "")
        if name.endswith(".whl") and not item.get("yanked") and _wheel_matches(name):
            version = parse_wheel_filename(name)[1]
            if not version.is_prerelease:
                versions.add(version)
    return [str(v) for v in sorted(versions)]


def available_versions() -> list[str]:
    """Final ``tensorflow-cpu`` releases with a wheel for this Python and platform (cached a
    day; a stale list, else the installed runtimes, when the index cannot be reached)."""
    cached = cache_root() / "runtime-versions.json"
    try:
        stored = json.loads(cached.read_text())
        if time.time() - float(stored["fetched"]) < VERSIONS_MAX_AGE_S:
            return list(stored["versions"])
    except (OSError, ValueError, KeyError, TypeError):
        stored = None
    try:
        versions = _fetch_versions()
    except (OSError, ValueError) as exc:
        if stored:
            return list(stored["versions"])
        installed = installed_versions()
        if installed:
            return installed
        raise UserError(
            f"cannot list {DISTRIBUTION} versions from {_index_url()} ({exc}); "
            "connect to the package index once, or install a runtime by hand"
        ) from None
    cached.parent.mkdir(parents=True, exist_ok=True)
    temporary = cached.with_name(f".{cached.name}.{os.getpid()}")
    temporary.write_text(json.dumps({"fetched": time.time(), "versions": versions}))
    os.replace(temporary, cached)
    return versions


def installed_versions() -> list[str]:
    root = runtimes_dir()
    found = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return sorted((v for v in found if Runtime(v, False).installed()), key=_version_key)


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def resolve_versions(requested: list[str]) -> list[Runtime]:
    """The runtimes asked for (``--runtime``), in version order, once each.

    Raises UserError (one line listing what exists) for a version without a wheel here."""
    pinned = pinned_runtime()
    wanted = list(dict.fromkeys(v.strip() for v in requested))
    unknown = [v for v in wanted if v != pinned]
    if unknown:
        available = available_versions()
        missing = [v for v in unknown if v not in available]
        if missing:
            python = f"Python {sys.version_info.major}.{sys.version_info.minor}"
            where = f"{platform.system()} {platform.machine()}"
            raise UserError(
                f"no {DISTRIBUTION} wheel {', '.join(missing)} for {python} on {where}; "
                f"available: {', '.join(available)}"
            )
    return [runtime(v) for v in sorted(wanted, key=_version_key)]


def _installer(target: Path, version: str) -> list[str]:
    requirement = f"{DISTRIBUTION}=={version}"
    found = uv()
    if found:  # links from uv's cache: a second project, or a reinstall, costs no download
        return [found, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable,
                "--target", str(target), requirement]  # fmt: skip
    return [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--target", str(target), requirement]  # fmt: skip


def ensure_installed(rt: Runtime) -> bool:
    """Install ``rt`` unless it is there; returns whether this call installed it.

    Raises RuntimeInstallError with the installer's command, status and last lines."""
    if rt.pinned:
        return False

    def populate(staging: Path) -> None:
        run_step(
            _installer(staging, rt.version),
            f"installing TensorFlow {rt.version}",
            RuntimeInstallError,
        )
        libraries = staging / "tensorflow"
        absent = [lib for lib in (CC_LIBRARY, FRAMEWORK_LIBRARY) if not (libraries / lib).is_file()]
        if absent:
            raise RuntimeInstallError(
                f"the {DISTRIBUTION} {rt.version} wheel has no {', '.join(absent)}"
            )

    return install_once(rt.directory, lambda _: rt.installed(), populate)


def disk_usage(rt: Runtime) -> tuple[int, int]:
    """(bytes of the installed runtime, bytes not hard-linked from uv's cache)."""
    return cached_disk_usage(rt.directory)
