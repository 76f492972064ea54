"""`tfinterop inspect` on third-party models, the built-in fixtures' exports and broken graphs.

The kernel check asks the built C consumer (`--registered-ops/--registered-kernels`), so
these tests need `tfinterop build` (nox -s tests runs it first).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfinterop.errors import UserError
from tfinterop.inspect import inspect_model

REALWORLD = Path(__file__).resolve().parents[1].joinpath("data") / "realworld"
TF1_HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_cpu/00000123"
TF2_HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_tf2_cpu/00000123"
ADDITION = REALWORLD / "tf-rust/addition.pb"
REGRESSION = REALWORLD / "tf-rust/regression_savedmodel"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfinterop", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="session")
def inspected(build_dir):
    models = {
        "saved_model_half_plus_two_cpu": TF1_HALF_PLUS_TWO,
        "saved_model_half_plus_two_tf2_cpu": TF2_HALF_PLUS_TWO,
        "addition.pb": ADDITION,
        "regression_savedmodel": REGRESSION,
    }
    return {name: inspect_model(path, build_dir) for name, path in models.items()}


def test_tf1_saved_model_signatures_like_saved_model_cli(inspected) -> None:
    inspection = inspected["saved_model_half_plus_two_cpu"]
    assert inspection.format == "saved_model" and len(inspection.meta_graphs) == 1
    meta = inspection.meta_graphs[0]
    assert meta.tags == ["serve"] and meta.tensorflow_version == "1.14.0"
    assert meta.style.startswith("TF1")
    signatures = {s.key: s for s in meta.signatures}
    assert set(signatures) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x2_to_y3",
        "regress_x_to_y",
        "regress_x_to_y2",
    }
    serving = signatures["serving_default"]
    assert serving.method_name == "tensorflow/serving/predict"
    x, y = serving.inputs["x"], serving.outputs["y"]
    assert (x.name, x.op, x.dtype, x.shape) == ("x:0", "Identity", "float32", [-1, 1])
    assert (y.name, y.dtype, y.shape) == ("y:0", "float32", [-1, 1])
    # x:0 is an Identity on ParseExample's output: fed directly, TF1 style. Say so.
    assert any("Identity" in note and "not a placeholder" in note for note in serving.notes)
    classify = signatures["classify_x_to_y"]
    assert classify.method_name == "tensorflow/serving/classify"
    examples = classify.inputs["inputs"]
    assert (examples.name, examples.dtype, examples.shape) == ("tf_example:0", "string", None)
    assert not any(s.stateful for s in meta.signatures)
    assert inspection.assets == ["assets/foo.txt"]
    assert set(inspection.variables) == {
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    }
    # The TF1 graph still holds its variables (a SavedModel restores them): not a warning.
    assert "VariableV2" in meta.graph.op_histogram and not meta.graph.functions
    assert inspection.kernels.checked and inspection.kernel_problems == []


def test_tf2_saved_model_inputs_are_not_placeholders(inspected) -> None:
    inspection = inspected["saved_model_half_plus_two_tf2_cpu"]
    meta = inspection.meta_graphs[0]
    assert meta.tensorflow_version == "2.14.0" and meta.style.startswith("TF2")
    serving = meta.signature("serving_default")
    x, y = serving.inputs["x"], serving.outputs["y"]
    assert (x.name, x.op, x.shape) == ("serving_default_x:0", "PlaceholderWithDefault", [1])
    assert (y.name, y.op) == ("StatefulPartitionedCall_5:0", "StatefulPartitionedCall")
    assert any("PlaceholderWithDefault" in note for note in serving.notes)
    init = meta.signature("__saved_model_init_op")
    assert not init.callable
    assert meta.signature("classify_x_to_y").inputs["inputs"].shape == [-1]
    # The function library is followed: ParseExampleV2 only appears inside functions.
    assert "ParseExampleV2" in meta.graph.ops_used
    assert "graph" not in meta.graph.ops_used["ParseExampleV2"]
    assert len(meta.graph.functions) == 14
    assert inspection.kernel_problems == []


def test_stateful_signature_is_found_through_the_function_library(inspected) -> None:
    inspection = inspected["regression_savedmodel"]
    meta = inspection.meta_graphs[0]
    assert meta.tensorflow_version == "2.5.0"
    train = meta.signature("train")
    assert train.stateful and "ResourceApplyGradientDescent" in train.state_writers
    assert not meta.signature("w").stateful and not meta.signature("b").stateful
    assert meta.signature("w").inputs == {}
    assert any("'train' writes variables" in w for w in inspection.warnings)


def test_graph_def_inputs_outputs_and_ops(inspected) -> None:
    inspection = inspected["addition.pb"]
    graph = inspection.graph
    assert inspection.format == "graph_def" and graph is not None
    assert [(i.name, i.dtype, i.shape) for i in graph.inputs] == [
        ("x:0", "int32", []),
        ("y:0", "int32", []),
    ]
    assert [(o.name, o.op, o.dtype, o.shape) for o in graph.outputs] == [
        ("z:0", "AddV2", "int32", [])
    ]
    assert graph.node_count == 3 and graph.op_histogram == {"Placeholder": 2, "AddV2": 1}
    assert graph.frozen and graph.control_flow == [] and graph.functions == []
    assert inspection.warnings == [] and inspection.kernel_problems == []


def test_text_graph_def(tmp_path) -> None:
    from google.protobuf import text_format
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(ADDITION.read_bytes())
    path = tmp_path / "addition.pbtxt"
    path.write_text(text_format.MessageToString(graph))
    inspection = inspect_model(path, None)
    assert [o.name for o in inspection.graph.outputs] == ["z:0"]
    assert not inspection.kernels.checked and inspection.kernels.reason == "not asked for"


def test_unfrozen_graph_is_a_clear_warning(tmp_path) -> None:
    """The TF1 SavedModel's graph written alone: VariableV2 ops, weights not in the file."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((TF1_HALF_PLUS_TWO / "saved_model.pb").read_bytes())
    path = tmp_path / "unfrozen.pb"
    path.write_bytes(saved.meta_graphs[0].graph_def.SerializeToString())
    inspection = inspect_model(path, None)
    assert not inspection.graph.frozen
    assert any("a (VariableV2)" in v for v in inspection.graph.variable_ops)
    warning = next(w for w in inspection.warnings if "not frozen" in w)
    assert "weights are not in the file" in warning and "a (VariableV2)" in warning
    # Placeholders are inputs; the signature's Identity inputs are not guessed.
    assert [i.name for i in inspection.graph.inputs] == ["tf_example:0"]


