"""Predicting what fails in another TensorFlow runtime (inspect/compat.py), no downloads.

The "other runtime" is the pinned one's registry (dumped by the built C consumer) with one
thing edited: an attr removed, an op deleted, an allowed-values list shrunk, a kernel
removed. What the prediction says TensorFlow does with each was checked against the C API
of tensorflow-cpu 2.12.0 (see compat.py's docstring).
"""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tfinterop.inspect import inspect_model, render
from tfinterop.inspect.compat import (
    ARG_TYPE_CHANGED,
    ERROR,
    INFO,
    LOAD,
    MISSING_ATTR,
    NO_CPU_KERNEL,
    NO_MATCHING_KERNEL,
    OP_NOT_REGISTERED,
    PYTHON_OBJECT,
    RUN,
    STRIPPED_OP_LIST,
    UNKNOWN_ATTR,
    VALUE_NOT_ALLOWED,
    WARNING,
    Incompatibility,
    model_graphs,
    predict,
)
from tfinterop.inspect.kernels import CPU_DEVICES, Registry, load_registry

EDITED = "2.21.0-edited"


@pytest.fixture(scope="session")
def pinned(build_dir) -> Registry:
    return load_registry(build_dir)


@pytest.fixture(scope="session")
def keras3(export_manifests) -> Path:
    """The Keras 3 model saved with tf.saved_model.save: ``saved_model/`` and ``frozen/``."""
    return export_manifests(["keras3_save_trap"])["keras3_save_trap"].directory


@pytest.fixture(scope="session")
def linear(export_manifests) -> Path:
    """A tf.Module with two tf.Variables."""
    return export_manifests(["linear"])["linear"].directory


def edited(registry: Registry) -> Registry:
    """A copy of ``registry`` whose dicts can be edited (OpDefs through ``op_def``)."""
    return replace(
        registry,
        source="edited copy of " + registry.source,
        tf_version=EDITED,
        op_defs=dict(registry.op_defs),
        kernel_devices=dict(registry.kernel_devices),
        kernel_defs={op: list(k) for op, k in registry.kernel_defs.items()},
    )


def op_def(registry: Registry, name: str) -> Any:
    """A private copy of ``name``'s OpDef in ``registry``, to edit."""
    copy = type(registry.op_defs[name])()
    copy.CopyFrom(registry.op_defs[name])
    registry.op_defs[name] = copy
    return copy


def drop_kernels(registry: Registry, op: str, which) -> None:
    """Remove ``op``'s KernelDefs for which ``which(kernel)`` holds, devices to match."""
    kept = [k for k in registry.kernel_defs[op] if not which(k)]
    registry.kernel_defs[op] = kept
    registry.kernel_devices[op] = frozenset(k.device_type for k in kept)


def only(records: list[Incompatibility], **fields) -> Incompatibility:
    matching = [r for r in records if all(getattr(r, k) == v for k, v in fields.items())]
    assert len(matching) == 1, (fields, [(r.kind, r.op, r.attr, r.severity) for r in records])
    return matching[0]


def rewrite_saved_model(source: Path, target: Path, edit) -> Path:
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.copytree(source, target)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((target / "saved_model.pb").read_bytes())
    edit(proto.meta_graphs[0])
    (target / "saved_model.pb").write_bytes(proto.SerializeToString())
    return target


def add_unused_function(library: Any, op: str) -> str:
    """A float -> float function applying ``op`` that nothing calls."""
    from tensorflow.core.framework import types_pb2

    function = library.function.add()
    function.signature.name = f"unused_{op}"
    function.signature.input_arg.add(name="a", type=types_pb2.DT_FLOAT)
    function.signature.output_arg.add(name="b", type=types_pb2.DT_FLOAT)
    node = function.node_def.add(name="inner", op=op, input=["a"])
    node.attr["T"].type = types_pb2.DT_FLOAT
    function.ret["b"] = "inner:y:0"
    return function.signature.name


# ------------------------------------------------------------------- the pinned runtime


