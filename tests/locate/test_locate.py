"""`tfinterop locate` (python/tfinterop/locate/): a planted divergence is found exactly, in
the cumulative and the isolated pass; consumers that agree say so; bad requests are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfinterop.consumers import FETCHES_TENSORS, FROZEN, by_name, first_with
from tfinterop.consumers import REFERENCE as REFERENCE_CAPABILITY
from tfinterop.fixtures import Tolerance
from tfinterop.locate import LocateSettings, locate
from tfinterop.locate.graph import read_graph, spread
from tfinterop.locate.html import render_html
from tfinterop.locate.result import CARRIES_UPSTREAM, COMPUTES_DIFFERENTLY, summary_lines
from tfinterop.pipeline.cases import cases_from_manifest
from tfinterop.pipeline.settings import RunSettings


@pytest.fixture(scope="module")
def frozen_cells(project_fixtures, export_manifests):
    manifests = export_manifests(["serving_pipeline", "control_flow"])
    return {
        name: next(
            r
            for r in cases_from_manifest(project_fixtures[name], manifests[name])
            if r.case.format == "frozen"
        )
        for name in manifests
    }


def chain_node(ref) -> tuple[str, str]:
    """A node with a fetchable node before and after it: (it, the next one downstream)."""
    graph = read_graph(ref.directory / ref.case.model)
    users = {n.name: [m for m in graph.nodes if any(i.startswith(f"{n.name}:") for i in m.inputs)]
             for n in graph.nodes}  # fmt: skip
    for node in graph.nodes[1:]:
        if node.outputs[0][1] == "float32" and users[node.name]:
            return node.name, users[node.name][0].name
    raise AssertionError("no chain of two float nodes")


def test_a_planted_divergence_is_located_exactly(
    frozen_cells, fake_consumer, build_dir: Path, tmp_path: Path
) -> None:
    ref = frozen_cells["serving_pipeline"]
    planted, downstream = chain_node(ref)
    fake = fake_consumer("planted", frozenset({FROZEN, FETCHES_TENSORS}), f"perturb_node={planted}")
    settings = LocateSettings(
        run=RunSettings(build_dir=build_dir, repeat=1),
        ref=ref,
        reference=first_with(REFERENCE_CAPABILITY),
        consumers=[fake],
        tolerance=Tolerance(atol=1e-5, rtol=1e-5),
        work_dir=tmp_path,
        isolate=2,
    )
    result = locate(settings)
    (location,) = result.locations
    assert location.status == "diverges", location.message
    first = location.first_divergence
    assert first is not None and first.node == planted, first
    # Nothing upstream of the planted node diverges; the node itself computes differently,
    # the next one only carries the difference.
    assert all(t.passed for t in location.tensors if t.index < first.index)
    verdicts = {i.node: i.verdict for i in location.isolated}
    assert verdicts[planted] == COMPUTES_DIFFERENTLY, verdicts
    if downstream in verdicts:
        assert verdicts[downstream] == CARRIES_UPSTREAM, verdicts
    assert result.as_dict()["consumers"]["planted"]["first_divergence"]["node"] == planted
    assert any(f"first divergence at {planted}" in line for line in summary_lines(result))
    page = render_html(result)
    assert planted in page and COMPUTES_DIFFERENTLY in page
    assert "data:image/svg+xml;base64," in page and "http" not in page.split("<body>")[1]


def test_native_consumers_agree_on_a_frozen_cell_and_say_so(
    build_dir: Path, tmp_path: Path, run_cli, manifests
) -> None:
    report = tmp_path / "locate.json"
    result = run_cli(
        "locate", "-f", "linear", "--format", "frozen", "--build-dir", str(build_dir),
        "--no-build", "--json", str(report), "--html", str(tmp_path / "locate.html"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(report.read_text())
    located = {c.name for c in by_name(None) if c.supports(FETCHES_TENSORS)}
    located.discard(first_with(REFERENCE_CAPABILITY).name)
    assert set(doc["consumers"]) == located
    for name, location in doc["consumers"].items():
        assert location["status"] == "agrees" and location["first_divergence"] is None, name
        assert location["tensors"] and "identical with and without" in location["fetch_effect"]
    assert "every tensor agrees" in result.stdout
    page = (tmp_path / "locate.html").read_text()
    assert all(f"<h2>{name}: agrees</h2>" in page for name in located)


def lowered_cond(path: Path) -> Path:
    """x, p -> Switch -> (Neg | Abs) -> Merge -> out: a v1 conditional as frozen graphs keep it."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    for name, dtype in (("x", types_pb2.DT_FLOAT), ("p", types_pb2.DT_BOOL)):
        graph.node.add(name=name, op="Placeholder").attr["dtype"].type = dtype
    nodes = [
        ("s", "Switch", ["x", "p"]), ("neg", "Neg", ["s:0"]), ("abs", "Abs", ["s:1"]),
        ("m", "Merge", ["neg", "abs"]), ("out", "Identity", ["m"]),
    ]  # fmt: skip
    for name, op, inputs in nodes:
        node = graph.node.add(name=name, op=op, input=inputs)
        node.attr["T"].type = types_pb2.DT_FLOAT
    graph.node[-2].attr["N"].i = 2
    path.write_bytes(graph.SerializeToString())
    return path


