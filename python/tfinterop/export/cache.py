"""The export cache: content keys, one exporter per cache (a file lock), and entries built in
a staging directory then swapped into place, so a killed run never leaves a half-written
entry that a later run would trust."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..fixtures import Fixture
from ..manifest import MANIFEST_NAME, Manifest
from ..tfenv import find_tensorflow
from .writer import export_fixture

_EXPORTER_SOURCES = (
    "export/*.py",
    "export/*/*.py",
    "fixtures.py",
    "formats.py",
    "tensors.py",
    "manifest.py",
    "inspect/savedmodel.py",
    "images.py",
)
"""What an export depends on (globs under the package): a change re-exports every fixture."""


def exporter_digest() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for pattern in _EXPORTER_SOURCES:
        for path in sorted(package.glob(pattern)):
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(fixture: Fixture, tf_version: str, environment: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (
        fixture.source_digest(),
        str(fixture.seed),
        tf_version,
        json.dumps(environment, sort_keys=True),
        exporter_digest(),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def export_environment() -> dict[str, str]:
    """Settings that change what Python computes; recorded and part of the cache key."""
    return {"TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "")}


@dataclass
class ExportOutcome:
    fixture: str
    manifest: Manifest | None
    cached: bool
    error: str | None = None
    seconds: float = 0.0
    detail: str = ""
    """The failure's traceback (``error`` is its one line)."""


def cached_manifest(fixture: Fixture, root: Path, key: str) -> Manifest | None:
    directory = root / fixture.name
    if not (directory / MANIFEST_NAME).exists():
        return None
    try:
        manifest = Manifest.load(directory)
    except UserError:  # unreadable, or written by another version: re-export
        return None
    if manifest.cache_key != key:
        return None
    # Entries are renamed into place whole, so a file missing here was removed by hand.
    if not all((directory / name).is_file() for name in manifest.artifacts):
        return None
    return manifest


def export_fixtures(
    fixtures: list[Fixture],
    root: Path,
    *,
    force: bool = False,
    on_start: Callable[[Fixture, bool], None] | None = None,
) -> list[ExportOutcome]:
    """Export every fixture whose cache entry is missing or stale; returns one outcome each."""
    tf_version = find_tensorflow().version
    environment = export_environment()
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / ".lock", "w")  # closed by the with block below
    except OSError as exc:
        raise UserError(
            f"cannot write exports under {root}: {exc.strerror or exc} (choose another --build-dir)"
        ) from None
    # One exporter at a time per cache: a second run waits, then finds the entries fresh.
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _export_locked(fixtures, root, force, on_start, tf_version, environment)


def _export_locked(
    fixtures: list[Fixture],
    root: Path,
    force: bool,
    on_start: Callable[[Fixture, bool], None] | None,
    tf_version: str,
    environment: dict[str, str],
) -> list[ExportOutcome]:
    # Under the lock no other exporter is working, so staging dirs left here were abandoned.
    for stale in [*root.glob(".tmp-*"), *root.glob(".old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    outcomes = []
    for fixture in fixtures:
        key = cache_key(fixture, tf_version, environment)
        manifest = None if force else cached_manifest(fixture, root, key)
        if on_start:
            on_start(fixture, manifest is not None)
        if manifest is not None:
            outcomes.append(ExportOutcome(fixture.name, manifest, cached=True))
            continue
        started = time.perf_counter()
        try:
            manifest = _export_atomically(fixture, root, key, environment)
            outcomes.append(
                ExportOutcome(fixture.name, manifest, False, seconds=time.perf_counter() - started)
            )
        except Exception as exc:  # one broken fixture must not stop the others
            outcomes.append(
                ExportOutcome(
                    fixture.name,
                    None,
                    False,
                    error=_describe(exc, fixture),
                    seconds=time.perf_counter() - started,
                    detail=traceback.format_exc(),
                )
            )
    return outcomes


def _describe(exc: BaseException, fixture: Fixture) -> str:
    """One line: the exception and the innermost line of the fixture's file it passed."""
    if isinstance(exc, UserError):
        return str(exc)
    source = str(fixture.source)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
    where = f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    message = str(exc).strip().splitlines()
    return f"{type(exc).__name__}{where}: {message[0] if message else ''}"


def _export_atomically(
    fixture: Fixture, root: Path, key: str, environment: dict[str, str]
) -> Manifest:
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{fixture.name}-", dir=root))
    try:
        manifest = export_fixture(fixture, staging, key, environment)
        final = root / fixture.name
        # Swap: the old entry is moved aside first so `final` is never half-written.
        trash = None
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".old-{fixture.name}-", dir=root))
            os.replace(final, trash / "entry")
        os.replace(staging, final)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        manifest.directory = final
        return manifest
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