@pytest.fixture(scope="session")
def every_export(project_fixtures, build_dir):
    from tfinterop.export import export_fixtures

    outcomes = export_fixtures(list(project_fixtures.values()), build_dir / "exports")
    return [o.manifest for o in outcomes if o.manifest is not None]


def test_pinned_runtime_finds_nothing_in_any_fixture_export(every_export, pinned) -> None:
    """Every fixture loads and runs in the runtime that exported it: no record at all (an
    unknown attr, a kernel constraint or an unused function wrongly flagged shows here)."""
    checked = set()
    for manifest in every_export:
        for case in manifest.cases:
            if case.format not in ("frozen", "saved_model"):
                continue
            model = model_graphs(manifest.directory / case.model, case.format, case.tags or None)
            assert predict(model, pinned, pinned) == [], (manifest.fixture, case.model)
            checked.add((manifest.fixture, case.format))
    assert {("mobilenet_v3", "saved_model"), ("keras3_save_trap", "frozen")} <= checked


# ------------------------------------------------------------ attrs the target lacks


def test_debug_name_the_target_lacks_is_ignored_not_fatal(keras3, pinned) -> None:
    """Keras 3 (and TF 2.21's tf.Variable) write VarHandleOp's debug_name, which older
    runtimes lack: TensorFlow logs and ignores it (tensorflow-cpu 2.12.0 loads and runs all
    the fixtures' SavedModels), so it is a warning with the node, op, attr and runtime."""
    target = edited(pinned)
    var_handle = op_def(target, "VarHandleOp")
    index = next(i for i, a in enumerate(var_handle.attr) if a.name == "debug_name")
    del var_handle.attr[index]
    model = model_graphs(keras3 / "saved_model")
    handles = [n.name for n in model.graphs[0].graph_def.node if n.op == "VarHandleOp"]
    records = predict(model, target, pinned)
    debug = only(records, kind=UNKNOWN_ATTR, op="VarHandleOp", attr="debug_name")
    assert debug.severity == WARNING and not debug.fatal and debug.stage == ""
    assert debug.runtime == EDITED and debug.where == "graph" and debug.meta_graph == "serve"
    assert debug.count == len(handles) == 8 and debug.node == handles[0]
    assert len(debug.nodes) == 4 and debug.nodes[0] == handles[0]
    assert debug.message.startswith(
        f"VarHandleOp node '{handles[0]}' (in graph) sets attr debug_name=\""
    )
    assert f"which TensorFlow {EDITED}'s VarHandleOp does not have" in debug.message
    assert "Unknown attributes will be ignored" in debug.message
    assert "differs from the producer's default" in debug.message
    assert "[8 nodes; also" in debug.message and "+4 more]" in debug.message
    assert not [r for r in records if r.fatal]
    assert not [r for r in predict(model, pinned, pinned) if r.attr == "debug_name"]


def test_debug_name_not_set_or_default_is_no_warning(linear, pinned, tmp_path) -> None:
    """A tf.Module graph without debug_name (as older TensorFlow wrote it) has nothing to
    report; one holding the default ("") is harmless, known from the SavedModel's own
    stripped_op_list even without the producer's registry."""
    target = edited(pinned)
    var_handle = op_def(target, "VarHandleOp")
    del var_handle.attr[next(i for i, a in enumerate(var_handle.attr) if a.name == "debug_name")]

    def without(meta) -> None:
        for node in meta.graph_def.node:
            if node.op == "VarHandleOp":
                del node.attr["debug_name"]

    def default(meta) -> None:
        for node in meta.graph_def.node:
            if node.op == "VarHandleOp":
                node.attr["debug_name"].s = b""

    source = linear / "saved_model"
    set_ = predict(model_graphs(source), target, pinned)
    assert only(set_, attr="debug_name").severity == WARNING
    unset = model_graphs(rewrite_saved_model(source, tmp_path / "unset", without))
    assert predict(unset, target, pinned) == []
    defaulted = model_graphs(rewrite_saved_model(source, tmp_path / "default", default))
    for producer in (pinned, None):
        record = only(predict(defaulted, target, producer), attr="debug_name")
        assert record.severity == INFO and "producer's default: nothing changes" in record.message


