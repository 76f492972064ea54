"""tfinterop as a user installs it: the wheel (built from the sdist, so MANIFEST.in is
exercised too) in a fresh virtual environment outside the checkout, used from a project
directory of its own, with the consumers built from the sources the wheel carries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADDITION = ROOT / "tests" / "data" / "realworld" / "tf-rust" / "addition.pb"

pytestmark = pytest.mark.e2e


def test_the_wheel_carries_the_consumer_sources_and_fixtures(installed) -> None:
    (package,) = installed.venv.glob("lib/python*/site-packages/tfinterop")
    bundled = package / "_bundled"
    assert (bundled / "c_consumer" / "src" / "main.c").is_file()
    assert (bundled / "rust_consumer" / "Cargo.lock").is_file()
    assert (bundled / "rust_consumer" / "crate-0.21" / "Cargo.toml").is_file()
    assert (bundled / "fixtures" / "linear.py").is_file()
    assert not list(bundled.rglob("target")) and not (bundled / "c_consumer" / "fuzz").exists()


def test_build_interop_and_check_from_any_directory(installed, run_checked, tmp_path: Path) -> None:
    project = tmp_path / "service"
    (project / "models").mkdir(parents=True)
    shutil.copy(ROOT / "fixtures" / "linear.py", project / "models")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "service"\nversion = "0"\n\n'
        '[tool.tfinterop]\nfixtures = ["models"]\ndefault-consumers = ["python", "c"]\n'
    )
    environment = installed.environment(tmp_path / "cache")
    settings = json.loads(run_checked(["tfinterop", "env", "--json"], project, environment).stdout)
    assert settings["settings"]["build-dir"]["value"] == str(tmp_path / "cache" / "build")
    assert settings["settings"]["fixtures"]["value"] == str(project / "models")
    # Built from the wheel's sources into the per-user cache, not into the checkout.
    built = run_checked(["tfinterop", "build"], project, environment).stdout
    assert "c consumer: built" in built and str(tmp_path / "cache" / "build") in built
    again = run_checked(["tfinterop", "build"], tmp_path, environment).stdout  # another directory
    assert "c consumer: up to date" in again
    report = project / "interop.json"
    run_checked(
        ["tfinterop", "interop", "--repeat", "1", "--json", str(report)], project, environment
    )
    rows = json.loads(report.read_text())["rows"]
    assert {(r["fixture"], r["consumer"], r["status"]) for r in rows} == {
        ("linear", consumer, "pass") for consumer in ("python", "c")
    }
    checked = project / "check.json"
    run_checked(["tfinterop", "check", str(ADDITION), "--json", str(checked)], project, environment)
    statuses = {(r["consumer"], r["status"]) for r in json.loads(checked.read_text())["rows"]}
    assert statuses == {("python", "pass"), ("c", "pass")}, statuses
