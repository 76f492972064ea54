"""examples/photo-service as its team uses it: tfinterop installed from the wheel into a fresh
virtual environment outside the checkout, the project copied elsewhere, and there `tfinterop
build`, `interop`, `check` on the exported model and `pytest --tfinterop`: the service's own
Rust preprocessing (the image crate) against pillow's, within the drift its fixture declares."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "photo-service"
PLUGIN = ROOT / "python" / "tfinterop" / "pytest_plugin.py"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(installed, tmp_path_factory: pytest.TempPathFactory, build_dir: Path):
    """A copy of the example outside the checkout, with the environment its user would have
    (the installed wheel first on PATH)."""
    work = tmp_path_factory.mktemp("example")
    copy = work / "photo-service"
    shutil.copytree(
        EXAMPLE,
        copy,
        ignore=shutil.ignore_patterns("target", "bin", ".tfinterop-rust", "__pycache__"),
    )
    environment = installed.environment(work / "cache")
    # Kept between runs, apart from the checkout's: a build dir (exports, and the cargo config
    # whose link dir is part of cargo's fingerprint of tensorflow-sys) and a cargo target dir
    # (the service's build.sh honours CARGO_TARGET_DIR). Sharing the checkout's target dir
    # with another build dir would make the two rebuild the tensorflow crate for each other.
    # First run: the service's crates compiled cold; later runs: only what changed.
    environment["TFINTEROP_BUILD_DIR"] = str(build_dir / "example-project")
    environment["CARGO_TARGET_DIR"] = str(build_dir / "cargo-target-example")
    return copy, environment


def test_build_interop_check_and_pytest_in_the_example(project, run_checked) -> None:
    directory, environment = project
    built = run_checked(["tfinterop", "build"], directory, environment).stdout
    assert "photo-service consumer: built" in built, built
    assert (directory / "service" / "bin" / "photo-service").is_file()

    report = directory / "interop.json"
    run_checked(
        ["tfinterop", "interop", "--repeat", "1", "--json", str(report)], directory, environment
    )
    rows = {(r["format"], r["consumer"]): r for r in json.loads(report.read_text())["rows"]}
    assert set(rows) == {
        (fmt, consumer)
        for fmt in ("frozen", "saved_model")
        for consumer in ("python", "photo-service")
    }
    for (_, consumer), row in rows.items():
        assert row["status"] == "pass", row
        if consumer == "photo-service":
            # The service got the photo and preprocessed it itself: its drift from pillow's
            # preprocessing is real and within the fixture's declared atol.
            assert 0 < row["max_abs"] <= 3e-3, row

    # The exported model itself, with check's own inputs (arrays: no photo, no drift).
    model = Path(environment["TFINTEROP_BUILD_DIR"]) / "exports" / "classifier" / "saved_model"
    checked = directory / "check.json"
    run_checked(["tfinterop", "check", str(model), "--json", str(checked)], directory, environment)
    statuses = {(r["consumer"], r["status"]) for r in json.loads(checked.read_text())["rows"]}
    assert statuses == {("python", "pass"), ("photo-service", "pass")}, statuses

    if not PLUGIN.is_file():
        pytest.skip("the pytest plugin (python/tfinterop/pytest_plugin.py) is not there yet")
    junit = directory / "cells.xml"
    done = run_checked(
        ["python", "-m", "pytest", "--tfinterop", "models", "-p", "no:cacheprovider", "-v",
         f"--junitxml={junit}"],
        directory, environment,
    )  # fmt: skip
    for fmt in ("frozen", "saved_model"):
        assert f"classifier/{fmt}/serving_default/photo-service PASSED" in done.stdout, done.stdout
        assert f"classifier/{fmt}/serving_default/python PASSED" in done.stdout