def top_k_before_index_type(pinned: Registry) -> Registry:
    """The pinned registry with TopKV2 as 2.12 has it: no Tk/index_type, int32 k and indices."""
    from tensorflow.core.framework import types_pb2

    target = edited(pinned)
    top_k = op_def(target, "TopKV2")
    for name in ("index_type", "Tk"):
        del top_k.attr[next(i for i, a in enumerate(top_k.attr) if a.name == name)]
    for arg in (*top_k.input_arg, *top_k.output_arg):
        if arg.type_attr in ("index_type", "Tk"):
            arg.type_attr, arg.type = "", types_pb2.DT_INT32
    return target


def test_type_attr_the_target_ignores_fails_when_it_changes_a_dtype(tmp_path, pinned) -> None:
    """TopKV2's index_type (2.21) is unknown to 2.12, whose ``indices`` are always int32: an
    int64 consumer then fails the import (observed with 2.12: "Input 0 of node idx was passed
    int32 from topk:1 incompatible with expected int64"); int32, the default, changes nothing."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    target = top_k_before_index_type(pinned)
    for dtype, fails in ((types_pb2.DT_INT64, True), (types_pb2.DT_INT32, False)):
        graph = graph_pb2.GraphDef()
        graph.node.add(name="x", op="Placeholder").attr["dtype"].type = types_pb2.DT_FLOAT
        k = graph.node.add(name="k", op="Const")
        k.attr["dtype"].type = k.attr["value"].tensor.dtype = types_pb2.DT_INT32
        k.attr["value"].tensor.int_val.append(2)
        node = graph.node.add(name="topk", op="TopKV2", input=["x", "k"])
        node.attr["T"].type = types_pb2.DT_FLOAT
        node.attr["Tk"].type = types_pb2.DT_INT32
        node.attr["index_type"].type = dtype
        graph.node.add(name="idx", op="Identity", input=["topk:1"]).attr["T"].type = dtype
        path = tmp_path / f"topk{dtype}.pb"
        path.write_bytes(graph.SerializeToString())
        records = predict(model_graphs(path), target, pinned)
        if fails:
            record = only(records, kind=ARG_TYPE_CHANGED)
            assert (record.severity, record.stage, record.attr) == (ERROR, LOAD, "index_type")
            assert "output 'indices' is int32 instead of int64" in record.message
        else:
            assert {(r.kind, r.severity) for r in records} == {(UNKNOWN_ATTR, INFO)}


def test_dtype_change_in_a_called_function_fails_the_load(pinned, tmp_path) -> None:
    """Importing builds the bodies of the functions the graph calls, so the mismatched edge
    fails at load there too (2.12: "input input[0] expected type int64 != int32 ...")."""
    import tensorflow as tf

    class TopK(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32)])
        def top_k(self, scores):
            return {"indices": tf.math.top_k(scores, k=2, index_type=tf.int64).indices}

    module = TopK()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"top_k": module.top_k})
    records = predict(model_graphs(tmp_path / "sm"), top_k_before_index_type(pinned), pinned)
    record = only(records, kind=ARG_TYPE_CHANGED, severity=ERROR)
    assert record.stage == LOAD and record.where != "graph" and record.attr == "index_type"
    assert "expected type int64 != int32" in record.message


# ------------------------------------------------------------------------- ops deleted


def test_op_the_target_lacks_fails_where_it_is_used(keras3, pinned) -> None:
    """Tanh runs in the called serving function (import fails) and sits in two concrete
    functions nothing calls: the C API never reads those (checked with 2.12), while
    tf.saved_model.load rebuilds every function and fails there too."""
    target = edited(pinned)
    del target.op_defs["Tanh"]
    model = model_graphs(keras3 / "saved_model")
    records = predict(model, target, pinned)
    used = only(records, kind=OP_NOT_REGISTERED, severity=ERROR)
    assert used.stage == LOAD and used.where.startswith("__inference_serve_")
    assert "which TensorFlow 2.21.0-edited does not register" in used.message
    assert "Op type not registered 'Tanh' in binary" in used.message
    unused = only(records, kind=OP_NOT_REGISTERED, severity=WARNING)
    assert unused.count == 2 and not unused.fatal
    assert all(p.startswith("__inference_serving_default_") for p in unused.places)
    assert "nothing calls function" in unused.message
    python = predict(model, target, pinned, loader=PYTHON_OBJECT)
    assert {(r.severity, r.stage) for r in python if r.kind == OP_NOT_REGISTERED} == {(ERROR, LOAD)}
    frozen = predict(model_graphs(keras3 / "frozen/serving_default.pb"), target, pinned)
    assert (only(frozen, kind=OP_NOT_REGISTERED).where, frozen[0].fatal) == ("graph", True)


def test_op_only_in_the_checkpoint_save_function_still_fails_the_load(keras3, pinned) -> None:
    """``__inference__traced_save_*`` never runs when serving, but the main graph calls it,
    and importing infers the call's shapes through its body (2.12 and 2.21 both fail)."""
    target = edited(pinned)
    del target.op_defs["MergeV2Checkpoints"]
    record = only(predict(model_graphs(keras3 / "saved_model"), target, pinned))
    assert (record.kind, record.severity, record.stage) == (OP_NOT_REGISTERED, ERROR, LOAD)
    assert record.where.startswith("__inference__traced_save_")


