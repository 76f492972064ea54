"""tfinterop as a user installs it: the wheel (built from the sdist, so MANIFEST.in is
exercised too) in a fresh virtual environment outside the checkout, used from a project
directory of its own, with the consumers built from the sources the wheel carries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ADDITION = ROOT / "tests" / "data" / "realworld" / "tf-rust" / "addition.pb"

pytestmark = pytest.mark.e2e


def uv() -> str:
    found = Path(sys.executable).parent / "uv"
    program = str(found) if found.is_file() else shutil.which("uv")
    assert program, "uv is part of the build extra (nox installs it)"
    return program


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel and its [tf,build] extras (uv links TensorFlow
    from its cache: seconds, no copy)."""
    work = tmp_path_factory.mktemp("install")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    run([uv(), "build", "--quiet", "--out-dir", str(work / "dist"), str(ROOT)], work, clean)
    (wheel,) = (work / "dist").glob("tfinterop-*.whl")
    venv = work / "venv"
    run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], work, clean)
    python = venv / "bin" / "python"
    run(
        [uv(), "pip", "install", "--quiet", "--python", str(python), f"{wheel}[tf,build]"],
        work,
        clean,
    )
    return venv


def user_env(venv: Path, cache: Path) -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("VIRTUAL_ENV", "PYTHON", "TFINTEROP_"))
    }  # fmt: skip
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
    environment["TFINTEROP_CACHE_DIR"] = str(cache)
    return environment


def test_the_wheel_carries_the_consumer_sources_and_fixtures(installed: Path) -> None:
    (package,) = installed.glob("lib/python*/site-packages/tfinterop")
    bundled = package / "_bundled"
    assert (bundled / "c_consumer" / "src" / "main.c").is_file()
    assert (bundled / "rust_consumer" / "Cargo.lock").is_file()
    assert (bundled / "rust_consumer" / "crate-0.21" / "Cargo.toml").is_file()
    assert (bundled / "fixtures" / "linear.py").is_file()
    assert not list(bundled.rglob("target")) and not (bundled / "c_consumer" / "fuzz").exists()


def test_build_interop_and_check_from_any_directory(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "service"
    (project / "models").mkdir(parents=True)
    shutil.copy(ROOT / "fixtures" / "linear.py", project / "models")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "service"\nversion = "0"\n\n'
        '[tool.tfinterop]\nfixtures = ["models"]\ndefault-consumers = ["python", "c"]\n'
    )
    environment = user_env(installed, tmp_path / "cache")
    settings = json.loads(run(["tfinterop", "env", "--json"], project, environment).stdout)
    assert settings["settings"]["build-dir"]["value"] == str(tmp_path / "cache" / "build")
    assert settings["settings"]["fixtures"]["value"] == str(project / "models")
    # Built from the wheel's sources into the per-user cache, not into the checkout.
    built = run(["tfinterop", "build"], project, environment).stdout
    assert "c consumer: built" in built and str(tmp_path / "cache" / "build") in built
    again = run(["tfinterop", "build"], tmp_path, environment).stdout  # another directory
    assert "c consumer: up to date" in again
    report = project / "interop.json"
    run(["tfinterop", "interop", "--repeat", "1", "--json", str(report)], project, environment)
    rows = json.loads(report.read_text())["rows"]
    assert {(r["fixture"], r["consumer"], r["status"]) for r in rows} == {
        ("linear", consumer, "pass") for consumer in ("python", "c")
    }
    checked = project / "check.json"
    run(["tfinterop", "check", str(ADDITION), "--json", str(checked)], project, environment)
    statuses = {(r["consumer"], r["status"]) for r in json.loads(checked.read_text())["rows"]}
    assert statuses == {("python", "pass"), ("c", "pass")}, statuses
