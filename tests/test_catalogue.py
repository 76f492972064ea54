"""The catalogue fixtures are meaningful: their references show the property each fixture is
about, and a consumer that got it wrong would fail the comparison, not pass by accident."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from tfinterop import tensors
from tfinterop.manifest import Case, Manifest

CATALOGUE = {
    "linear",
    "mobilenet_v3",
    "pow_module",
    "serving_pipeline",
    "dtypes",
    "binary_strings",
    "control_flow",
    "lookup_asset",
    "tf1_tags",
    "image_layout",
    "keras3_save_trap",
}
TFLITE_FIXTURES = {"linear", "pow_module", "mobilenet_v3", "control_flow", "image_layout"}


@pytest.fixture(scope="module")
def manifests(project_fixtures, build_dir: Path) -> dict[str, Manifest]:
    """Every catalogue fixture, exported (reused from build/exports when fresh)."""
    from tfinterop.export import export_fixtures

    outcomes = export_fixtures(
        [project_fixtures[n] for n in sorted(CATALOGUE)], build_dir / "exports"
    )
    failed = [f"{o.fixture}: {o.error}" for o in outcomes if o.manifest is None]
    assert not failed, failed
    return {o.fixture: o.manifest for o in outcomes if o.manifest is not None}


def case(manifest: Manifest, fmt: str, signature: str, tags: list[str] | None = None) -> Case:
    return next(
        c
        for c in manifest.cases
        if c.format == fmt and c.signature == signature and (tags is None or c.tags == tags)
    )


def read(manifest: Manifest, c: Case, key: str, kind: str = "output") -> np.ndarray:
    entries = c.outputs if kind == "output" else c.inputs
    entry = next(e for e in entries if e.key == key)
    return tensors.read_tensor(manifest.directory / entry.file, entry.dtype)


def test_catalogue_is_complete(project_fixtures, manifests) -> None:
    assert set(project_fixtures) >= CATALOGUE
    for name in CATALOGUE:
        formats = {c.format for c in manifests[name].cases}
        assert ("tflite" in formats) == (name in TFLITE_FIXTURES), (name, formats)
        assert "saved_model" in formats, name


def test_pow_module_variables_exist_only_after_tracing_and_nan_is_kept(manifests) -> None:
    manifest = manifests["pow_module"]
    c = case(manifest, "saved_model", "serving_default")
    x, y = read(manifest, c, "x", "input"), read(manifest, c, "pow")
    # The exponent is not an integer: negative inputs give NaN, which must stay NaN.
    assert np.array_equal(np.isnan(y), x < 0) and (x < 0).any()
    exponent = np.log(y[2]) / np.log(x[2])  # x[2] == 2
    assert abs(exponent - round(exponent)) > 0.01


def test_serving_pipeline_labels_follow_probabilities(manifests, project_fixtures) -> None:
    manifest = manifests["serving_pipeline"]
    served = case(manifest, "saved_model", "serving_default")
    probabilities = read(manifest, served, "probabilities")
    labels = read(manifest, served, "labels")
    names = np.array([n.encode() for n in _class_names(project_fixtures)], dtype=object)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert list(labels) == list(names[probabilities.argmax(axis=1)])
    # A trained classifier, not a constant one: every class is predicted for some input.
    assert len(set(labels.tolist())) == len(names)
    assert (probabilities.max(axis=1) > 0.5).all()
    # The numeric signature in the same SavedModel gives the same probabilities.
    pixels = case(manifest, "saved_model", "predict_pixels")
    assert np.allclose(read(manifest, pixels, "probabilities"), probabilities, atol=1e-6)


def test_serving_pipeline_needs_the_web_safe_alphabet(manifests) -> None:
    import tensorflow as tf

    manifest = manifests["serving_pipeline"]
    encoded = read(manifest, case(manifest, "saved_model", "serving_default"), "image_b64", "input")
    assert any(b"-" in e or b"_" in e for e in encoded)
    assert not any(b"+" in e or b"/" in e for e in encoded)
    standard = [base64.b64encode(base64.urlsafe_b64decode(e)) for e in encoded]
    serve = tf.saved_model.load(str(manifest.directory / "saved_model")).signatures[
        "serving_default"
    ]
    with pytest.raises(tf.errors.InvalidArgumentError):
        serve(image_b64=tf.constant(standard))


def _class_names(project_fixtures) -> tuple[str, ...]:
    import sys

    return sys.modules[project_fixtures["serving_pipeline"].build.__module__].CLASS_NAMES


def test_dtypes_covers_every_dtype_scalars_empty_and_both_batches(manifests) -> None:
    manifest = manifests["dtypes"]
    wanted = set(tensors.SUPPORTED_DTYPES)  # every dtype the contract carries
    assert {"uint32", "uint64", "complex128"} <= wanted
    for signature, batch in (("batch_1", 1), ("batch_n", 5)):
        c = case(manifest, "saved_model", signature)
        assert {e.dtype for e in c.inputs} >= wanted and {e.dtype for e in c.outputs} >= wanted
        shapes = {e.key: tuple(e.shape) for e in c.inputs + c.outputs}
        assert shapes["scale"] == () and shapes["scale_out"] == () and shapes["batch"] == ()
        assert shapes["empty"] == (batch, 0) and shapes["empty_out"] == (batch, 0)
        assert shapes["f32"] == (batch, 3)
        assert int(read(manifest, c, "batch")) == batch


def test_dtypes_unsigned_and_complex128_values_need_their_width(manifests) -> None:
    """uint32/uint64 inputs beyond the signed range (read as int32/int64, or uint64 through a
    double, they change) and complex128 parts a complex64 cannot hold."""
    manifest = manifests["dtypes"]
    c = case(manifest, "saved_model", "batch_n")
    u32, u64 = read(manifest, c, "u32", "input"), read(manifest, c, "u64", "input")
    assert (u32 >= 2**31).any() and (u64 >= 2**63).any()
    assert (u64.astype(np.float64).astype(np.uint64) != u64).any()
    assert np.array_equal(read(manifest, c, "u64_out"), u64 // np.uint64(7) + np.uint64(2**63))
    # Floor division tells unsigned from signed: the same bits as int32 give other quotients.
    assert np.array_equal(read(manifest, c, "u32_out"), u32 // np.uint32(3) + np.uint32(7))
    signed = (u32.view(np.int32) // 3 + 7).view(np.uint32)
    assert not np.array_equal(read(manifest, c, "u32_out"), signed)
    c128 = read(manifest, c, "c128", "input")
    assert c128.dtype == np.complex128
    assert (c128.astype(np.complex64).astype(np.complex128) != c128).any()
    out = read(manifest, c, "c128_out")
    assert (out.astype(np.complex64).astype(np.complex128) != out).any()


def test_binary_strings_hold_nul_non_utf8_and_out_of_line_strings(manifests) -> None:
    manifest = manifests["binary_strings"]
    binary = case(manifest, "saved_model", "binary")
    blobs = list(read(manifest, binary, "blobs", "input"))
    assert any(b"\x00" in b for b in blobs) and any(b.endswith(b"\x00") for b in blobs)
    assert any(len(b) > 22 for b in blobs) and any(len(b) == 22 for b in blobs)
    assert any(not _utf8(b) for b in blobs)
    assert list(read(manifest, binary, "echo")) == blobs
    assert list(read(manifest, binary, "length")) == [len(b) for b in blobs]
    utf8 = list(read(manifest, case(manifest, "saved_model", "utf8"), "blobs", "input"))
    assert all(_utf8(b) for b in utf8) and any(b"\x00" in b for b in utf8)
    assert any(len(b) > 22 for b in utf8)


def _utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_control_flow_frozen_graph_keeps_functional_control_flow(manifests) -> None:
    from tensorflow.core.framework import graph_pb2

    manifest = manifests["control_flow"]
    graph = graph_pb2.GraphDef()
    graph.ParseFromString((manifest.directory / "frozen" / "branch_a.pb").read_bytes())
    ops = {node.op for node in graph.node}
    assert ops & {"While", "StatelessWhile"} and ops & {"If", "StatelessIf"}, ops
    assert not ops & {"Switch", "Merge", "Enter", "Exit"}, "control flow was lowered"
    assert len(graph.library.function) >= 4  # loop cond, loop body, then, else
    body_ops = {n.op for f in graph.library.function for n in f.node_def}
    assert "ReadVariableOp" not in body_ops and "VarHandleOp" not in ops  # weights frozen in


def test_control_flow_signatures_take_both_branches(manifests) -> None:
    manifest = manifests["control_flow"]
    taken = []
    for signature in ("branch_a", "branch_b"):
        c = case(manifest, "saved_model", signature)
        steps = int(read(manifest, c, "steps", "input"))
        assert int(read(manifest, c, "iterations")) == steps > 0
        taken.append(int(read(manifest, c, "took_then")))
    assert sorted(taken) == [0, 1]


def test_lookup_asset_ids_default_and_asset(manifests, project_fixtures) -> None:
    manifest = manifests["lookup_asset"]
    vocabulary_file = project_fixtures["lookup_asset"].directory / "data" / "fruit_vocab.txt"
    vocabulary = vocabulary_file.read_text().splitlines()
    c = case(manifest, "saved_model", "serving_default")
    tokens = [t.decode() for t in read(manifest, c, "tokens", "input")]
    ids, known = read(manifest, c, "ids"), read(manifest, c, "known")
    expected = [vocabulary.index(t) if t in vocabulary else -1 for t in tokens]
    assert ids.tolist() == expected and known.tolist() == [e >= 0 for e in expected]
    assert {-1} < set(expected), "needs known and unknown tokens"
    assert "Apple" in tokens and "" in tokens  # near misses get the default too
    asset = manifest.directory / "saved_model" / "assets" / "fruit_vocab.txt"
    assert asset.read_text() == vocabulary_file.read_text()


def test_lookup_asset_frozen_graph_fills_its_table_itself(manifests) -> None:
    from tensorflow.core.framework import graph_pb2

    manifest = manifests["lookup_asset"]
    graph = graph_pb2.GraphDef()
    graph.ParseFromString((manifest.directory / "frozen" / "serving_default.pb").read_bytes())
    nodes = {node.name: node for node in graph.node}
    ops = {node.op for node in graph.node}
    assert {"HashTableV2", "LookupTableImportV2", "LookupTableFindV2"} <= ops
    find = next(n for n in graph.node if n.op == "LookupTableFindV2")
    assert any(i.startswith("^") and nodes[i[1:]].op == "LookupTableImportV2" for i in find.input)
    # No resource placeholder a consumer would have to feed.
    assert not [
        n for n in graph.node if n.op == "Placeholder" and n.attr["dtype"].type == 20
    ]  # DT_RESOURCE


def test_tf1_tags_two_meta_graphs_share_variables(manifests) -> None:
    from tfinterop.inspect.savedmodel import read_saved_model

    manifest = manifests["tf1_tags"]
    info = read_saved_model(manifest.directory / "saved_model")
    assert sorted(sorted(m.tags) for m in info.meta_graphs) == [["gpu", "serve"], ["serve"]]
    variables = list((manifest.directory / "saved_model" / "variables").iterdir())
    assert len([p for p in variables if p.name.endswith(".index")]) == 1  # one shared set
    methods = {(tuple(c.tags), c.signature): c.method for c in manifest.cases}
    for tags in (("serve",), ("serve", "gpu")):
        assert methods[(tags, "predict")] == "tensorflow/serving/predict"
        assert methods[(tags, "regress")] == "tensorflow/serving/regress"
        assert methods[(tags, "classify")] == "tensorflow/serving/classify"


def test_tf1_tags_examples_encode_the_predict_inputs(manifests) -> None:
    import tensorflow as tf

    manifest = manifests["tf1_tags"]
    predict = case(manifest, "saved_model", "predict", ["serve"])
    regress = case(manifest, "saved_model", "regress", ["serve", "gpu"])
    classify = case(manifest, "saved_model", "classify", ["serve"])
    examples = read(manifest, regress, "inputs", "input")
    x = read(manifest, predict, "x", "input")
    parsed = [
        tf.train.Example.FromString(e).features.feature["x"].float_list.value for e in examples
    ]
    assert np.array_equal(np.array(parsed, np.float32), x)
    assert np.array_equal(read(manifest, regress, "outputs"), read(manifest, predict, "y"))
    # The Rust xfail is honest only if the examples really are not UTF-8.
    assert any(not _utf8(e) for e in examples)
    scores = read(manifest, classify, "scores")
    assert (np.diff(scores, axis=1) <= 0).all() and np.allclose(scores.sum(axis=1), 1, atol=1e-6)
    classes = read(manifest, classify, "classes")
    assert len({row[0] for row in classes.tolist()}) > 1  # top class depends on the example


def test_image_layout_png_decodes_to_the_exported_input(manifests) -> None:
    from tfinterop.images import decode_png

    manifest = manifests["image_layout"]
    references = {}
    for signature in ("rgb", "rgba", "grey", "palette"):
        for fmt in ("frozen", "saved_model", "tflite"):
            entry = case(manifest, fmt, signature).inputs[0]
            assert entry.image.endswith(".png"), (fmt, signature)
        c = case(manifest, "saved_model", signature)
        image = read(manifest, c, "image", "input")
        assert image.shape == (1, 24, 40, 3) and image.dtype == np.float32
        assert np.array_equal(decode_png(manifest.directory / c.inputs[0].image), image)
        references[signature] = {e.key: read(manifest, c, e.key) for e in c.outputs}
    # Alpha is dropped, not composited: the RGBA photo gives exactly the RGB outputs.
    for key, value in references["rgb"].items():
        assert np.array_equal(references["rgba"][key], value), key
    # Greyscale is replicated into R, G and B.
    grey = references["grey"]["channel_means"][0]
    assert grey[0] == grey[1] == grey[2]
    rgb = references["rgb"]["channel_means"][0]
    assert rgb[0] - rgb[2] > 20  # the photo's channels differ: a swap is visible


def _layout_mistakes(image: np.ndarray) -> dict[str, np.ndarray]:
    """What wrong decoders feed: same shape, wrong placement of the same values."""
    _, height, width, _ = image.shape
    column_major = np.transpose(image[0], (1, 0, 2)).reshape(1, height, width, 3)
    return {
        "column_major_fill": column_major,  # the seed's "column-major" reading of NHWC
        "bgr": image[..., ::-1],
        "flipped_vertically": image[:, ::-1],
        "flipped_horizontally": image[:, :, ::-1],
    }


def test_image_layout_mistakes_fail_the_comparison(
    manifests, project_fixtures, tmp_path: Path
) -> None:
    """Feed each wrong decoding through the Python consumer: every one must fail."""
    from tfinterop.consumers.runners.python_runner import _python_prepare
    from tfinterop.consumers.runners.serve import run_job
    from tfinterop.contract.plan import Job, Plan, PlanTensor
    from tfinterop.contract.records import JobRecord
    from tfinterop.pipeline.cases import cases_from_manifest
    from tfinterop.pipeline.compare import compare_job

    manifest = manifests["image_layout"]
    refs = {
        (r.case.format, r.case.signature): r
        for r in cases_from_manifest(project_fixtures["image_layout"], manifest)
    }
    ref = refs[("saved_model", "rgb")]
    image = read(manifest, ref.case, "image", "input")
    prepare = _python_prepare(Plan())
    statuses = {}
    for name, fed in {"correct": image, **_layout_mistakes(image)}.items():
        assert fed.shape == image.shape
        path = tmp_path / f"{name}.npy"
        tensors.write_tensor(path, np.ascontiguousarray(fed))
        job = Job(
            id=name,
            model=str(manifest.directory / ref.case.model),
            format="saved_model",
            signature=ref.case.signature,
            inputs=[PlanTensor("image", ref.case.inputs[0].tensor, str(path))],
            outputs=[
                PlanTensor(e.key, e.tensor, str(tmp_path / f"{name}-{e.key}.npy"))
                for e in ref.case.outputs
            ],
        )
        cell = compare_job(ref, "python", JobRecord.from_json(run_job(job, prepare)), None)
        statuses[name] = (cell.status, cell.max_abs)
    assert statuses["correct"] == ("pass", 0.0)
    for name, (status, max_abs) in statuses.items():
        if name != "correct":
            assert status == "fail" and max_abs > 1e-2, (name, statuses)


def test_keras3_save_trap_saved_model_reloads_in_python(manifests) -> None:
    """Half of the trap: Python's loader is happy. The other half (C and Rust fail with
    "Could not find variable") is checked end to end in tests/cli/test_interop.py."""
    import tensorflow as tf

    manifest = manifests["keras3_save_trap"]
    c = case(manifest, "saved_model", "serving_default")
    loaded = tf.saved_model.load(str(manifest.directory / c.model))
    logits = loaded.signatures["serving_default"](x=tf.constant(read(manifest, c, "x", "input")))
    assert np.allclose(logits["logits"].numpy(), read(manifest, c, "logits"), atol=1e-6)
    assert np.abs(read(manifest, c, "logits")).max() > 0.1  # not an all-zero model


def test_tflite_models_hold_no_uninitialised_variables(manifests) -> None:
    """Converting a Keras 3 model with the model as trackable_obj leaves VAR_HANDLE ops that
    nothing initialises (NaN outputs); the exporter must have folded the weights in."""
    assert TFLITE_FIXTURES
    for name in TFLITE_FIXTURES:
        manifest = manifests[name]
        tflite = [c for c in manifest.cases if c.format == "tflite"]
        assert tflite, f"{name} exported no tflite case: nothing to check"
        for c in tflite:
            data = (manifest.directory / c.model).read_bytes()
            assert data[4:8] == b"TFL3", (name, c.signature)  # a TFLite flatbuffer at all
            assert b"VarHandle" not in data and b"VAR_HANDLE" not in data, (name, c.signature)


def test_manifest_of_every_fixture_is_json(manifests) -> None:
    for name in CATALOGUE:
        data = json.loads((manifests[name].directory / "manifest.json").read_text())
        assert data["fixture"] == name and data["cases"]