def test_unregistered_op_in_an_unused_function_of_a_frozen_graph(linear, pinned, tmp_path):
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString((linear / "frozen/serving_default.pb").read_bytes())
    name = add_unused_function(graph.library, "MyCustomOp")
    path = tmp_path / "unused.pb"
    path.write_bytes(graph.SerializeToString())
    record = only(predict(model_graphs(path), pinned, pinned))
    assert (record.kind, record.severity, record.where) == (OP_NOT_REGISTERED, WARNING, name)


def test_op_only_in_the_stripped_op_list(linear, pinned, tmp_path) -> None:
    def add_op(meta) -> None:
        meta.meta_info_def.stripped_op_list.op.add(name="NotRegisteredAnywhere")

    model = model_graphs(rewrite_saved_model(linear / "saved_model", tmp_path / "s", add_op))
    record = only(predict(model, pinned, pinned))
    assert (record.kind, record.where, record.severity) == (
        OP_NOT_REGISTERED,
        STRIPPED_OP_LIST,
        WARNING,
    )


# ------------------------------------------------------------------ values and kernels


def test_type_outside_the_targets_allowed_values(keras3, pinned) -> None:
    from tensorflow.core.framework import types_pb2

    target = edited(pinned)
    attr = next(a for a in op_def(target, "MatMul").attr if a.name == "T")
    kept = [t for t in attr.allowed_values.list.type if t != types_pb2.DT_FLOAT]
    del attr.allowed_values.list.type[:]
    attr.allowed_values.list.type.extend(kept)
    frozen = predict(model_graphs(keras3 / "frozen/serving_default.pb"), target, pinned)
    record = only(frozen, kind=VALUE_NOT_ALLOWED)
    assert (record.severity, record.stage, record.attr, record.value) == (ERROR, LOAD, "T", "float")
    assert "Value for attr 'T' of float is not in the list of allowed values" in record.message
    assert record.count == 2 and not [r for r in frozen if r.kind == NO_MATCHING_KERNEL]
    saved = predict(model_graphs(keras3 / "saved_model"), target, pinned)
    run = only(saved, kind=VALUE_NOT_ALLOWED, severity=ERROR)
    assert run.stage == RUN and run.where.startswith("__inference_serve_")
    assert only(saved, kind=VALUE_NOT_ALLOWED, severity=WARNING).count == 4  # unused functions


def test_required_attr_the_node_lacks(linear, pinned) -> None:
    target = edited(pinned)
    identity = op_def(target, "Identity")
    identity.attr.add(name="required_in_target", type="int")
    record = only(predict(model_graphs(linear / "frozen/serving_default.pb"), target, pinned))
    assert (record.kind, record.attr, record.severity) == (
        MISSING_ATTR,
        "required_in_target",
        ERROR,
    )