def test_tf2_graph_without_freezing_has_resource_inputs(tmp_path) -> None:
    import tensorflow as tf

    class Scale(tf.Module):
        def __init__(self) -> None:
            self.w = tf.Variable([2.0])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def __call__(self, x):
            return x * self.w

    module = Scale()  # tf.function holds its instance weakly: keep it alive
    graph = module.__call__.get_concrete_function().graph.as_graph_def()
    path = tmp_path / "captured.pb"
    path.write_bytes(graph.SerializeToString())
    inspection = inspect_model(path, None)
    resource = [i for i in inspection.graph.inputs if i.dtype == "resource"]
    assert resource and "not frozen" in resource[0].note
    assert not inspection.graph.frozen and any("not frozen" in w for w in inspection.warnings)


def test_unregistered_op_is_predicted_in_graph_and_function(
    tmp_path, build_dir, graph_with
) -> None:
    for in_function in (False, True):
        path = graph_with(tmp_path, f"custom{in_function}", "MyCustomOp", in_function=in_function)
        inspection = inspect_model(path, build_dir)
        (problem,) = inspection.kernel_problems
        assert problem.op == "MyCustomOp" and problem.kind == "not_registered"
        assert problem.where == (["wrapped"] if in_function else ["graph"])
        assert "Op type not registered 'MyCustomOp'" in problem.predicted_error
        # The call op is a registered op; the function name is not mistaken for an op.
        assert "wrapped" not in inspection.graph.ops_used
        if not in_function:
            assert any("cannot import the graph" in w for w in inspection.warnings)


def test_op_without_cpu_kernel_is_predicted(tmp_path, build_dir, graph_with) -> None:
    path = graph_with(tmp_path, "no_kernel", "KthOrderStatistic", k=1)
    inspection = inspect_model(path, build_dir)
    (problem,) = inspection.kernel_problems
    assert problem.op == "KthOrderStatistic" and problem.kind == "no_cpu_kernel"
    assert "No OpKernel was registered to support Op 'KthOrderStatistic'" in (
        problem.predicted_error
    )
    assert "running will fail" in problem.describe()


