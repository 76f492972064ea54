"""The CI workflow: valid for GitHub (check-jsonschema's vendored workflow schema, offline),
running the README's commands, with a shard matrix that covers every shard once."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tfinterop import cli

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "interop.yml"
yaml = pytest.importorskip("ruamel.yaml")  # check-jsonschema's own YAML parser


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def readme_commands() -> list[str]:
    """The quick start's commands: `pip install 'nox[uv]'`, `nox -s interop`, `nox -s tests`."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", text, re.S)
    assert block, "README has a Quick start sh block"
    commands = []
    for line in block.group(1).splitlines():
        for part in line.split("#")[0].split("&&"):
            if part.strip():
                commands.append(" ".join(shlex.split(part)))
    return list(dict.fromkeys(commands))


def workflow() -> dict:
    return yaml.YAML(typ="safe").load(WORKFLOW.read_text())


def run_commands(job: dict) -> list[str]:
    """Every shell command of a job's `run:` steps (lines and `&&`/`||` parts)."""
    commands = []
    for step in job["steps"]:
        for line in str(step.get("run", "")).splitlines():
            for part in re.split(r"&&|\|\||[()]", line):
                if part.strip():
                    commands.append(part.strip())
    return commands


def test_workflow_passes_the_github_workflow_schema() -> None:
    result = lint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "runs_on:", 1))
    result = lint(broken)
    assert result.returncode != 0 and "runs-on" in result.stdout + result.stderr


def test_workflow_runs_the_readme_commands() -> None:
    readme = readme_commands()
    assert readme == ["pip install nox[uv]", "nox -s interop", "nox -s tests"], readme
    # Beyond the quick start, a job may run any other session the README documents (fuzz).
    documented = set(readme) | {
        f"nox -s {name}" for name in re.findall(r"`nox -s (\w+)", (ROOT / "README.md").read_text())
    }
    jobs = workflow()["jobs"]
    nox_runs, pip_runs = [], []
    for job in jobs.values():
        for command in run_commands(job):
            words = shlex.split(command)
            if words[0] == "nox":
                head = " ".join(words[: words.index("--")] if "--" in words else words)
                assert head in documented, f"{command!r} is not a session the README documents"
                nox_runs.append(head)
            elif words[:2] == ["pip", "install"]:
                pip_runs.append(" ".join(words))
    assert {c for c in readme if c.startswith("nox")} <= set(nox_runs)
    assert set(pip_runs) == {c for c in readme if c.startswith("pip")}


def test_interop_matrix_covers_every_shard_and_its_arguments_parse() -> None:
    job = workflow()["jobs"]["interop"]
    shards = job["strategy"]["matrix"]["shard"]
    (command,) = [c for c in run_commands(job) if c.startswith("nox -s interop")]
    count = re.search(r"--shard \$\{\{ matrix\.shard \}\}/(\d+)", command)
    assert count, command
    assert sorted(shards) == list(range(1, int(count.group(1)) + 1))
    for shard in shards:
        arguments = shlex.split(command.replace("${{ matrix.shard }}", str(shard)))
        # noxfile: `nox -s interop -- ARGS` runs `tfinterop interop ARGS`
        args = cli.make_parser().parse_args(["interop", *arguments[arguments.index("--") + 1 :]])
        assert args.shard == (shard, int(count.group(1)))
        assert args.html and args.junit  # the reports the artifacts step uploads
        uploaded = [
            s["with"]["path"] for s in job["steps"] if "upload-artifact" in str(s.get("uses"))
        ]
        assert uploaded and all(str(args.html).startswith(p) for p in uploaded)


def test_ci_entry_point_installs_chromium_for_the_browser_test() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "command -v chromium" in script and "apt-get install" in script
    assert "nox -s tests" in script
