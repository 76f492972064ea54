"""Shared test fixtures: the project's exports (content-cached under build/) and consumers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("TFINTEROP_BUILD_DIR", ROOT / "build"))

# Same defaults the CLI gives consumer processes, before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture(scope="session")
def build_dir() -> Path:
    return BUILD


@pytest.fixture(scope="session")
def project_fixtures():
    from tfinterop.fixtures import load_fixtures

    return {f.name: f for f in load_fixtures(ROOT / "fixtures")}


def export_manifests(project_fixtures, names):
    """Exports of the named built-in fixtures (reused from build/exports when fresh)."""
    from tfinterop.export import export_fixtures

    outcomes = export_fixtures([project_fixtures[n] for n in names], BUILD / "exports")
    failed = [f"{o.fixture}: {o.error}" for o in outcomes if o.manifest is None]
    assert not failed, failed
    return {o.fixture: o.manifest for o in outcomes}


@pytest.fixture(scope="session")
def manifests(project_fixtures):
    """The two foundation fixtures most tests run on; other tests export what they need."""
    return export_manifests(project_fixtures, ["linear", "mobilenet_v3"])


def python_exe() -> str:
    return sys.executable


def run_cli(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """`python -m tfinterop ARGS` in a fresh process (what a user runs), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tfinterop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
