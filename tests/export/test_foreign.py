"""Exports by an older TensorFlow (``interop --export-tf``, issue 14 item 7): the fixtures are
exported in that TensorFlow's own environment, its references are what it computed, and every
consumer of the pinned runtime runs them; fixtures it cannot write are declared skips, any
other export failure is an error cell with the exporter's words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfinterop.consumers import by_name
from tfinterop.runtimes import pinned_runtime

OLD = "2.15.1"
"""The last TensorFlow with Keras 2: the most different exporter that still writes most
fixtures (2.12.0 writes the same set; measured in the report of this change)."""
FIXTURES = ("linear", "pow_module")
"""The cheapest export, and a tf.Module whose variables are created on its first trace,
which computes 1-2 ulps differently on 2.15.1 (its declared ``runtime_tolerances``)."""


def _rows(report: Path) -> list[dict]:
    return json.loads(report.read_text())["rows"]


@pytest.mark.e2e
def test_old_exports_run_in_every_pinned_consumer(
    run_cli, build_dir: Path, export_manifests, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    names = [arg for name in FIXTURES for arg in ("-f", name)]
    done = run_cli(
        "interop", "--export-tf", OLD, *names, "--repeat", "1", "--json", str(report)
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    doc = json.loads(report.read_text())
    assert doc["exporters"] == [OLD]
    rows = doc["rows"]
    # Every default consumer ran, on the pinned runtime, and every cell passed.
    assert {r["consumer"] for r in rows} == {c.name for c in by_name(None)}
    assert {r["fixture"] for r in rows} == {f"{name}@tf{OLD}" for name in FIXTURES}
    assert all(r["status"] == "pass" for r in rows), [
        (r["fixture"], r["format"], r["consumer"], r["status"], r["message"]) for r in rows
    ]
    for name, info in doc["environment"]["consumers"].items():
        if info.get("tf_version"):
            assert info["tf_version"] == pinned_runtime(), (name, info)

    # The references came from 2.15.1: its manifest says so, and pow_module's differ from
    # the pinned TensorFlow's in the last bits (the drift its runtime_tolerances declare).
    exports = build_dir / f"exports-tf{OLD}"
    pinned = export_manifests(list(FIXTURES))
    for name in FIXTURES:
        manifest = json.loads((exports / name / "manifest.json").read_text())
        assert manifest["tf_version"] == OLD
        assert manifest["keras_version"].startswith("2.15")
        assert pinned[name].tf_version == pinned_runtime()
    old = np.load(exports / "pow_module" / "reference" / "serving_default" / "pow.npy")
    new = np.load(pinned["pow_module"].directory / "reference" / "serving_default" / "pow.npy")
    differ = ~np.isclose(old, new, rtol=0, atol=0, equal_nan=True)
    assert 0 < differ.sum() <= 4, (old, new)
    drifted = [r for r in rows if r["fixture"] == f"pow_module@tf{OLD}" and r["format"] != "tflite"]
    assert drifted and all(r["max_abs"] > 0 for r in drifted)

    # A second run exports nothing: the driver finds the entries without the exporter, and
    # imports no TensorFlow itself.
    mtime = (exports / "linear" / "manifest.json").stat().st_mtime_ns
    script = (
        "import sys; from pathlib import Path\n"
        "from tfinterop.consumers import by_name\n"
        "from tfinterop.exporters import Exporter\n"
        "from tfinterop.paths import default_fixtures_dir\n"
        "from tfinterop.pipeline.export_tf import export_cases_with\n"
        "from tfinterop.pipeline.settings import FixtureSelection\n"
        f"got = export_cases_with(Exporter({OLD!r}), FixtureSelection(default_fixtures_dir(), "
        f"{list(FIXTURES)!r}), Path({str(build_dir)!r}), by_name(['c']))\n"
        "print(len(got.refs), len(got.cells), 'tensorflow' in sys.modules)\n"
    )
    again = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    refs, cells, imported = again.stdout.split()
    assert (int(refs) > 0, int(cells), imported) == (True, 0, "False"), again.stdout
    assert (exports / "linear" / "manifest.json").stat().st_mtime_ns == mtime


def test_declared_and_undeclared_export_failures(
    run_cli, project_root: Path, tmp_path: Path
) -> None:
    """A fixture declaring ``exporters=">=2.16"`` is a skip with its reason (nothing is
    exported for it); one that fails under the old TensorFlow without a declaration is an
    error cell carrying the exporter's last stderr lines (the failing line of the fixture)."""
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    source = (project_root / "fixtures" / "linear.py").read_text()
    declaration = '@fixture("linear", seed=7, tolerance=Tolerance(atol=0.0, rtol=0.0))'
    assert declaration in source
    (fixtures / "keras3_only.py").write_text(
        source.replace(
            declaration,
            '@fixture("keras3_only", seed=7, tolerance=Tolerance(atol=0.0, rtol=0.0), '
            'exporters=exported_by(">=2.16", "needs Keras 3"))',
        ).replace("fixture\n", "exported_by, fixture\n", 1)
    )
    (fixtures / "breaks_on_old.py").write_text(
        source.replace('@fixture("linear"', '@fixture("breaks_on_old"').replace(
            "    a, b = ctx.rng.uniform(-3, 3, size=2)\n",
            "    if not tf.__version__.startswith('2.2'):\n"
            "        raise RuntimeError(f'no such thing in TensorFlow {tf.__version__}')\n"
            "    a, b = ctx.rng.uniform(-3, 3, size=2)\n",
        )
    )
    report = tmp_path / "report.json"
    done = run_cli(
        "interop", "--export-tf", OLD, "--fixtures-dir", str(fixtures), "-c", "python",
        "-c", "c", "--json", str(report), "--build-dir", str(tmp_path / "build"), "--no-build",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    rows = _rows(report)
    skipped = [r for r in rows if r["fixture"] == f"keras3_only@tf{OLD}"]
    assert [r["consumer"] for r in skipped] == ["python", "c"]
    for row in skipped:
        assert row["status"] == "skip"
        assert row["message"] == (
            f"not exported by TensorFlow {OLD}: the fixture declares exporters >=2.16: "
            "needs Keras 3"
        )
    assert not (tmp_path / "build" / f"exports-tf{OLD}" / "keras3_only").exists()
    broken = [r for r in rows if r["fixture"] == f"breaks_on_old@tf{OLD}"]
    assert [r["consumer"] for r in broken] == ["python", "c"]
    for row in broken:
        assert row["status"] == "error"
        message = row["message"]
        assert message.startswith(f"export with TensorFlow {OLD} failed: RuntimeError")
        assert f"no such thing in TensorFlow {OLD}" in message
        # The exporter's stderr: the traceback's frame in the fixture file.
        assert "breaks_on_old.py" in message.split(" — stderr: ")[1], message


def test_unknown_exporter_version_is_one_line(run_cli) -> None:
    done = run_cli("interop", "--no-build", "-f", "linear", "--export-tf", "2.99")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "no tensorflow-cpu wheel 2.99 for Python 3.11" in lines[0]
    assert OLD in lines[0].split("available: ")[1].split(", ")


def test_exporter_ranges_are_checked_where_declared() -> None:
    from tfinterop.errors import UserError
    from tfinterop.fixtures import ExporterRange, exported_by

    assert exported_by(">=2.16", "x").contains("2.16.1")
    assert not exported_by(">=2.16", "x").contains(OLD)
    assert ExporterRange().contains(OLD)  # undeclared: every exporter
    with pytest.raises(UserError, match="not a version specifier"):
        exported_by("after 2.16", "x")
