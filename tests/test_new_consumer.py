"""``tfinterop new-consumer rust|c NAME``: a consumer of the user's own, on the shipped contract
code, that passes out of the box once registered; every mistake is one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tfinterop.errors import UserError
from tfinterop.newconsumer import LANGUAGES, new_consumer
from tfinterop.project import load_config

ROOT = Path(__file__).resolve().parents[1]


def tfinterop(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it from their project's directory."""
    environment = {k: v for k, v in os.environ.items() if k != "TFINTEROP_BUILD_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "tfinterop", *args],
        cwd=cwd, capture_output=True, text=True, timeout=1800, check=False,
        env={**environment, **env},
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    shutil.copy(ROOT / "fixtures" / "linear.py", tmp_path / "models")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "service"\nversion = "0"\n\n[tool.tfinterop]\nfixtures = ["models"]\n'
    )
    return tmp_path


@pytest.mark.e2e
def test_scaffolded_consumers_pass_out_of_the_box(project: Path, build_dir: Path) -> None:
    for language in LANGUAGES:
        made = tfinterop(project, "new-consumer", language, f"my-{language}", "--register")
        assert made.returncode == 0, made.stderr
        assert f"[tool.tfinterop.consumer.my-{language}]" in made.stdout
    declared = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["tfinterop"]
    assert set(declared["consumer"]) == {f"my-{language}" for language in LANGUAGES}
    # The checkout's build dir and cargo target dir: the cargo config is the built-in Rust
    # consumer's, so the tensorflow crate compiled for it is reused (only the scaffold builds).
    report = project / "report.json"
    done = tfinterop(
        project, "interop", "-f", "linear", "-c", "my-rust", "-c", "my-c", "-c", "python",
        "--build-dir", str(build_dir), "--repeat", "1", "--json", str(report),
        CARGO_TARGET_DIR=str(build_dir / "cargo-target"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(report.read_text())
    cells = {(r["format"], r["consumer"]): r["status"] for r in document["rows"]}
    assert cells == {
        (fmt, consumer): "pass"
        for fmt in ("frozen", "saved_model")
        for consumer in ("my-rust", "my-c", "python")
    }, cells
    for language in LANGUAGES:  # built where the table says, from the user's tree
        assert (project / f"my-{language}" / "bin" / f"my-{language}").is_file()
    # Each program names itself in its consumer record (the report's environment).
    for language in LANGUAGES:
        name = f"my-{language}"
        version = subprocess.run(
            [str(project / name / "bin" / name), "--version"],
            capture_output=True, text=True, check=False,
            env={**os.environ, "LD_LIBRARY_PATH": _tf_library_dir()},
        )  # fmt: skip
        assert json.loads(version.stdout)["name"] == name, version.stderr


def _tf_library_dir() -> str:
    from tfinterop.tfenv import find_tensorflow

    return find_tensorflow().library_dir


def test_the_files_and_the_table(tmp_path: Path) -> None:
    made = new_consumer("rust", "edge", cwd=tmp_path)
    assert made.directory == tmp_path / "edge"
    written = {p.relative_to(made.directory).as_posix() for p in made.files}
    assert written == {
        "Cargo.toml",
        "Cargo.lock",
        "build.sh",
        "src/main.rs",
        "src/inference.rs",
        ".gitignore",
    }
    assert "YOUR INFERENCE CODE GOES HERE" in (made.directory / "src" / "inference.rs").read_text()
    assert 'name = "edge"' in (made.directory / "Cargo.toml").read_text()
    # No configuration anywhere: the table is for a new tfinterop.toml, printed, not written.
    assert made.registered is None and not (tmp_path / "tfinterop.toml").exists()
    assert made.table.startswith("[consumer.edge]\n") and 'directory = "edge"' in made.table

    c = new_consumer("c", "edge-c", Path("native/edge"), cwd=tmp_path, register=True)
    assert c.registered == tmp_path / "tfinterop.toml"
    (spec,) = load_config(tmp_path).consumers
    assert spec.name == "edge-c" and spec.directory == tmp_path / "native" / "edge"
    assert spec.build == ("make", "--no-print-directory") and spec.command == ("bin/edge-c",)
    assert "YOUR INFERENCE CODE GOES HERE" in (tmp_path / "native" / "edge" / "main.c").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["go", "svc"], "unknown language 'go'; available: rust, c"),
        (["rust", "My Service"], "consumer name 'My Service' must match"),
        (["rust", "c"], "consumer name 'c' is a built-in consumer's"),
        (["c", "taken"], "taken already exists and is not empty (use --force"),
        (["c", "twice", "--dir", "again", "--register"], "already declares a consumer 'twice'"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(project: Path, args: list[str], message: str) -> None:
    (project / "taken").mkdir()
    (project / "taken" / "keep.txt").write_text("the user's")
    new_consumer("c", "twice", cwd=project, register=True)
    done = tfinterop(project, "new-consumer", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert (project / "taken" / "keep.txt").read_text() == "the user's"
    assert not (project / "again").exists()


def test_force_writes_into_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "notes.txt").write_text("kept")
    with pytest.raises(UserError):
        new_consumer("c", "svc", cwd=tmp_path)
    made = new_consumer("c", "svc", cwd=tmp_path, force=True)
    assert (made.directory / "main.c").is_file() and (made.directory / "notes.txt").is_file()
