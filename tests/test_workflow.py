"""The CI workflow: valid for GitHub (check-jsonschema's vendored workflow schema, offline),
running the README's commands, with a shard matrix that covers every shard once."""

from __future__ import annotations

import os
import re
import shlex
import shutil
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


def apt_packages(script: str) -> set[str]:
    """The packages every `apt-get install` in a shell script (or a job's commands) names."""
    packages = set()
    for line in script.splitlines():
        for part in re.split(r"&&|\|\||[();]", line):
            words = part.split()
            if words[:2] == ["apt-get", "install"]:
                packages |= {w for w in words[2:] if not w.startswith(("-", ">"))}
    return packages


def test_tests_job_installs_what_the_ci_entry_point_installs() -> None:
    """Under CI a test whose tool is missing fails instead of skipping (valgrind: the leak and
    callgrind tests; a compiler with ASan/UBSan: the fuzz replays; Chromium: the browser
    test), so the workflow's tests job installs every package .ci/run installs, and says
    CI=true itself rather than relying on the runner passing it into the container."""
    wanted = apt_packages((ROOT / ".ci" / "run").read_text())
    assert {"chromium", "valgrind", "clang"} <= wanted, wanted
    job = workflow()["jobs"]["tests"]
    installed = apt_packages("\n".join(run_commands(job)))
    assert wanted <= installed, f"the tests job does not install {sorted(wanted - installed)}"
    env = {**(workflow().get("env") or {}), **(job.get("env") or {})}
    assert str(env.get("CI")).lower() == "true", env


def test_ci_entry_point_runs_the_tests_with_ci_set() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^export CI=", script, re.M), "missing tools must fail the tests there too"
    assert script.index("export CI=") < script.index("nox -s tests")


def _pytest(nodes: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *nodes,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


NEEDS_TOOLS = [
    "tests/hardening/test_leaks.py::test_check_sees_a_leak",  # valgrind (2 cases)
    "tests/hardening/test_leaks.py::test_c_consumer_does_not_leak",  # valgrind
    "tests/bench/test_profile.py::test_profile_of_the_c_consumer_on_a_real_graph",  # valgrind
    "tests/hardening/test_fuzz_regressions.py::test_c_parser_unit_tests",  # cc
    "tests/hardening/test_fuzz_regressions.py::test_rust_parsers_and_regressions",  # cargo
]


@pytest.mark.parametrize("ci", [True, False])
def test_a_missing_tool_fails_under_ci_and_skips_elsewhere(ci: bool) -> None:
    """With only this Python's scripts on PATH (no valgrind, cc or cargo) the tests that need
    them fail under CI=true, and skip outside CI."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CC")}
    env["PATH"] = str(Path(sys.executable).parent)
    if ci:
        env["CI"] = "true"
    result = _pytest(NEEDS_TOOLS, env)
    output = result.stdout + result.stderr
    summary = output.strip().splitlines()[-1]
    if ci:
        assert result.returncode == 1 and "skipped" not in summary, output[-3000:]
        assert len(re.findall(r"^(?:FAILED|ERROR) ", output, re.M)) == 6, output[-3000:]
        for tool in ("valgrind", "no C compiler", "cargo"):
            assert tool in output, tool
        assert output.count("CI must install it") >= 6, output[-3000:]
    else:
        assert result.returncode == 0 and "6 skipped" in summary, output[-3000:]


@pytest.mark.parametrize("ci", [True, False])
def test_fuzz_replay_without_sanitizers_fails_under_ci_and_warns_elsewhere(
    ci: bool, tmp_path: Path
) -> None:
    """A compiler that cannot link ASan/UBSan (gcc without libasan) no longer degrades the
    replay silently: CI fails, elsewhere the plain build runs with a warning."""
    cc = shutil.which(os.environ.get("CC", "cc"))
    assert cc, "a C compiler (the README's requirements)"
    wrapper = tmp_path / "cc-without-sanitizers"
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in -fsanitize=*) echo "cannot find -lasan" >&2; exit 1;;'
        " esac; done\n"
        f'exec {shlex.quote(cc)} "$@"\n'
    )
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["CC"] = str(wrapper)
    if ci:
        env["CI"] = "true"
    result = _pytest(["tests/hardening/test_fuzz_regressions.py::test_c_parser_unit_tests"], env)
    output = result.stdout + result.stderr
    assert "cannot link ASan/UBSan (cannot find -lasan)" in output, output[-3000:]
    if ci:
        assert result.returncode == 1 and "1 failed" in output, output[-3000:]
    else:
        assert result.returncode == 0 and "1 passed" in output, output[-3000:]
        assert "replaying without sanitizers" in output


def test_compat_job_runs_an_older_runtime_beside_the_pinned_one() -> None:
    from tfinterop.runtimes import pinned_runtime

    job = workflow()["jobs"]["compat"]
    (command,) = [c for c in run_commands(job) if c.startswith("nox -s compat")]
    arguments = shlex.split(command)
    # noxfile: `nox -s compat -- ARGS` runs `tfinterop compat --model ... ARGS`
    args = cli.make_parser().parse_args(["compat", *arguments[arguments.index("--") + 1 :]])
    assert pinned_runtime() in args.runtimes
    older = [v for v in args.runtimes if v != pinned_runtime()]
    assert older, args.runtimes
    assert args.markdown and args.json
