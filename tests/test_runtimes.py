"""Runtimes (``--runtime``): installing another wheel's C API, running the native consumers
on it, and what a user gets when a runtime does not exist or cannot be installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfinterop.runtimes import Runtime, pinned_runtime, runtimes_dir

OLD = "2.12.0"
"""The oldest tensorflow-cpu wheel with the C API for Python 3.11 (also what `compat` runs)."""


def test_unknown_runtime_is_one_line_listing_the_versions(run_cli) -> None:
    done = run_cli("interop", "--no-build", "-f", "linear", "--runtime", "2.99")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "no tensorflow-cpu wheel 2.99 for Python 3.11" in lines[0]
    available = lines[0].split("available: ")[1].split(", ")
    assert OLD in available and pinned_runtime() in available and "2.15.1" in available
    assert not any("rc" in v for v in available)  # release candidates are not offered


def test_a_failed_install_marks_only_its_own_cells(run_cli, tmp_path: Path) -> None:
    """No index and an empty uv cache: 2.14.0 cannot be installed; its cells say so with the
    installer's words, while the pinned runtime's cells of the same run pass."""
    cache = tmp_path / "cache"
    cache.mkdir()
    # A fresh version list (what the index said), so that only the install needs the network.
    (cache / "runtime-versions.json").write_text(
        json.dumps({"fetched": 4e9, "versions": ["2.14.0", pinned_runtime()]})
    )
    env = {
        "TFINTEROP_CACHE_DIR": str(cache),
        "UV_OFFLINE": "1",
        "UV_CACHE_DIR": str(tmp_path / "uv"),
        "PIP_NO_INDEX": "1",
    }
    report = tmp_path / "report.json"
    done = run_cli(
        "interop", "-c", "c", "-f", "linear", "--repeat", "1", "--json", str(report),
        "--runtime", "2.14.0", "--runtime", pinned_runtime(), env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    rows = json.loads(report.read_text())["rows"]
    broken = [r for r in rows if r["consumer"] == "c@2.14.0"]
    fine = [r for r in rows if r["consumer"] == f"c@{pinned_runtime()}"]
    assert broken and fine
    assert all(r["status"] == "pass" for r in fine), fine
    for row in broken:
        assert row["status"] == "error"
        assert "installing TensorFlow 2.14.0 failed" in row["message"], row["message"]
        assert "tensorflow-cpu==2.14.0" in row["message"]  # the command, then its last lines
    assert not (cache / "runtimes" / "2.14.0").exists()  # nothing half-installed is left


INSTALL = (
    "from tfinterop.runtimes import Runtime, ensure_installed; "
    f"print(ensure_installed(Runtime({OLD!r}, False)))"
)


def test_concurrent_runs_share_one_install(tmp_path: Path) -> None:
    """Two processes asking for the same runtime at once: one installs, the other waits for
    the lock and reuses it; neither sees half of it, no staging directory is left."""
    env = {**os.environ, "TFINTEROP_CACHE_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", INSTALL], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    installed = [process.communicate(timeout=900)[0].strip() for process in processes]
    assert sorted(installed) == ["False", "True"], installed
    os.environ["TFINTEROP_CACHE_DIR"] = str(tmp_path)
    try:
        assert Runtime(OLD, False).installed()
        assert sorted(p.name for p in runtimes_dir().iterdir() if not p.name.startswith(".")) == [
            OLD
        ]
        assert not [p for p in runtimes_dir().iterdir() if "staging" in p.name]
    finally:
        del os.environ["TFINTEROP_CACHE_DIR"]


def test_a_consumer_on_the_wrong_runtime_is_an_error(
    export_manifests, project_fixtures, build_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """A "2.12.0" runtime directory that holds the pinned libraries: the C consumer reports
    the TensorFlow it really loaded, and none of its numbers is counted as 2.12.0's."""
    from tfinterop.consumers import OnRuntime, by_name
    from tfinterop.pipeline.cases import cases_from_manifest
    from tfinterop.pipeline.run import run_consumers
    from tfinterop.pipeline.settings import RunSettings
    from tfinterop.tfenv import find_tensorflow

    monkeypatch.setenv("TFINTEROP_CACHE_DIR", str(tmp_path))
    fake = tmp_path / "runtimes" / OLD / "tensorflow"
    fake.mkdir(parents=True)
    for library in Path(find_tensorflow().library_dir).glob("libtensorflow*.so.2"):
        (fake / library.name).symlink_to(library)
    (c,) = by_name(["c"])
    consumer = OnRuntime.bind(c, Runtime(OLD, False))
    manifest = export_manifests(["linear"])["linear"]
    refs = cases_from_manifest(project_fixtures["linear"], manifest)
    settings = RunSettings(build_dir=build_dir, runs_dir=tmp_path / "runs", repeat=1)
    cells, info, _ = run_consumers([consumer], refs, settings)
    assert info[f"c@{OLD}"]["tf_version"] == pinned_runtime()
    assert cells and all(cell.status == "error" for cell in cells)
    for cell in cells:
        assert f"asked to run on TensorFlow {OLD}, it reported TensorFlow {pinned_runtime()}" in (
            cell.message
        )


@pytest.mark.e2e
def test_drift_on_an_older_runtime_fails_until_the_fixture_declares_it(
    run_cli, project_root: Path, tmp_path: Path
) -> None:
    """control_flow is exact on the pinned runtime and differs by ~7e-7 on 2.12.0 (C and
    Rust alike): with its ``runtime_tolerances`` the cells pass, and the same file without
    that declaration fails on 2.12.0 only."""
    declared = tmp_path / "declared"
    undeclared = tmp_path / "undeclared"
    for directory in (declared, undeclared):
        directory.mkdir()
    source = (project_root / "fixtures" / "control_flow.py").read_text()
    line = '    runtime_tolerances={"<2.20": Tolerance(atol=1.5e-6, rtol=0.0)},\n'
    assert line in source
    shutil.copy(project_root / "fixtures" / "control_flow.py", declared)
    (undeclared / "control_flow.py").write_text(source.replace(line, ""))
    results = {}
    for directory in (declared, undeclared):
        report = tmp_path / f"{directory.name}.json"
        done = run_cli(
            "interop", "--fixtures-dir", str(directory), "-c", "c", "-c", "rust",
            "--runtime", OLD, "--runtime", pinned_runtime(), "--repeat", "1",
            "--json", str(report),
        )  # fmt: skip
        results[directory.name] = (done, json.loads(report.read_text()))
    done, doc = results["declared"]
    assert done.returncode == 0, done.stdout[-3000:]
    consumers = doc["environment"]["consumers"]
    assert consumers[f"c@{OLD}"]["tf_version"] == OLD
    assert consumers[f"rust@{OLD}"]["tf_version"] == OLD
    old = [r for r in doc["rows"] if r["consumer"].endswith(f"@{OLD}")]
    assert max(r["max_abs"] for r in old) > 1e-7  # the drift is real, and declared
    done, doc = results["undeclared"]
    assert done.returncode == 1
    failing = {(r["consumer"], r["status"]) for r in doc["rows"] if r["status"] != "pass"}
    assert failing == {(f"c@{OLD}", "fail"), (f"rust@{OLD}", "fail")}, failing
