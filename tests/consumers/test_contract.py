"""Every consumer speaks the same contract: same plan, same records, same exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfinterop import consumers, formats, tensors
from tfinterop.process import child_environment
from tfinterop.tfenv import DEFAULT_CONSUMER_ENV

# Every registered consumer that loads the TensorFlow formats these tests feed (the frozen
# graph and SavedModel of `linear`); a new consumer declaring them is tested here too.
ALL = [c.name for c in consumers.with_capability(consumers.FROZEN)]
# Consumers that are Python modules run by this interpreter: their timers can be slowed by
# patching the module in-process (``run_slowed``), with every format each loads.
IN_PROCESS = [
    (c.name, fmt)
    for c in consumers.ALL_CONSUMERS
    if c.command(Path("build"))[:2] == [sys.executable, "-m"]
    for fmt in formats.ALL
    if c.supports(fmt)
]


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
        env=child_environment(DEFAULT_CONSUMER_ENV),
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


# A consumer written in Python, run with part of its work slowed down by PATCH (Python code run
# before the consumer's module is imported; DELAY is the slowdown in seconds).
SLOWED = "import importlib, sys, time\nDELAY = {delay}\n{patch}\n"
SLOWED += "sys.exit(importlib.import_module({module!r}).main(sys.argv[1:]))\n"
DELAY_S = 0.5
# Their conversion of outputs to host arrays: tensors.from_tensorflow.
SLOW_CONVERSION = """
from tfinterop import tensors
convert = tensors.from_tensorflow
def slow(value):
    time.sleep(DELAY)
    return convert(value)
tensors.from_tensorflow = slow
"""
# The TFLite interpreter's copy of a feed into its input buffer (SetTensor of its wrapper).
SLOW_TFLITE_FEED = """
from tfinterop.consumers.runners.tflite_runner import _interpreter_class
interpreter_class = _interpreter_class()[0]
init = interpreter_class.__init__
class SlowFeeds:
    def __init__(self, wrapped):
        self.wrapped = wrapped
    def __getattr__(self, name):
        return getattr(self.wrapped, name)
    def SetTensor(self, *args):
        time.sleep(DELAY)
        return self.wrapped.SetTensor(*args)
def slowed_init(self, *args, **kwargs):
    init(self, *args, **kwargs)
    self._interpreter = SlowFeeds(self._interpreter)
