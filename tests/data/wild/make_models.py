"""Build the "models from the wild" that today's TensorFlow can still write (see README.md).

``python tests/data/wild/make_models.py OUT_DIR`` writes them under OUT_DIR; the tests call
``build_all`` (through ``runpy``) into a temporary directory, so they are never stale. The
Keras-2 legacy-optimizer model needs TensorFlow 2.12: ``make_legacy_optimizer.py``.

* ``tf1_ref_output/``: a ``tf.compat.v1.saved_model.Builder`` SavedModel (no object graph)
  whose ``serving_default`` returns a ``VariableV2`` read directly (dtype ``float32_ref``)
  next to ``y = x @ w + b``, and an ``int64`` looked up in a vocabulary asset by a table
  the init op fills. TF 2.21's ``tf.saved_model.load`` fails on the ref-typed output
  ("Encountered while creating function '__inference_pruned_...'").
* ``shapeless/``: the same kind of SavedModel, ``y = 2x + 1`` for ``x`` of shape (-1, 1),
  with every signature ``TensorInfo``'s ``tensor_shape`` cleared, as TF 1.0-era exporters
  wrote them: the shape is then unknown, and only the graph knows it.
"""

from __future__ import annotations

import sys
from pathlib import Path

TF1_REF_OUTPUT = "tf1_ref_output"
SHAPELESS = "shapeless"
VOCABULARY = ["zero", "one", "two", "three"]
W = [[2.0], [-1.0]]
B = [0.5]


def _builder_saved_model(path: Path, build_graph) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        inputs, outputs, assets = build_graph(v1, tf)
        session.run(v1.global_variables_initializer())
        session.run(v1.tables_initializer())
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session,
            [v1.saved_model.tag_constants.SERVING],
            signature_def_map={
                "serving_default": v1.saved_model.predict_signature_def(inputs, outputs)
            },
            assets_collection=assets,
            main_op=v1.tables_initializer(),
        )
        builder.save()


def tf1_ref_output(out: Path) -> Path:
    """y = x @ w + b (x float32 (-1, 2)), w itself (ref-typed), and a vocabulary lookup."""
    path = out / TF1_REF_OUTPUT
    vocabulary = out / "vocabulary.txt"
    vocabulary.write_text("".join(f"{word}\n" for word in VOCABULARY))

    def build(v1, tf):  # type: ignore[no-untyped-def]
        x = v1.placeholder(tf.float32, [None, 2], name="x")
        w = v1.Variable(W, name="w", use_resource=False)  # VariableV2: its tensor is a ref
        b = v1.Variable(B, name="b", use_resource=False)
        y = tf.add(tf.matmul(x, w), b, name="y")
        # TextFileInitializer files its (constant) path under ASSET_FILEPATHS: an asset.
        asset = tf.constant(str(vocabulary), name="vocabulary_path")
        table = v1.lookup.StaticHashTable(
            v1.lookup.TextFileInitializer(
                asset, tf.string, v1.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64, v1.lookup.TextFileIndex.LINE_NUMBER,
            ),
            default_value=-1,
        )  # fmt: skip
        two = tf.identity(table.lookup(tf.constant("two")), name="two")
        assets = v1.get_collection(v1.GraphKeys.ASSET_FILEPATHS)
        return {"x": x}, {"y": y, "w": w._ref(), "two": two}, assets

    _builder_saved_model(path, build)
    vocabulary.unlink()  # the SavedModel's assets/ holds its copy: loaders must use that one
    return path


def shapeless(out: Path) -> Path:
    """y = 2x + 1 with the signature's TensorInfo shapes cleared (absent, not unknown)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = out / SHAPELESS

    def build(v1, tf):  # type: ignore[no-untyped-def]
        x = v1.placeholder(tf.float32, [None, 1], name="x")
        y = tf.add(tf.multiply(x, 2.0), 1.0, name="y")
        return {"x": x}, {"y": y}, None

    _builder_saved_model(path, build)
    proto = saved_model_pb2.SavedModel()
    pb = path / "saved_model.pb"
    proto.ParseFromString(pb.read_bytes())
    for signature in proto.meta_graphs[0].signature_def.values():
        for info in [*signature.inputs.values(), *signature.outputs.values()]:
            info.ClearField("tensor_shape")
    pb.write_bytes(proto.SerializeToString())
    return path


def build_all(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    return {TF1_REF_OUTPUT: tf1_ref_output(out), SHAPELESS: shapeless(out)}


if __name__ == "__main__":
    for name, written in build_all(Path(sys.argv[1])).items():
        print(f"{name}: {written}")
