"""`tfinterop reduce --fail-regex` (python/tfinterop/locate/failing.py, ddmin.py) and
`tfinterop locate MODEL` (locate/model.py): delta debugging finds a 1-minimal failing set;
a candidate subgraph cuts what the reference fetched and keeps what it could not; real
failures of TensorFlow 2.12.0's C API reduce to the op that causes them, and the repro fails
on its own; any model is located as `check` takes it; bad requests are one line."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from tfinterop import tensors
from tfinterop.locate.ddmin import Budget, ddmin

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-inputs.md"
OLD = "2.12.0"
TOP_K = "incompatible with expected int64"


# --------------------------------------------------------------------------- ddmin


def test_ddmin_finds_a_one_minimal_subset_and_stops_at_the_budget() -> None:
    needed = {5, 6, 31}
    calls: list[list[int]] = []

    def fails(subset: list[int]) -> bool:
        calls.append(subset)
        return needed <= set(subset)

    found, finished = ddmin(list(range(40)), fails)
    assert sorted(found) == sorted(needed) and finished
    assert len(calls) <= 62, len(calls)  # measured: 62 (uncached; reduce caches by subgraph)
    for item in found:  # 1-minimal: without any one of them it passes
        assert not fails([x for x in found if x != item])

    def budget(subset: list[int]) -> bool:
        if len(calls) >= 10:
            raise Budget
        return fails(subset)

    calls.clear()
    partial, finished = ddmin(list(range(40)), budget)
    assert not finished and needed <= set(partial) and len(partial) < 40


# ------------------------------------------------------------------ subgraphs (no runs)


def _graph(path: Path) -> Path:
    """x -> a (Neg) -> b (Abs, control input ^c0) -> out (Identity), with k (Const) added to
    b, and a lowered conditional s (Switch) -> n (Neg) -> m (Merge) feeding c (AddV2)."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    for name, dtype in (("x", types_pb2.DT_FLOAT), ("p", types_pb2.DT_BOOL)):
        node = graph.node.add(name=name, op="Placeholder")
        node.attr["dtype"].type = dtype
    k = graph.node.add(name="k", op="Const")
    k.attr["dtype"].type = types_pb2.DT_FLOAT
    k.attr["value"].tensor.dtype = types_pb2.DT_FLOAT
    k.attr["value"].tensor.float_val.append(2.0)
    graph.node.add(name="c0", op="NoOp")
    for name, op, inputs in (
        ("a", "Neg", ["x"]), ("b", "AddV2", ["a", "k", "^c0"]), ("out", "Identity", ["b"]),
        ("s", "Switch", ["b", "p"]), ("n", "Neg", ["s:1"]), ("m", "Merge", ["s", "n"]),
        ("c", "AddV2", ["m", "out"]),
    ):  # fmt: skip
        node = graph.node.add(name=name, op=op, input=inputs)
        node.attr["T"].type = types_pb2.DT_FLOAT
    graph.node[-2].attr["N"].i = 2
    path.write_bytes(graph.SerializeToString())
    return path


@pytest.fixture
def tester(tmp_path: Path):
    from tfinterop.consumers import REFERENCE as REFERENCE_CAPABILITY
    from tfinterop.consumers import first_with
    from tfinterop.fixtures import Tolerance
    from tfinterop.inspect.graphdef import load_graph_def
    from tfinterop.locate import LocateSettings
    from tfinterop.locate.failing import FailureTester
    from tfinterop.locate.graph import read_graph
    from tfinterop.manifest import Case, TensorEntry
    from tfinterop.pipeline.cases import CaseRef
    from tfinterop.pipeline.settings import RunSettings

    model = _graph(tmp_path / "g.pb")
    files = {}
    for tensor, value in (("x:0", np.ones((2, 3), np.float32)), ("a:0", -np.ones((2, 3), np.float32)),
                          ("b:0", np.ones((2, 3), np.float32)), ("out:0", np.ones((2, 3), np.float32))):  # fmt: skip
        files[tensor] = str(tmp_path / f"{tensor[0]}.npy")
        tensors.write_tensor(files[tensor], value)
    case = Case(
        format="frozen", signature="-", model=str(model),
        inputs=[TensorEntry("x", "x:0", "float32", [2, 3], files.pop("x:0"))],
        outputs=[TensorEntry("c", "c:0", "float32", [], str(tmp_path / "c.npy"))],
    )  # fmt: skip
    ref = CaseRef("g", case, Path("/"), lambda k, r: Tolerance(), lambda *a: None, {})
    reference = first_with(REFERENCE_CAPABILITY)
    settings = LocateSettings(
        run=RunSettings(build_dir=tmp_path), ref=ref, reference=reference, consumers=[],
        tolerance=Tolerance(), work_dir=tmp_path,
    )  # fmt: skip
    return FailureTester(
        settings, reference, re.compile("x"), load_graph_def(model), read_graph(model), files,
        tmp_path / "tests", max_tests=10,
    )  # fmt: skip