interpreter_class.__init__ = slowed_init
"""


def run_slowed(patch: str, name: str, manifest, case, tmp_path: Path) -> dict:
    """The job record of one run of `case` by consumer `name` (python or tflite), slowed."""
    x, y = case.inputs[0], case.outputs[0]
    module = consumers.by_name([name])[0].command(Path("build"))[-1]  # `python -m MODULE`
    result = run(
        [sys.executable, "-c", SLOWED.format(delay=DELAY_S, patch=patch, module=module)],
        "--model", str(manifest.directory / case.model), "--format", case.format,
        "--input", f"{x.key}@{x.tensor}={manifest.directory / x.file}",
        "--output", f"{y.key}@{y.tensor}={tmp_path / 'y.npy'}", "--warmup", "1", "--repeat", "3",
        "--results", str(tmp_path / "r.jsonl"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = next(r for r in records(tmp_path / "r.jsonl") if r["record"] == "job")
    assert job["status"] == "ok", job
    expected = tensors.read_tensor(manifest.directory / y.file)
    assert np.allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-5, atol=1e-6)
    return job


@pytest.mark.parametrize(("name", "fmt"), IN_PROCESS)
def test_run_timers_exclude_output_conversion(name: str, fmt: str, linear, tmp_path: Path) -> None:
    manifest = linear[0]
    case = next(c for c in manifest.cases if c.format == fmt)
    job = run_slowed(SLOW_CONVERSION, name, manifest, case, tmp_path)
    # linear runs in microseconds: a timer near the injected delay timed the conversion.
    timed = [job["first_run_s"], *job["steady_s"]]
    assert max(timed) < DELAY_S / 2, timed
    # The conversion is still done (the outputs were written) and reported on its own.
    assert job["convert_s"] >= DELAY_S


def test_tflite_run_timers_exclude_setting_the_inputs(linear, tmp_path: Path) -> None:
    manifest = linear[0]
    case = next(c for c in manifest.cases if c.format == formats.TFLITE)
    (tflite,) = consumers.with_capability(consumers.TFLITE)
    job = run_slowed(SLOW_TFLITE_FEED, tflite.name, manifest, case, tmp_path)
    timed = [job["first_run_s"], *job["steady_s"]]
    assert max(timed) < DELAY_S / 2, timed


def test_python_steady_run_does_not_copy_its_feed(tmp_path: Path) -> None:
    """y = Shape(x) reads none of a 32 MiB x: a steady run costs far less than copying x unless
    the consumer's run converts or copies the feed (TensorFlow copies a numpy buffer it cannot
    adopt, i.e. one not aligned for Eigen, on every Session run)."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    graph.versions.producer = 1882
    x_node = graph.node.add(name="x", op="Placeholder")
    x_node.attr["dtype"].type = types_pb2.DT_FLOAT
    x_node.attr["shape"].shape.unknown_rank = True
    y_node = graph.node.add(name="y", op="Shape", input=["x"])
    y_node.attr["T"].type = types_pb2.DT_FLOAT
    y_node.attr["out_type"].type = types_pb2.DT_INT32
    (tmp_path / "shape.pb").write_bytes(graph.SerializeToString())
    x = np.ones(8 * 2**20, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    copies = []
    for _ in range(7):
        started = time.perf_counter()
        x.copy()
        copies.append(time.perf_counter() - started)
    result = run(
        [sys.executable, "-m", "tfinterop.consumers.runners.python_runner"],
        "--model", str(tmp_path / "shape.pb"), "--format", "frozen",
        "--input", f"x:0={tmp_path / 'x.npy'}", "--output", f"y@y:0={tmp_path / 'y.npy'}",
        "--warmup", "2", "--repeat", "15", "--results", str(tmp_path / "r.jsonl"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = next(r for r in records(tmp_path / "r.jsonl") if r["record"] == "job")
    assert np.load(tmp_path / "y.npy").tolist() == [x.size]
    steady_p50, copy_p50 = float(np.median(job["steady_s"])), float(np.median(copies))
    assert steady_p50 < copy_p50 / 4, (steady_p50, copy_p50)


# Input shapes: the graph's rank and every dimension it knows must match the file's; a dimension
# it leaves unknown (a dynamic batch) may be anything. Checked in every consumer that loads the
# format, not by language (issue 11 item 13: Rust compared element counts only, and nothing when
# a dimension was unknown). TensorFlow itself would run both wrong feeds below: linear is
# elementwise and image_layout reshapes before its matmul.
SHAPE_CELLS = [
    (fmt, c.name)
    for fmt in (consumers.FROZEN, consumers.SAVED_MODEL)
    for c in consumers.ALL_CONSUMERS
    if c.supports(fmt)
]


@pytest.fixture(scope="module")
def shape_fixtures(project_fixtures, export_manifests):
    return export_manifests(["linear", "image_layout"])


def run_with_input_shape(
    name: str, fmt: str, manifest, shape: tuple[int, ...], build_dir: Path, tmp_path: Path
) -> dict:
    """The job record of `name` running the manifest's first `fmt` case on zeros of `shape`."""
    case = next(c for c in manifest.cases if c.format == fmt)
    x, y = case.inputs[0], case.outputs[0]
    np.save(tmp_path / "x.npy", np.zeros(shape, dtype=np.float32))
    saved = f"tags\t{','.join(case.tags) or 'serve'}\nsignature\t{case.signature}\n"
    plan = tmp_path / "plan.tsv"
    plan.write_text(
        f"tfinterop-plan\t1\njob\tshape\nmodel\t{manifest.directory / case.model}\nformat\t{fmt}\n"
        + (saved if fmt == consumers.SAVED_MODEL else "")
        + f"input\t{x.key}\t{x.tensor}\t{tmp_path / 'x.npy'}\n"
        f"output\t{y.key}\t{y.tensor}\t{tmp_path / 'y.npy'}\nend\n"
    )
    result = run(
        command(name, build_dir), "--plan", str(plan), "--results", str(tmp_path / "r.jsonl")
    )
    job = next(r for r in records(tmp_path / "r.jsonl") if r.get("id") == "shape")
    assert result.returncode == (0 if job["status"] == "ok" else 1), result.stderr
    return job


@pytest.mark.parametrize(("fmt", "name"), SHAPE_CELLS)
@pytest.mark.parametrize(
    ("fixture", "shape"),
    [
        ("linear", (8, 8)),  # graph [?]: rank 2 instead of 1, same element count as the data
        ("image_layout", (1, 40, 24, 3)),  # graph [1, 24, 40, 3]: H and W swapped, same count
    ],
)
def test_input_of_wrong_rank_or_known_dimension_fails(
    name: str, fmt: str, fixture: str, shape: tuple[int, ...], shape_fixtures, build_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    job = run_with_input_shape(name, fmt, shape_fixtures[fixture], shape, build_dir, tmp_path)
    assert job["status"] == "error", job
    # Before running: consumers that check shapes themselves say so at read_input naming both
    # shapes; the Python consumer leaves it to TensorFlow's feed check, which names them too.
    assert job["stage"] in ("read_input", "run"), job
    assert str(list(shape)).strip("[]") in job["error"] or str(shape) in job["error"], job


@pytest.mark.parametrize(("fmt", "name"), SHAPE_CELLS)
def test_input_differing_only_in_an_unknown_dimension_runs(
    name: str, fmt: str, shape_fixtures, build_dir: Path, tmp_path: Path
) -> None:
    job = run_with_input_shape(name, fmt, shape_fixtures["linear"], (10,), build_dir, tmp_path)
    assert job["status"] == "ok", job
    assert job["outputs"][0]["shape"] == [10]
