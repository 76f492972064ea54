"""``interop --export-tf VERSION``: the fixtures exported by another TensorFlow, for the
pinned runtime's consumers to run (TensorFlow's backward-compatibility promise, tested).

The export runs in that TensorFlow's own environment (``exporters``) as one subprocess
(``export.worker``) writing into its own export cache, ``build/exports-tfVERSION``; the old
TensorFlow computes the references there, at export time. This process imports no
TensorFlow: it checks the cache itself (the key needs no TensorFlow), starts the exporter
only for stale entries, and reads the manifests it wrote. Cells are labelled
``NAME@tfVERSION``; a fixture whose ``exporters`` range excludes the version is ``skip`` with
the declared reason; an export failure is an ``error`` cell with the exporter's last stderr
lines for that fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from ..consumers import Consumer
from ..errors import UserError
from ..exporters import Exporter, ensure_exporter, package_path
from ..fixtures import BrokenFixture, Fixture
from ..manifest import Manifest
from ..process import tail_lines
from .cases import ExportedCases, cases_from_manifest, exported_label, selected_fixtures
from .cells import Cell, error_cells
from .events import Reporter, SilentReporter, Stage
from .settings import FixtureSelection

EXPORT_TIMEOUT_S = 3600.0
TAIL = 8


def export_cases_with(
    exporter: Exporter,
    selection: FixtureSelection,
    build_dir: Path,
    consumers: list[Consumer],
    progress: Reporter | None = None,
) -> ExportedCases:
    """The selected fixtures exported by ``exporter`` (content-cached), as cases and cells."""
    from ..export import cache_key, cached_manifest, export_environment

    started = time.perf_counter()
    result = ExportedCases()
    loaded = selected_fixtures(selection)

    def label(name: str) -> str:
        return exported_label(name, exporter.version)

    fixtures: list[Fixture] = []
    for item in loaded:
        if isinstance(item, BrokenFixture):
            result.cells += error_cells(
                label(item.name), consumers, f"fixture failed to load: {item.error}"
            )
        elif not item.exporters.contains(exporter.version):
            result.cells += [
                Cell(
                    label(item.name),
                    "*",
                    "*",
                    c.name,
                    "skip",
                    item.exporters.why_not(exporter.version),
                )
                for c in consumers
            ]
        else:
            fixtures.append(item)

    root = exporter.exports_dir(build_dir)
    environment = export_environment()
    manifests: dict[str, Manifest] = {}
    for item in fixtures:
        found = cached_manifest(item, root, cache_key(item, exporter.version, environment))
        if found is not None:
            manifests[item.name] = found
    stale = [f for f in fixtures if f.name not in manifests]
    errors: dict[str, str] = {}
    steps = len(fixtures) + (1 if stale and not exporter.installed() else 0)
    with (progress or SilentReporter()).stage(f"export {exporter.label}", steps) as stage:
        for item in fixtures:
            if item.name in manifests:
                stage.done(item.name, "cached")
        if stale:
            made, errors = _export_stale(exporter, selection.directories, stale, root, stage)
            manifests.update(made)
        stage.summary = (
            f"{len(fixtures) - len(stale)} cached, {len(stale) - len(errors)} exported, "
            f"{len(errors)} failed"
        )
    for item in fixtures:
        if item.name in errors:
            result.cells += error_cells(label(item.name), consumers, errors[item.name])
        else:
            result.refs += cases_from_manifest(item, manifests[item.name], exporter.version)
    result.seconds = time.perf_counter() - started
    return result


def _export_stale(
    exporter: Exporter, fixtures_dirs: list[Path], stale: list[Fixture], root: Path, stage: Stage
) -> tuple[dict[str, Manifest], dict[str, str]]:
    """Export ``stale`` in the exporter's environment: (manifests, errors) by fixture name."""
    names = [f.name for f in stale]
    what = f"export with TensorFlow {exporter.version} failed"
    making = f"TensorFlow {exporter.version}'s environment"
    if not exporter.installed():
        stage.start(making)
        try:
            ensure_exporter(exporter)
        except UserError as exc:
            stage.done(making, "failed")
            return {}, dict.fromkeys(names, f"{what}: {exc}")
        stage.done(making, "ready")
    root.mkdir(parents=True, exist_ok=True)
    command = [str(exporter.python), "-m", "tfinterop.export.worker"]
    manifests: dict[str, Manifest] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=".worker-", dir=root) as scratch:
        results = Path(scratch) / "results.jsonl"
        request = {
            "fixtures_dirs": [str(d) for d in fixtures_dirs],
            "names": names,
            "exports_dir": str(root),
            "results": str(results),
        }
        stderr_path = Path(scratch) / "stderr.txt"
        (Path(scratch) / "request.json").write_text(json.dumps(request))
        records: dict[str, dict[str, object]] = {}

        def collect() -> None:
            for name, record in _read_results(results).items():
                if name not in records:
                    records[name] = record
                    stage.done(name, "" if record.get("ok") else "failed")

        with (
            open(Path(scratch) / "request.json", "rb") as stdin,
            open(stderr_path, "wb") as stderr_file,
        ):
            process = subprocess.Popen(
                command,
                stdin=stdin,
                stdout=subprocess.DEVNULL,  # Keras prints progress there; results go to a file
                stderr=stderr_file,
                env=_worker_environment(),
            )
            deadline = time.monotonic() + EXPORT_TIMEOUT_S
            status = ""
            while not status:
                try:
                    code = process.wait(timeout=0.5)
                    status = f"exit {code}" if code >= 0 else f"signal {-code}"
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        process.kill()
                        process.wait()
                        status = f"timed out after {EXPORT_TIMEOUT_S:g}s"
                collect()
        stderr = stderr_path.read_text(encoding="utf-8", errors="replace")
    sections = _stderr_sections(stderr)
    for name in names:
        record = records.get(name)
        tail = tail_lines(sections.get(name, ""), TAIL)
        if record is None:  # the process died (or never started) before this fixture ended
            where = tail if name in sections else tail_lines(stderr, TAIL)
            errors[name] = (
                f"{what}: the exporter process stopped ({status}): {' '.join(command)}: {where}"
            )
            stage.done(name, "failed")
        elif not record.get("ok"):
            errors[name] = f"{what}: {record.get('error')}" + (f" — stderr: {tail}" if tail else "")
        else:
            loaded = _load_manifest(Path(str(record["directory"])), exporter)
            if isinstance(loaded, str):
                errors[name] = f"{what}: {loaded}"
            else:
                manifests[name] = loaded
    return manifests, errors


def _worker_environment() -> dict[str, str]:
    """This process's environment (oneDNN and logging settings included), with only the
    driver's package on the path: nothing of this environment's TensorFlow leaks in."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**inherited, "PYTHONPATH": str(package_path()), "PYTHONNOUSERSITE": "1"}


def _load_manifest(directory: Path, exporter: Exporter) -> Manifest | str:
    try:
        manifest = Manifest.load(directory)
    except UserError as exc:
        return str(exc)
    if manifest.tf_version != exporter.version:
        return f"the manifest says TensorFlow {manifest.tf_version} exported it, not {exporter.version}"
    return manifest


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _read_results(path: Path) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line cut short by a crash
            continue
        if isinstance(record, dict) and isinstance(record.get("fixture"), str):
            found[record["fixture"]] = record
    return found


def _stderr_sections(stderr: str) -> dict[str, str]:
    """The exporter's stderr split at the worker's markers: each fixture's own lines."""
    from ..export.worker import MARKER

    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in stderr.splitlines():
        if line.startswith(MARKER + " "):
            current = sections.setdefault(line[len(MARKER) + 1 :].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}