def test_a_candidate_feeds_what_the_reference_fetched_and_keeps_what_it_could_not(
    tester,
) -> None:
    # c reads m (a Merge: not fetchable), m reads s and n (inside the branch): all kept;
    # s reads b, which the reference fetched: cut there. out was fetched too: cut.
    assert tester.closure({"c"}) == {"c", "m", "n", "s"}
    candidate = tester.candidate(tester.closure({"c"}))
    nodes = {n.name: n for n in candidate.graph.node}
    assert set(nodes) == {"c", "m", "n", "s", "b", "out", "p"}
    for name in ("b", "out"):  # placeholders named after the cut tensors' producers
        assert nodes[name].op == "Placeholder"
        assert [d.size for d in nodes[name].attr["shape"].shape.dim] == [2, 3]
    assert candidate.cut == {"b:0": "b", "out:0": "out"}
    assert list(nodes["c"].input) == ["m", "out:0"] and list(nodes["s"].input) == ["b:0", "p"]
    # Fetched: what no kept node reads (Merge's value_index m:1 too), the case's output.
    assert candidate.outputs == ["m:1", "c:0"]
    # b alone: a (fetched) is cut, the constant k copied, the control input dropped.
    candidate = tester.candidate(tester.closure({"b"}))
    nodes = {n.name: n for n in candidate.graph.node}
    assert set(nodes) == {"a", "k", "b"} and nodes["k"].op == "Const"
    assert list(nodes["b"].input) == ["a:0", "k"]
    assert [(key, tensor) for key, tensor, _ in candidate.feeds] == [("a", "a:0")]
    assert candidate.outputs == ["b:0"]
    # a reads the graph's own input: the placeholder is copied and fed the case's file.
    candidate = tester.candidate(tester.closure({"a"}))
    assert [(key, tensor) for key, tensor, _ in candidate.feeds] == [("x", "x:0")]
    # Without the reference's values every producer stays, up to the graph's inputs.
    tester.values = {}
    assert tester.closure({"out"}) == {"out", "b", "a"}


def test_the_nodes_an_error_names_and_the_chain_order(tester) -> None:
    from tfinterop.locate.failing import _chain_order, named_nodes

    source = tester.source
    text = "'Input 0 of node out was passed int32 from b:0 incompatible with expected int64.'"
    assert named_nodes(text, source) == {"out", "b"}
    assert named_nodes("Op type not registered 'Merge' in binary", source) == {"m"}
    order = _chain_order(source)
    assert sorted(order) == sorted(n.name for n in source.node)
    for node in source.node:  # every node after its data inputs
        for tensor in node.input:
            if not tensor.startswith("^"):
                assert order.index(tensor.split(":")[0]) < order.index(node.name)
    assert order.index("a") == order.index("x") + 1  # a chain stays together


# ------------------------------------------------------------- real failures (2.12.0)


