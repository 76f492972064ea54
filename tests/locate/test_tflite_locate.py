"""``tfinterop locate --format tflite`` (python/tfinterop/locate/tflite.py): the interpreter's
tensors mapped onto the frozen graph's nodes, a planted divergence found exactly (cumulative
and isolated), MobileNetV3's real TFLite drift located, the ``#N`` outputs of the contract."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from tfinterop.consumers import (
    FETCHES_TFLITE_TENSORS,
    TFLITE,
    by_name,
    first_with,
    with_capability,
)
from tfinterop.consumers import REFERENCE as REFERENCE_CAPABILITY
from tfinterop.contract import plan as plan_format
from tfinterop.fixtures import Tolerance
from tfinterop.locate import LocateSettings
from tfinterop.locate.html import render_html
from tfinterop.locate.result import CARRIES_UPSTREAM, COMPUTES_DIFFERENTLY, summary_lines
from tfinterop.locate.tflite import _gap, _named_nodes, locate_tflite, read_tflite, tflite_case
from tfinterop.pipeline.cases import cases_from_manifest
from tfinterop.pipeline.run import run_consumer
from tfinterop.pipeline.settings import RunSettings


@pytest.fixture(scope="module")
def linear_frozen(project_fixtures, export_manifests):
    manifest = export_manifests(["linear"])["linear"]
    return next(
        r
        for r in cases_from_manifest(project_fixtures["linear"], manifest)
        if r.case.format == "frozen"
    )


def test_names_map_to_the_fused_nodes_a_trailing_number_dropped() -> None:
    fetchable = {"m/conv/BiasAdd", "m/conv/Conv2D", "m/bn/add_1", "m/conv_2/convolution"}
    assert _named_nodes("m/bn/add_1;m/conv/Conv2D;m/bn/sub1;;m/conv/BiasAdd", fetchable) == [
        "m/bn/add_1", "m/conv/Conv2D", "m/conv/BiasAdd",
    ]  # fmt: skip
    # MLIR's uniquifier ("convolution1") and a tensor suffix are not part of the node name.
    assert _named_nodes("m/conv_2/convolution1", fetchable) == ["m/conv_2/convolution"]
    assert _named_nodes("m/conv/Conv2D:0", fetchable) == ["m/conv/Conv2D"]
    assert _named_nodes("StatefulPartitionedCall:0", fetchable) == []


def test_the_value_gap_tells_drift_from_another_tensor() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1000) * 100).astype(np.float32)
    drifted = x * np.float32(1 + 3e-7)
    assert _gap(drifted, x) < 1e-6
    # a*x against a*x + b on a wide range: max |diff| / scale is small, the median is not.
    assert _gap(x * 2, x * 2 + 1.5) > 1e-3
    assert _gap(x, x.reshape(10, 100)) == float("inf")


def test_the_tflite_consumer_writes_any_interpreter_tensor_by_index(
    linear_frozen, build_dir: Path, tmp_path: Path
) -> None:
    """Contract: an output ``#N`` of a tflite job is the interpreter's tensor N (capability
    fetches_tflite_tensors); a malformed or out-of-range index fails the job at resolve."""
    (consumer,) = with_capability(FETCHES_TFLITE_TENSORS)
    assert consumer.supports(TFLITE)
    case = tflite_case(
        LocateSettings(RunSettings(build_dir=build_dir), linear_frozen, consumer, [], Tolerance(0, 0), tmp_path)
    )  # fmt: skip
    model = read_tflite(linear_frozen.directory / case.model)
    (mul,) = [t for t in model.produced if t.op == "MUL"]
    inputs = [
        plan_format.PlanTensor(e.key, e.tensor, str(linear_frozen.directory / e.file))
        for e in case.inputs
    ]
    plan = plan_format.Plan()
    for job_id, tensor in (("ok", f"#{mul.index}"), ("bad", "#x"), ("far", "#999")):
        plan.jobs.append(plan_format.Job(job_id, str(linear_frozen.directory / case.model),
                                         TFLITE, inputs=inputs, outputs=[
            plan_format.PlanTensor("t", tensor, str(tmp_path / f"{job_id}.npy"))
        ]))  # fmt: skip
    run = run_consumer(consumer, plan, tmp_path, build_dir, timeout_s=300, environment={})
    assert run.jobs["ok"].ok, run.jobs["ok"].failure_text()
    x = np.load(linear_frozen.directory / case.inputs[0].file)
    a = float(np.load(tmp_path / "ok.npy")[2] / x[2])  # x[2] == 1.0: the multiply's constant
    np.testing.assert_array_equal(np.load(tmp_path / "ok.npy"), np.float32(a) * x)
    for job_id in ("bad", "far"):
        assert run.jobs[job_id].stage == "resolve", run.jobs[job_id]


def planted_tflite(source: Path, out: Path) -> Path:
    """``source`` with its MUL's constant moved 4 ulps: that op alone computes differently."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(source.read_bytes()))
    graph = model.subgraphs[0]
    (mul,) = [op for op in graph.operators
              if flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) == "MUL"]  # fmt: skip
    (constant,) = [i for i in mul.inputs if model.buffers[graph.tensors[i].buffer].data is not None]
    buffer = model.buffers[graph.tensors[constant].buffer]
    value = np.frombuffer(bytes(buffer.data), np.float32).copy()
    for _ in range(4):
        value = np.nextafter(value, np.float32(np.inf))
    buffer.data = np.frombuffer(value.tobytes(), np.uint8)
    out.write_bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    return out