def test_branches_are_left_out_and_the_order_is_topological(tmp_path: Path) -> None:
    graph = read_graph(lowered_cond(tmp_path / "cond.pb"))
    assert set(graph.left_out) == {"s", "neg", "abs"}, graph.left_out
    assert [n.name for n in graph.nodes] == ["m", "out"]
    assert [t for n in graph.nodes for t, _ in n.outputs] == ["m:0", "m:1", "out:0"]
    assert graph.by_name["m"].index < graph.by_name["out"].index


def test_large_graphs_are_spread_evenly(frozen_cells) -> None:
    ref = frozen_cells["serving_pipeline"]
    graph = read_graph(ref.directory / ref.case.model)
    sample = spread(graph.nodes, 3)
    assert len(graph.nodes) > 3 and len(sample) == 3
    assert sample[0] is graph.nodes[0] and sample[-1] is graph.nodes[-1]
    assert [n.index for n in graph.nodes] == sorted(n.index for n in graph.nodes)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--format", "tflite", "-c", "c"],
            "c cannot be located: no capability fetches_tflite_tensors",
        ),
        (["--format", "frozen", "-c", "tflite"], "tflite cannot be located: no capability"),
        (
            ["--format", "saved_model", "--signature", "serving_defalt"],
            "did you mean serving_default",
        ),
        (["--format", "frozen", "--node", "no_such_node"], "--node no_such_node: not a node of"),
    ],
)
def test_requests_locate_cannot_serve_are_one_line(
    arguments: list[str], message: str, build_dir: Path, run_cli, manifests
) -> None:
    result = run_cli(
        "locate", "-f", "linear", *arguments, "--build-dir", str(build_dir), "--no-build"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_reduce_writes_the_planted_node_alone_with_the_references_values(
    frozen_cells, fake_consumer, build_dir: Path, tmp_path: Path
) -> None:
    import numpy as np
    from tensorflow.core.framework import graph_pb2

    from tfinterop.locate.reduce import reduce_location

    ref = frozen_cells["serving_pipeline"]
    planted, _ = chain_node(ref)
    fake = fake_consumer("planted", frozenset({FROZEN, FETCHES_TENSORS}), f"perturb_node={planted}")
    settings = LocateSettings(
        run=RunSettings(build_dir=build_dir, repeat=1), ref=ref,
        reference=first_with(REFERENCE_CAPABILITY), consumers=[fake],
        tolerance=Tolerance(atol=1e-5, rtol=1e-5), work_dir=tmp_path / "locate", isolate=1,
    )  # fmt: skip
    (location,) = locate(settings).locations
    # The check that confirms a repro runs registered consumers; this one is a test double,
    # so only the repro's content is checked here (the real case: the next test).
    repro = reduce_location(
        ref.directory / ref.case.model, location, tmp_path / "repro", ["-c", "c"]
    )
    graph = graph_pb2.GraphDef()
    graph.ParseFromString((tmp_path / "repro" / "model.pb").read_bytes())
    assert repro.node == planted and planted in {n.name for n in graph.node}
    assert len(graph.node) <= 6, [n.name for n in graph.node]
    with np.load(tmp_path / "repro" / "reference.npz") as expected:
        assert list(expected) == [f"{planted}:0"]
    assert "tfinterop check" in (tmp_path / "repro" / "README.md").read_text()


def test_reduce_of_a_real_divergence_writes_a_repro_that_fails_on_its_own(
    build_dir: Path, tmp_path: Path, run_cli, manifests
) -> None:
    """MobileNetV3 with oneDNN on in the C consumer against the reference with it off: the
    first depthwise convolution computes differently by itself."""
    report = tmp_path / "reduce.json"
    result = run_cli(
        "reduce", "-f", "mobilenet_v3", "--format", "frozen", "-c", "c", "--onednn", "1",
        "--atol", "0", "--rtol", "1e-7", "--build-dir", str(build_dir), "--no-build",
        "--out", str(tmp_path / "repro"), "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    repro = json.loads(report.read_text())["repro"]
    assert repro["reproduces"] and repro["op"] == "DepthwiseConv2dNative", repro
    assert repro["graph_nodes"] <= 5 and "the repro fails on its own" in result.stdout
    first = json.loads(report.read_text())["consumers"]["c"]["first_divergence"]
    assert first["node"] == repro["node"]


def test_a_runtime_skew_is_located_and_reduced(build_dir: Path, tmp_path: Path, run_cli) -> None:
    """pow_module on TensorFlow 2.12.0's C API against the pinned reference: the Pow kernel
    itself computes differently (2 of 16 elements, ulps apart), found in C and Rust alike,
    and the 3-node repro fails on its own with the same runtime."""
    from tfinterop.runtimes import pinned_runtime

    report = tmp_path / "locate.json"
    result = run_cli(
        "locate", "-f", "pow_module", "--format", "frozen", "-c", "c", "-c", "rust",
        "--runtime", "2.12.0", "--atol", "0", "--rtol", "0", "--build-dir", str(build_dir),
        "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr  # it diverges
    consumers = json.loads(report.read_text())["consumers"]
    assert set(consumers) == {"c@2.12.0", "rust@2.12.0"}
    for found in consumers.values():
        assert (found["first_divergence"]["node"], found["first_divergence"]["op"]) == (
            "pow", "Pow",
        )  # fmt: skip
    same = run_cli(
        "locate", "-f", "pow_module", "--format", "frozen", "-c", "c",
        "--runtime", pinned_runtime(), "--atol", "0", "--rtol", "0",
        "--build-dir", str(build_dir), "--json", str(tmp_path / "pinned.json"),
    )  # fmt: skip
    assert same.returncode == 0, same.stdout  # the pinned runtime agrees everywhere
    reduced = run_cli(
        "reduce", "-f", "pow_module", "--format", "frozen", "-c", "c", "--runtime", "2.12.0",
        "--atol", "0", "--rtol", "0", "--build-dir", str(build_dir), "--no-build",
        "--out", str(tmp_path / "repro"), "--json", str(tmp_path / "reduce.json"),
    )  # fmt: skip
    assert reduced.returncode == 0, reduced.stdout + reduced.stderr
    repro = json.loads((tmp_path / "reduce.json").read_text())["repro"]
    assert repro["reproduces"] and repro["op"] == "Pow" and repro["graph_nodes"] <= 5
    assert "--runtime 2.12.0" in " ".join(repro["command"])