@pytest.mark.parametrize(
    ("signature", "regex", "ops"),
    [("top_k", TOP_K, ["TopKV2", "Identity"]), ("decode_webp", "not registered", ["DecodeWebP"])],
)
def test_a_load_failure_of_an_old_runtime_reduces_to_its_op(
    signature: str, regex: str, ops: list[str], build_dir: Path, tmp_path: Path, run_cli
) -> None:
    """new_op on TensorFlow 2.12.0's C API: TopKV2's index_type attr is unknown there (the
    indices come out int32, the Identity reading them expects int64), DecodeWebP is not
    registered. The repro keeps those nodes only and fails on its own."""
    report = tmp_path / "reduce.json"
    result = run_cli(
        "reduce", "-f", "new_op", "--format", "frozen", "--signature", signature, "-c", "c",
        "--runtime", OLD, "--fail-regex", regex, "--build-dir", str(build_dir),
        "--out", str(tmp_path / "repro"), "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    done = json.loads(report.read_text())
    assert [k["op"] for k in done["kept"]] == ops, done["kept"]
    assert re.search(regex, done["full_failure"])
    repro = done["repro"]
    assert repro["reproduces"] and repro["graph_nodes"] <= len(ops) + 2, repro
    assert repro["command"][:2] == ["tfinterop", "check"]
    assert f"-c c --runtime {OLD}" in " ".join(repro["command"])
    assert "the repro fails on its own" in result.stdout
    for name in ("model.pb", "inputs.npz", "reference.npz", "README.md"):
        assert (tmp_path / "repro" / name).is_file(), name


def _chain_model(path: Path) -> Path:
    """A frozen chain of ~40 nodes: relus, then top_k with int64 indices cast to float, then
    tanhs; on 2.12.0 the Cast reading TopKV2's indices fails to import."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    @tf.function(input_signature=[tf.TensorSpec([2, 8], tf.float32, name="x")])
    def chain(x):
        h = x
        for i in range(8):
            h = tf.nn.relu(h * (1.0 + i / 10) - 0.1)
        values, indices = tf.math.top_k(h, k=3, index_type=tf.int64)
        g = tf.cast(indices, tf.float32) + values
        for i in range(6):
            g = tf.tanh(g * 0.5 + i)
        return {"y": g}

    frozen = convert_variables_to_constants_v2(chain.get_concrete_function())
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return path


def test_a_model_reduces_by_delta_debugging_and_saves_a_fixture(
    build_dir: Path, tmp_path: Path, run_cli
) -> None:
    """`reduce MODEL`: the chain reduces to TopKV2 and the Cast; with the error's own node
    names tried first it takes a handful of consumer runs, by delta debugging alone more;
    --save-fixture writes a fixture (check's writer) that loads."""
    from tfinterop.check import CheckOptions
    from tfinterop.cli.locate import _check_arguments
    from tfinterop.consumers import REFERENCE, by_name, first_with
    from tfinterop.consumers.on_runtime import OnRuntime
    from tfinterop.fixtures import Tolerance, load_fixtures
    from tfinterop.locate import LocateSettings
    from tfinterop.locate.failing import reduce_failure
    from tfinterop.locate.model import model_cell
    from tfinterop.pipeline.settings import RunSettings
    from tfinterop.runtimes import runtime

    model = _chain_model(tmp_path / "chain.pb")
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    report = tmp_path / "reduce.json"
    result = run_cli(
        "reduce", str(model), "-c", "c", "--runtime", OLD, "--fail-regex", TOP_K,
        "--build-dir", str(build_dir), "--out", str(tmp_path / "repro"), "--json", str(report),
        "--save-fixture", "chain_repro", "--fixtures-dir", str(fixtures),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    done = json.loads(report.read_text())
    assert [k["op"] for k in done["kept"]] == ["TopKV2", "Cast"], done["kept"]
    assert done["full_nodes"] > 30 and done["repro"]["graph_nodes"] <= 4
    assert done["tests"] <= 4 and done["repro"]["reproduces"]
    assert "fixture saved" in result.stdout
    (saved,) = load_fixtures(fixtures)
    assert saved.name == "chain_repro"
    assert (fixtures / "data" / "chain_repro" / "model.pb").is_file()

    # Delta debugging alone (no hint), in this process, on the same model.
    cell = model_cell(CheckOptions(path=model, build_dir=build_dir), tmp_path / "cells")
    consumer = OnRuntime.bind(by_name(["c"])[0], runtime(OLD))
    consumer.build(build_dir)  # the runtime (installed by the run above) and the program
    settings = LocateSettings(
        run=RunSettings(build_dir=build_dir, repeat=1), ref=cell.frozen,
        reference=first_with(REFERENCE), consumers=[consumer], tolerance=Tolerance(),
        work_dir=tmp_path / "locate",
    )  # fmt: skip
    args = type("Args", (), {"onednn": None})()
    reduction = reduce_failure(
        settings, consumer, TOP_K, tmp_path / "repro2", _check_arguments(args, consumer, None),
        hint=False,
    )  # fmt: skip
    assert [op for _, op in reduction.kept] == ["TopKV2", "Cast"]
    assert reduction.finished and reduction.repro is not None and reduction.repro.reproduces
    assert 4 < reduction.tests <= 25, reduction.tests


# ------------------------------------------------------------------- locate MODEL


@pytest.mark.parametrize(
    ("model", "mapped"),
    [
        ("tests/data/realworld/tf-rust/addition.pb", None),
        (
            "tests/data/realworld/tf-serving/saved_model_half_plus_two_tf2_cpu/00000123",
            "input x (serving_default_x:0) -> x:0; output y (StatefulPartitionedCall_5:0) -> ",
        ),
    ],
)
def test_any_model_is_located_as_check_takes_it(
    model: str, mapped: str | None, build_dir: Path, tmp_path: Path, run_cli
) -> None:
    """A passing cell: locate says so and still reports the worst intermediate."""
    report = tmp_path / "locate.json"
    result = run_cli(
        "locate", str(ROOT / model), "-c", "c", "--build-dir", str(build_dir), "--no-build",
        "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(report.read_text())
    location = doc["consumers"]["c"]
    assert location["status"] == "agrees" and location["tensors"], location
    assert re.search(
        r"c: every tensor agrees with python; worst \S+ \(\w+\) max \|diff\| 0", result.stdout
    )
    if mapped:
        assert doc["format"] == "saved_model" and doc["signature"] == "serving_default"
        assert any(mapped in note for note in doc["notes"]), doc["notes"]
    else:
        assert doc["format"] == "frozen" and doc["fetched"] >= 1


# ------------------------------------------------------------------- bad requests


def _row(case: str, what: str, code: int, line: str) -> str:
    return f"| `{case}` | {what} | {code} | `` {line.replace('|', chr(92) + '|')} `` |"


BAD = [
    ("reduce_regex_not_matching", "`reduce --fail-regex` that the full graph's outcome does not match",
     ["reduce", "-f", "linear", "--format", "frozen", "-c", "c", "--fail-regex", "not registered"]),
    ("reduce_regex_invalid", "`--fail-regex '('`",
     ["reduce", "-f", "linear", "--format", "frozen", "-c", "c", "--fail-regex", "("]),
    ("reduce_regex_no_consumer", "`--fail-regex` without `-c`",
     ["reduce", "-f", "linear", "--format", "frozen", "--fail-regex", "x"]),
    ("reduce_fixture_name", "`reduce --save-fixture ../x`",
     ["reduce", "-f", "linear", "--format", "frozen", "-c", "c", "--fail-regex", "x",
      "--save-fixture", "../x"]),
    ("locate_model_and_fixture", "`locate MODEL -f NAME`",
     ["locate", "tests/data/realworld/tf-rust/addition.pb", "-f", "linear"]),
    ("locate_nothing", "`locate` with neither a model nor a fixture", ["locate"]),
    ("locate_model_format", "`locate MODEL --format frozen`",
     ["locate", "tests/data/realworld/tf-rust/addition.pb", "--format", "frozen"]),
    ("locate_fixture_model_option", "`locate -f NAME --tags serve`",
     ["locate", "-f", "linear", "--format", "frozen", "--tags", "serve"]),
    ("locate_stateful_signature", "`locate` a SavedModel's training signature",
     ["locate", "tests/data/realworld/tf-rust/regression_savedmodel", "--signature", "train"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "what", "arguments"), BAD, ids=[b[0] for b in BAD])
def test_bad_locate_and_reduce_requests_are_one_line(
    case: str, what: str, arguments: list[str], build_dir: Path, run_cli, manifests
) -> None:
    """Exit 2, one `tfinterop: error:` line, no traceback; docs/bad-inputs.md shows it."""
    result = run_cli(*arguments, "--build-dir", str(build_dir), "--no-build")
    lines = [line for line in result.stderr.splitlines() if line.startswith("tfinterop:")]
    assert result.returncode == 2 and len(lines) == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    row = _row(case, what, result.returncode, lines[0].replace(str(ROOT) + "/", ""))
    if os.environ.get("TFINTEROP_UPDATE_DOC"):
        text = DOC.read_text(encoding="utf-8").splitlines()
        index = next(i for i, x in enumerate(text) if x.startswith(f"| `{case}` |"))
        text[index] = row
        DOC.write_text("\n".join(text) + "\n", encoding="utf-8")
        return
    rows = [x for x in DOC.read_text(encoding="utf-8").splitlines() if x.startswith(f"| `{case}`")]
    assert rows == [row], f"docs/bad-inputs.md is stale for {case} (TFINTEROP_UPDATE_DOC=1)"


def test_the_pruned_library_keeps_the_functions_the_nodes_call() -> None:
    from tensorflow.core.framework import graph_pb2

    from tfinterop.locate.failing import _copy_reachable_functions

    source = graph_pb2.GraphDef()
    for name, calls in (("f", "g"), ("g", None), ("h", None)):
        function = source.library.function.add()
        function.signature.name = name
        if calls:
            function.node_def.add(name="call", op=calls)
    source.node.add(name="uses_f", op="f")
    caller = source.node.add(name="calls_h", op="PartitionedCall")
    caller.attr["f"].func.name = "h"
    pruned = graph_pb2.GraphDef()
    _copy_reachable_functions(source, frozenset({"uses_f"}), pruned)
    assert sorted(f.signature.name for f in pruned.library.function) == ["f", "g"]
    pruned = graph_pb2.GraphDef()
    _copy_reachable_functions(source, frozenset({"calls_h"}), pruned)
    assert [f.signature.name for f in pruned.library.function] == ["h"]