def test_a_planted_tflite_divergence_is_located_exactly(
    linear_frozen, build_dir: Path, tmp_path: Path
) -> None:
    """linear's .tflite with its multiply's constant nudged: the first divergence is the
    MUL (mapped to TF's mul), which computes differently alone; the ADD after it only
    carries the difference; the mapping is complete and confirmed by value."""
    (consumer,) = by_name(["tflite"])
    settings = LocateSettings(
        run=RunSettings(build_dir=build_dir, repeat=1), ref=linear_frozen,
        reference=first_with(REFERENCE_CAPABILITY), consumers=[consumer],
        tolerance=Tolerance(atol=0.0, rtol=0.0), work_dir=tmp_path / "locate", isolate=2,
        cell_format=TFLITE,
    )  # fmt: skip
    case = tflite_case(settings)
    planted = planted_tflite(linear_frozen.directory / case.model, tmp_path / "planted.tflite")
    result = locate_tflite(settings, dataclasses.replace(case, model=str(planted)))
    (location,) = result.locations
    assert location.status == "diverges", location.message
    first = location.first_divergence
    assert first is not None and (first.node, first.consumer_op) == ("mul", "MUL"), first
    assert location.mapping["mapped"] == location.mapping["tensors"] == 2, location.mapping
    assert not location.mapping["unconfirmed"] and not location.mapping["ambiguous"]
    verdicts = {i.node: (i.consumer_op, i.verdict) for i in location.isolated}
    assert verdicts["mul"] == ("MUL", COMPUTES_DIFFERENTLY), verdicts
    (downstream,) = [v for node, v in verdicts.items() if node != "mul"]
    assert downstream == ("ADD", CARRIES_UPSTREAM), verdicts
    doc = result.as_dict()["consumers"]["tflite"]
    assert doc["first_divergence"]["node"] == "mul" and doc["first_divergence"]["consumer_op"]
    assert doc["mapping"]["mapped"] == 2
    assert any("first divergence at mul (Mul" in line for line in summary_lines(result))
    assert "MUL" in render_html(result)
    # Unplanted, every tensor is bit-identical (linear's rule is exact).
    clean = locate_tflite(dataclasses.replace(settings, work_dir=tmp_path / "clean"), case)
    assert clean.locations[0].status == "agrees", summary_lines(clean)


def test_mobilenet_v3_tflite_drift_is_located(
    build_dir: Path, tmp_path: Path, run_cli, manifests
) -> None:
    """The real case (issue 17): MobileNetV3's .tflite against TensorFlow, exact rule. Every
    interpreter tensor maps onto the frozen graph; the rescaling ops agree bit for bit and the
    first fused convolution (CONV_2D = conv + BatchNorm, mapped to the BatchNorm's add_1) is
    where the numbers first move: its op alone computes differently."""
    report = tmp_path / "locate.json"
    result = run_cli(
        "locate", "-f", "mobilenet_v3", "--format", "tflite", "--atol", "0", "--rtol", "0",
        "--isolate", "1", "--build-dir", str(build_dir), "--no-build", "--json", str(report),
        "--html", str(tmp_path / "locate.html"),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # it diverges
    found = json.loads(report.read_text())["consumers"]["tflite"]
    mapping = found["mapping"]
    assert mapping["mapped"] >= 0.95 * mapping["tensors"] and not mapping["unconfirmed"], mapping
    first = found["first_divergence"]
    assert first["node"] == "MobileNetV3Large_1/conv_bn_1/batchnorm/add_1", first
    assert first["consumer_op"] == "CONV_2D" and 0 < first["max_abs"] < 1e-4, first
    agreeing = [t["node"] for t in found["tensors"] if t["passed"]]
    assert {"MobileNetV3Large_1/rescaling_1/mul", "MobileNetV3Large_1/rescaling_1/add"} <= set(
        agreeing
    )
    (isolated,) = found["isolated"]
    assert isolated["consumer_op"] == "CONV_2D" and isolated["verdict"] == COMPUTES_DIFFERENTLY
    assert "identical with and without every tensor kept" in found["fetch_effect"]
    assert (
        "CONV_2D" in result.stdout
        and "<h2>tflite: diverges</h2>" in (tmp_path / "locate.html").read_text()
    )


def test_reduce_refuses_a_tflite_cell_in_one_line(build_dir: Path, run_cli, manifests) -> None:
    result = run_cli(
        "reduce", "-f", "linear", "--format", "tflite", "--build-dir", str(build_dir),
        "--no-build",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "a tflite divergence is located" in lines[0], result.stderr
