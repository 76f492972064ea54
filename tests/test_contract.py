"""Every consumer speaks the same contract: same plan, same records, same exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tfinterop import consumers, tensors
from tfinterop.run import consumer_environment
from tfinterop.tfenv import DEFAULT_CONSUMER_ENV

ALL = [c.name for c in consumers.ALL_CONSUMERS if c.name in ("python", "rust", "c")]


def command(name: str, build_dir: Path) -> list[str]:
    consumer = consumers.by_name([name])[0]
    missing = consumer.missing(build_dir)
    if missing:
        pytest.fail(f"{name} consumer not built: {missing}")
    return consumer.command(build_dir)


def run(cmd: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=consumer_environment(DEFAULT_CONSUMER_ENV),
    )


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def linear(manifests):
    manifest = manifests["linear"]
    frozen = next(c for c in manifest.cases if c.format == "frozen")
    saved = next(c for c in manifest.cases if c.format == "saved_model")
    return manifest, frozen, saved


@pytest.mark.parametrize("name", ALL)
def test_version_record(name: str, build_dir: Path) -> None:
    result = run(command(name, build_dir), "--version")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["record"] == "consumer" and record["name"] == name
    assert record["contract"] == 1 and record["tf_version"] == "2.21.0"


@pytest.mark.parametrize("name", ALL)
def test_shorthand_runs_a_frozen_graph(name: str, build_dir: Path, linear, tmp_path: Path) -> None:
    manifest, frozen, _ = linear
    x, y = frozen.inputs[0], frozen.outputs[0]
    out = tmp_path / "y.npy"
    result = run(
        command(name, build_dir),
        "--model", str(manifest.directory / frozen.model), "--format", "frozen",
        "--input", f"{x.tensor}={manifest.directory / x.file}",
        "--output", f"y@{y.tensor}={out}", "--repeat", "2", "--results", str(tmp_path / "r.jsonl"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = next(r for r in records(tmp_path / "r.jsonl") if r["record"] == "job")
    assert job["status"] == "ok" and len(job["steady_s"]) == 2 and job["load_s"] >= 0
    assert job["outputs"][0]["dtype"] == "float32" and job["outputs"][0]["shape"] == y.shape
    expected = tensors.read_tensor(manifest.directory / y.file)
    assert np.array_equal(np.load(out), expected)


def plan_text(
    manifest, saved, out: Path, model: str | None = None, x_file: str | None = None
) -> str:
    x, y = saved.inputs[0], saved.outputs[0]
    return (
        "tfinterop-plan\t1\nthreads\t1\t1\n"
        f"job\tbroken\nmodel\t{model or manifest.directory / saved.model}\nformat\tsaved_model\n"
        f"tags\tserve\nsignature\tserving_default\n"
        f"input\tx\t{x.tensor}\t{x_file or manifest.directory / x.file}\n"
        f"output\ty\t{y.tensor}\t{out / 'broken.npy'}\nend\n"
        f"job\tgood\nmodel\t{manifest.directory / saved.model}\nformat\tsaved_model\n"
        f"tags\tserve\nsignature\tserving_default\n"
        f"input\tx\t{x.tensor}\t{manifest.directory / x.file}\n"
        f"output\ty\t{y.tensor}\t{out / 'y.npy'}\nwarmup\t1\nrepeat\t3\nend\n"
    )


@pytest.mark.parametrize("name", ALL)
def test_missing_model_fails_only_its_job(
    name: str, build_dir: Path, linear, tmp_path: Path
) -> None:
    manifest, _, saved = linear
    plan = tmp_path / "plan.tsv"
    plan.write_text(plan_text(manifest, saved, tmp_path, model=str(tmp_path / "no-such-model")))
    result = run(
        command(name, build_dir), "--plan", str(plan), "--results", str(tmp_path / "r.jsonl")
    )
    assert result.returncode == 1, result.stderr
    got = {r.get("id", r["record"]): r for r in records(tmp_path / "r.jsonl")}
    assert got["broken"]["status"] == "error" and got["broken"]["stage"] == "load"
    assert "no-such-model" in got["broken"]["error"]
    assert got["good"]["status"] == "ok" and len(got["good"]["steady_s"]) == 3
    assert got["done"]["jobs"] == 2 and got["done"]["failed"] == 1 and got["done"]["max_rss_kb"] > 0


@pytest.mark.parametrize("name", ALL)
def test_wrong_input_dtype_is_a_read_input_error(
    name: str, build_dir: Path, linear, tmp_path: Path
) -> None:
    manifest, _, saved = linear
    wrong = tmp_path / "x64.npy"
    np.save(wrong, np.arange(4, dtype=np.float64))
    plan = tmp_path / "plan.tsv"
    plan.write_text(plan_text(manifest, saved, tmp_path, x_file=str(wrong)))
    result = run(
        command(name, build_dir), "--plan", str(plan), "--results", str(tmp_path / "r.jsonl")
    )
    assert result.returncode == 1
    broken = next(r for r in records(tmp_path / "r.jsonl") if r.get("id") == "broken")
    assert (
        broken["stage"] == "read_input"
        and "float64" in broken["error"]
        and "float32" in broken["error"]
    )


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "text",
    [
        "not a plan\n",
        "tfinterop-plan\t1\nfrobnicate\tx\n",
        "tfinterop-plan\t1\njob\ta\nrepeat\t0\nend\n",
    ],
)
def test_unusable_plan_exits_2_with_one_line(
    name: str, text: str, build_dir: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.tsv"
    plan.write_text(text)
    result = run(
        command(name, build_dir), "--plan", str(plan), "--results", str(tmp_path / "r.jsonl")
    )
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines() if "tfinterop" in line or "plan" in line]
    assert ours, result.stderr