def test_cpu_kernel_removed(keras3, pinned) -> None:
    from tensorflow.core.framework import types_pb2

    frozen = model_graphs(keras3 / "frozen/serving_default.pb")
    saved = model_graphs(keras3 / "saved_model")
    target = edited(pinned)
    drop_kernels(target, "Tanh", lambda k: k.device_type in CPU_DEVICES)
    record = only(predict(frozen, target, pinned))
    assert (record.kind, record.severity, record.stage) == (NO_CPU_KERNEL, ERROR, RUN)
    assert "No OpKernel was registered to support Op 'Tanh'" in record.message
    assert only(predict(saved, target, pinned), severity=ERROR).where.startswith(
        "__inference_serve_"
    )

    float_only = edited(pinned)
    drop_kernels(
        float_only,
        "Tanh",
        lambda k: any(types_pb2.DT_FLOAT in c.allowed_values.list.type for c in k.constraint),
    )
    assert float_only.has_cpu_kernel("Tanh")  # other dtypes keep theirs
    record = only(predict(frozen, float_only, pinned))
    assert (record.kind, record.attr, record.value, record.fatal) == (
        NO_MATCHING_KERNEL,
        "T",
        "T=float",
        True,
    )
    assert "with these attrs: [T=float]" in record.message

    main = edited(pinned)  # a SavedModel's main graph is placed when the restore op runs
    drop_kernels(main, "VarHandleOp", lambda k: k.device_type in CPU_DEVICES)
    record = only(predict(saved, main, pinned), severity=ERROR)
    assert (record.kind, record.where, record.stage, record.count) == (
        NO_CPU_KERNEL,
        "graph",
        LOAD,
        8,
    )


# ----------------------------------------------------------------------- inspect report


def test_inspect_reports_runtimes_only_when_asked(keras3, build_dir, pinned) -> None:
    target = edited(pinned)
    del target.op_defs["Tanh"]

    def rendered(inspection) -> str:
        out = io.StringIO()
        render(inspection, Console(file=out, width=400, color_system=None))
        return out.getvalue()

    plain = inspect_model(keras3 / "saved_model", build_dir)
    assert "runtimes" not in plain.as_dict() and "Runtime TensorFlow" not in rendered(plain)
    inspection = inspect_model(keras3 / "saved_model", build_dir, [target])
    (check,) = inspection.runtimes
    assert check.runtime == EDITED and not check.loads
    text = rendered(inspection)
    assert f"Runtime TensorFlow {EDITED}: 1 problem will fail loading or running" in text
    lines = [line for line in text.splitlines() if line.startswith(("  ✗ ", "  ! "))]
    assert len(lines) == len([p for p in check.problems if p.severity != INFO]) == 2
    assert lines[0].startswith("  ✗ Tanh node ")
    data = inspection.as_dict()["runtimes"][0]
    assert data["loads"] is False and data["problems"][0]["fatal"] is True


def test_function_node_feeding_no_output_is_pruned(linear, pinned, tmp_path) -> None:
    """A node of a running function that reaches none of its outputs is pruned before kernels
    are made (2.12 and 2.21 both run such a model): a warning, not a failure."""
    from tensorflow.core.framework import types_pb2

    def dangling_tanh(meta) -> None:
        functions = meta.graph_def.library.function
        called = {n.attr["f"].func.name for f in functions for n in f.node_def if "f" in n.attr}
        serve = next(f for f in functions if f.signature.name in called)
        const = serve.node_def.add(name="c", op="Const")
        const.attr["dtype"].type = const.attr["value"].tensor.dtype = types_pb2.DT_FLOAT
        const.attr["value"].tensor.float_val.append(1.0)
        node = serve.node_def.add(name="dangling", op="Tanh", input=["c:output:0"])
        node.attr["T"].type = types_pb2.DT_FLOAT

    target = edited(pinned)
    drop_kernels(target, "Tanh", lambda k: k.device_type in CPU_DEVICES)
    path = rewrite_saved_model(linear / "saved_model", tmp_path / "d", dangling_tanh)
    record = only(predict(model_graphs(path), target, pinned))
    assert (record.kind, record.node, record.severity) == (NO_CPU_KERNEL, "dangling", WARNING)
    assert "TensorFlow prunes it" in record.message
