"""A project's own consumers (``[tool.tfinterop.consumer.NAME]``): run and reported like the
built-in ones; a build that fails, a command that does not exist or a program that breaks
the contract marks only that consumer's cells."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfinterop.consumers import by_name

ROOT = Path(__file__).resolve().parents[2]


def tfinterop(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it from their project's directory."""
    environment = {k: v for k, v in os.environ.items() if k != "TFINTEROP_BUILD_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "tfinterop", *args],
        cwd=cwd, capture_output=True, text=True, timeout=1200, check=False, env=environment,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, build_dir: Path) -> Path:
    (tmp_path / "models").mkdir()
    shutil.copy(ROOT / "fixtures" / "linear.py", tmp_path / "models")
    c_program = by_name(["c"])[0].command(build_dir)[0]
    fake = ROOT / "tests" / "fake_consumer.py"
    (tmp_path / "pyproject.toml").write_text(
        f"""[project]
name = "service"
version = "0"

[tool.tfinterop]
fixtures = ["models"]
default-consumers = ["python", "mine", "unbuildable", "absent", "garbage"]
build-dir = "out"

[tool.tfinterop.consumer.mine]
command = [{json.dumps(c_program)}]
capabilities = ["frozen", "saved_model"]

[tool.tfinterop.consumer.unbuildable]
command = "bin/never-built"
build = ["sh", "-c", "echo 'linker: cannot find -lservice' >&2; exit 3"]
capabilities = ["frozen"]

[tool.tfinterop.consumer.absent]
command = "no-such-program-tfinterop"
capabilities = ["frozen"]

[tool.tfinterop.consumer.garbage]
command = [{json.dumps(sys.executable)}, {json.dumps(str(fake))}, "garbage"]
capabilities = ["frozen"]
"""
    )
    return tmp_path


@pytest.mark.e2e
def test_project_consumers_run_beside_the_built_in_ones(project: Path) -> None:
    done = tfinterop(project, "interop", "--repeat", "1", "--json", "report.json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    rows = {
        (r["format"], r["consumer"]): r
        for r in json.loads((project / "report.json").read_text())["rows"]
    }
    # The project's own C-API program passes like the built-in consumers, in both formats.
    for fmt in ("frozen", "saved_model"):
        assert rows[(fmt, "mine")]["status"] == "pass", rows[(fmt, "mine")]
        assert rows[(fmt, "python")]["status"] == "pass"
    # Only the formats a consumer declares get cells.
    assert ("saved_model", "garbage") not in rows
    build = rows[("frozen", "unbuildable")]
    assert build["status"] == "error" and "build failed" in build["message"]
    assert (
        "exited with status 3" in build["message"] and "cannot find -lservice" in build["message"]
    )
    absent = rows[("frozen", "absent")]
    assert absent["status"] == "error" and "no-such-program-tfinterop" in absent["message"]
    broken = rows[("frozen", "garbage")]
    assert broken["status"] == "error" and "broke the contract" in broken["message"]
    assert "not a contract record" in broken["message"]
    assert (project / "out" / "exports").is_dir()  # the configured build dir, relative to it


@pytest.mark.e2e
def test_command_line_overrides_the_project_and_env_says_where_from(
    project: Path, tmp_path: Path
) -> None:
    done = tfinterop(project, "env", "--json", "--build-dir", str(tmp_path / "elsewhere"))
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)["settings"]
    assert settings["build-dir"] == {
        "value": str(tmp_path / "elsewhere"), "from": "command line (--build-dir)",
    }  # fmt: skip
    where = f"{project / 'pyproject.toml'} [tool.tfinterop]"
    assert settings["fixtures"] == {"value": str(project / "models"), "from": f"{where} fixtures"}
    assert settings["default-consumers"]["from"] == f"{where} default-consumers"
    assert settings["default-consumers"]["value"].startswith("python, mine, unbuildable")
    assert settings["project-consumers"]["value"] == "mine, unbuildable, absent, garbage"
    assert settings["runtimes"]["from"] == "default"


def test_a_project_consumer_named_like_a_built_in_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tfinterop.toml").write_text('[consumer.c]\ncommand = "x"\n')
    done = tfinterop(tmp_path, "env")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("tfinterop: error: project consumer 'c':")
    assert len(done.stderr.strip().splitlines()) == 1


def test_tfinterop_build_stops_at_a_failing_project_build(project: Path) -> None:
    done = tfinterop(project, "build", "-c", "unbuildable")
    assert done.returncode == 3, done.stdout + done.stderr
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1 and "unbuildable consumer build failed" in line
    assert "`sh -c" in line and "cannot find -lservice" in line


def test_the_build_gets_what_this_machine_needs_and_the_run_finds_tensorflow(
    tmp_path: Path,
) -> None:
    from tfinterop.consumers.project import ProjectConsumer
    from tfinterop.paths import project_root
    from tfinterop.project import ConsumerSpec
    from tfinterop.tfenv import find_tensorflow

    spec = ConsumerSpec(
        "mine", ("bin/mine",), frozenset({"frozen"}), tmp_path,
        build=("sh", "-c", "env > seen.txt"),
    )  # fmt: skip
    consumer = ProjectConsumer.from_spec(spec)
    outcome = consumer.build(tmp_path / "build")
    assert outcome.built and outcome.path == str(tmp_path / "bin" / "mine")
    seen = dict(
        line.split("=", 1)
        for line in (tmp_path / "seen.txt").read_text().splitlines()
        if "=" in line
    )
    tf = find_tensorflow()
    assert seen["TFINTEROP_SOURCES"] == str(project_root())
    assert seen["TFINTEROP_TF_LIBRARY_DIR"] == tf.library_dir
    assert f"-L{tf.library_dir}" in seen["TFINTEROP_TF_LDFLAGS"]
    assert f"-I{tf.include_dir}" in seen["TFINTEROP_TF_CFLAGS"]
    config = Path(seen["TFINTEROP_CARGO_CONFIG"])
    assert config.is_file() and "rustc-link-lib" in config.read_text()
    library_path = consumer.process_environment()["LD_LIBRARY_PATH"]
    assert library_path.split(os.pathsep)[0] == tf.library_dir


def test_png_and_photo_input_exclude_each_other(tmp_path: Path) -> None:
    from tfinterop.consumers.project import ProjectConsumer
    from tfinterop.errors import UserError
    from tfinterop.project import ConsumerSpec

    spec = ConsumerSpec("both", ("x",), frozenset({"frozen", "png_input", "photo_input"}), tmp_path)
    with pytest.raises(UserError, match="png_input and photo_input exclude each other"):
        ProjectConsumer.from_spec(spec)