def test_registry_comes_from_the_c_consumers_library(build_dir, tmp_path) -> None:
    from tensorflow.core.framework import kernel_def_pb2, op_def_pb2

    from tfinterop.consumers.c import c_binary
    from tfinterop.inspect.kernels import load_registry
    from tfinterop.tfenv import find_tensorflow

    registry = load_registry(build_dir)
    assert str(c_binary(build_dir, find_tensorflow())) in registry.source
    assert len(registry.op_defs) > 1000 and "MyCustomOp" not in registry.op_defs
    assert registry.has_cpu_kernel("AddV2") and registry.has_cpu_kernel("NoOp")  # DEFAULT
    assert "KthOrderStatistic" in registry.op_defs
    assert not registry.has_cpu_kernel("KthOrderStatistic")
    # The C consumer's dump mode on its own: serialized OpList and KernelList protos.
    binary = str(c_binary(build_dir, find_tensorflow()))
    ops, kernels = tmp_path / "ops.pb", tmp_path / "kernels.pb"
    done = subprocess.run(
        [binary, "--registered-ops", str(ops), "--registered-kernels", str(kernels)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    op_list, kernel_list = op_def_pb2.OpList(), kernel_def_pb2.KernelList()
    op_list.ParseFromString(ops.read_bytes())
    kernel_list.ParseFromString(kernels.read_bytes())
    assert {op.name for op in op_list.op} == set(registry.op_defs)
    assert any(k.op == "AddV2" and k.device_type == "CPU" for k in kernel_list.kernel)
    misuse = subprocess.run(
        [binary, "--registered-ops", str(ops), "--plan", "x"], capture_output=True, check=False
    )
    assert misuse.returncode == 2 and b"take no plan" in misuse.stderr


@pytest.fixture(scope="session")
def every_export(project_fixtures, build_dir):
    """Exports of all built-in fixtures (cached under build/exports); a fixture whose export
    fails is another test's failure, not inspect's."""
    from tfinterop.export import export_fixtures

    outcomes = export_fixtures(list(project_fixtures.values()), build_dir / "exports")
    return [o.manifest for o in outcomes if o.manifest is not None]


@pytest.mark.parametrize("fmt", ["frozen", "saved_model"])
def test_builtin_fixture_exports(every_export, build_dir, fmt) -> None:
    """inspect names the same tensors the exporter recorded, for every built-in fixture."""
    inspected = set()
    for manifest in every_export:
        for case in manifest.cases:
            if case.format != fmt:
                continue
            where = (manifest.fixture, case.model, case.signature)
            inspection = inspect_model(manifest.directory / case.model, build_dir)
            assert inspection.kernel_problems == [], where
            if fmt == "frozen":
                graph = inspection.graph
                assert graph.frozen, (where, graph.variable_ops)
                assert {e.tensor for e in case.inputs} == {i.name for i in graph.inputs}, where
                assert {e.tensor for e in case.outputs} == {o.name for o in graph.outputs}, where
            else:
                meta = inspection.meta_graph(case.tags or None)
                signature = meta.signature(case.signature)
                assert {k: t.name for k, t in signature.inputs.items()} == {
                    e.key: e.tensor for e in case.inputs
                }, where
                assert {k: t.name for k, t in signature.outputs.items()} == {
                    e.key: e.tensor for e in case.outputs
                }, where
            inspected.add(manifest.fixture)
    assert {"linear", "mobilenet_v3"} <= inspected


def test_cli_human_and_json(tmp_path) -> None:
    human = cli("inspect", str(TF1_HALF_PLUS_TWO))
    assert human.returncode == 0, human.stderr
    for text in ("MetaGraph tags: serve", "TensorFlow 1.14.0", "tf_example:0", "unknown rank"):
        assert text in human.stdout
    assert "Kernels:" in human.stdout and "all registered" in human.stdout
    machine = cli("inspect", str(TF2_HALF_PLUS_TWO), "--json")
    assert machine.returncode == 0, machine.stderr
    data = json.loads(machine.stdout)
    (meta,) = data["meta_graphs"]
    serving = next(s for s in meta["signatures"] if s["key"] == "serving_default")
    assert serving["inputs"]["x"]["name"] == "serving_default_x:0"
    assert serving["inputs"]["x"]["op"] == "PlaceholderWithDefault"
    assert data["kernels"]["checked"] is True and data["kernels"]["problems"] == []


def test_cli_errors_are_one_line(tmp_path) -> None:
    missing = cli("inspect", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"tfinterop: error: {tmp_path / 'nope'} does not exist"
    # TF Serving's base directory holds numbered versions: point at the version.
    base = tmp_path / "half_plus_two"
    shutil.copytree(TF1_HALF_PLUS_TWO, base / "00000123")
    versions = cli("inspect", str(base))
    assert versions.returncode == 2
    assert versions.stderr.strip().endswith(f"use {base / '00000123'}")
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff\x00not a graph")
    broken = cli("inspect", str(garbage))
    assert broken.returncode == 2 and len(broken.stderr.strip().splitlines()) == 1
    assert "is not a binary GraphDef" in broken.stderr or "holds no graph nodes" in broken.stderr


def test_user_errors_in_process(tmp_path) -> None:
    with pytest.raises(UserError, match="no MetaGraph with tag set 'serve,gpu'"):
        inspect_model(TF1_HALF_PLUS_TWO, None).meta_graph(["serve", "gpu"])
    with pytest.raises(UserError, match="signature 'nope' not found; available: "):
        inspect_model(TF2_HALF_PLUS_TWO, None).meta_graphs[0].signature("nope")


# ------------------------------------------------------------------ models from the wild

WILD = Path(__file__).resolve().parents[1].joinpath("data") / "wild"


@pytest.fixture(scope="session")
def wild(tmp_path_factory) -> dict[str, Path]:
    """The test models TF 2.21 can write (tests/data/wild/make_models.py), built afresh."""
    import runpy

    out = tmp_path_factory.mktemp("wild")
    return runpy.run_path(str(WILD / "make_models.py"))["build_all"](out)


def _rewrite_saved_model(source: Path, target: Path, edit) -> Path:
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, target)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((target / "saved_model.pb").read_bytes())
    edit(proto.meta_graphs[0])
    (target / "saved_model.pb").write_bytes(proto.SerializeToString())
    return target


def test_absent_signature_shapes_are_unknown_not_scalar(wild, tmp_path) -> None:
    """TF 1.0-era TensorInfos have no tensor_shape: the graph's shape, else unknown rank."""
    serving = inspect_model(wild["shapeless"], None).meta_graphs[0].signature("serving_default")
    x, y = serving.inputs["x"], serving.outputs["y"]
    assert (x.shape, x.shape_source) == ([-1, 1], "graph _output_shapes")
    assert (y.shape, y.shape_source) == ([-1, 1], "graph _output_shapes")
    assert any("records no shape; shape (-1, 1) is the graph's" in n for n in serving.notes)

    def without_output_shapes(meta) -> None:
        for node in meta.graph_def.node:
            if "_output_shapes" in node.attr:
                del node.attr["_output_shapes"]

    placeholder_only = _rewrite_saved_model(
        wild["shapeless"], tmp_path / "p", without_output_shapes
    )
    serving = inspect_model(placeholder_only, None).meta_graphs[0].signature("serving_default")
    assert (serving.inputs["x"].shape, serving.inputs["x"].shape_source) == (
        [-1, 1],
        "placeholder shape attr",
    )
    assert serving.outputs["y"].shape is None  # an AddV2 with no recorded shape: unknown

    def nothing_known(meta) -> None:
        without_output_shapes(meta)
        for node in meta.graph_def.node:
            if node.op == "Placeholder":
                del node.attr["shape"]

    unknown = _rewrite_saved_model(wild["shapeless"], tmp_path / "u", nothing_known)
    serving = inspect_model(unknown, None).meta_graphs[0].signature("serving_default")
    assert serving.inputs["x"].shape is None
    assert any("graph none either: unknown rank (check needs --shape" in n for n in serving.notes)
    human = cli("inspect", str(unknown), "--no-kernels")
    assert human.returncode == 0 and "unknown rank" in human.stdout, human.stdout


def test_ref_typed_output_is_its_value_dtype(wild, build_dir) -> None:
    """A TF1 VariableV2 fetched directly is float32_ref in the SignatureDef; every consumer
    fetches its float32 value."""
    inspection = inspect_model(wild["tf1_ref_output"], build_dir)
    meta = inspection.meta_graphs[0]
    assert meta.style.startswith("TF1") and inspection.kernel_problems == []
    outputs = meta.signature("serving_default").outputs
    assert {k: (t.dtype, t.shape) for k, t in outputs.items()} == {
        "y": ("float32", [-1, 1]),
        "w": ("float32", [2, 1]),
        "two": ("int64", []),
    }
    assert inspection.assets == ["assets/vocabulary.txt"]


def test_dtype_names_are_tensorflows(tmp_path) -> None:
    """The DataType names read from types.proto without TensorFlow are tf.as_dtype's."""
    import tensorflow as tf

    from tfinterop.inspect.savedmodel import dtype_name

    known = 0
    for value in range(1, 250):
        try:
            dtype = tf.dtypes.as_dtype(value).base_dtype
        except TypeError:
            continue
        known += 1
        assert dtype_name(value) == ("string" if dtype == tf.string else dtype.name), value
    assert known > 40  # base dtypes and their refs


def test_registry_and_versions_without_tensorflow_match_tensorflows(build_dir) -> None:
    import tensorflow as tf
    from tensorflow.core.framework import kernel_def_pb2, op_def_pb2

    from tfinterop.inspect import graph_def_versions
    from tfinterop.inspect.kernels import dump_registry, load_registry

    assert graph_def_versions() == (
        tf.version.GRAPH_DEF_VERSION_MIN_PRODUCER,
        tf.version.GRAPH_DEF_VERSION,
    )
    ours = load_registry(build_dir)
    ops_path, kernels_path, _, _ = dump_registry(build_dir)
    op_list, kernel_list = op_def_pb2.OpList(), kernel_def_pb2.KernelList()
    op_list.ParseFromString(ops_path.read_bytes())
    kernel_list.ParseFromString(kernels_path.read_bytes())
    theirs = {op.name: op for op in op_list.op}
    assert set(ours.op_defs) == set(theirs) and len(theirs) > 1000
    devices: dict[str, set[str]] = {}
    for kernel in kernel_list.kernel:
        devices.setdefault(kernel.op, set()).add(kernel.device_type)
    assert ours.kernel_devices == {op: frozenset(d) for op, d in devices.items()}
    assert ours.op_defs["AddN"].SerializeToString() == theirs["AddN"].SerializeToString()


def test_inspecting_a_saved_model_does_not_import_tensorflow(build_dir) -> None:
    """`check` starts its consumers only after inspecting; an `import tensorflow` there (2-3 s
    of CPU) delayed every consumer on a 2-core machine."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tfinterop.inspect import inspect_model\n"
        f"inspection = inspect_model(Path({str(TF1_HALF_PLUS_TWO)!r}), Path({str(build_dir)!r}))\n"
        "assert inspection.kernels.checked, inspection.kernels.reason\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert "tensorflow.python" not in loaded, loaded[:10]


def test_inspect_runtime_predicts_per_runtime(run_cli, export_manifests) -> None:
    """`inspect --runtime`: one verdict per runtime, from that runtime's own registry: the
    DecodeWebP model does not load on 2.12.0 (op not registered) and loads on 2.20.0."""
    import json

    model = export_manifests(["new_op"])["new_op"].directory / "saved_model"
    done = run_cli("inspect", str(model), "--runtime", "2.12.0", "--runtime", "2.20.0", "--json")
    assert done.returncode == 0, done.stderr
    checks = {r["runtime"]: r for r in json.loads(done.stdout)["runtimes"]}
    assert set(checks) == {"2.12.0", "2.20.0"}
    assert not checks["2.12.0"]["loads"] and checks["2.20.0"]["loads"]
    fatal = [p for p in checks["2.12.0"]["problems"] if p["fatal"]]
    assert {(p["kind"], p["op"]) for p in fatal} >= {("op_not_registered", "DecodeWebP")}
    assert all(p["runtime"] == "2.12.0" for p in fatal)
    text = run_cli("inspect", str(model), "--runtime", "2.12.0")
    assert "Runtime TensorFlow 2.12.0:" in text.stdout
    assert "which TensorFlow 2.12.0 does not register" in text.stdout


def test_inspect_runtime_refuses_what_cannot_apply(run_cli, export_manifests) -> None:
    model = export_manifests(["linear"])["linear"].directory / "saved_model"
    done = run_cli("inspect", str(model), "--runtime", "2.12.0", "--no-kernels")
    assert done.returncode == 2 and "cannot go with --no-kernels" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
