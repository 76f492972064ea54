"""TFLite writer: one ``.tflite`` flatbuffer per signature, converted from the same concrete
function as the frozen graph."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ...errors import UserError
from ...formats import TFLITE
from ...manifest import Case, TensorEntry
from ..artifacts import TFLITE_DIR


def export_tflite(
    out: Path,
    signature_key: str,
    concrete: Any,
    module: Any,
    inputs: list[TensorEntry],
    outputs: list[TensorEntry],
) -> Case:
    """One ``.tflite`` per signature, converted from the same concrete function; the names to
    feed and fetch come from the converted model's own (only) SignatureDef."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [concrete], _tflite_trackable(module)
    )
    try:
        flatbuffer = converter.convert()
    except Exception as exc:
        lines = [line for line in str(exc).strip().splitlines() if "error" in line.lower()]
        raise UserError(
            f"TFLite conversion of signature {signature_key} failed: "
            f"{(lines or [str(exc).strip() or repr(exc)])[0][:400]} (drop '{TFLITE}' from formats)"
        ) from None
    name = f"{signature_key}.tflite"
    (out / TFLITE_DIR).mkdir(exist_ok=True)
    (out / TFLITE_DIR / name).write_bytes(flatbuffer)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    runners = interpreter.get_signature_list()
    if len(runners) != 1:
        raise UserError(f"converted {name} has {len(runners)} signatures, expected 1")
    runner = interpreter.get_signature_runner(next(iter(runners)))
    details = {"input": runner.get_input_details(), "output": runner.get_output_details()}

    def entries(kind: str, given: list[TensorEntry]) -> list[TensorEntry]:
        found = details[kind]
        if sorted(found) != sorted(e.key for e in given):
            raise UserError(
                f"converted {name}: {kind}s {sorted(found)} differ from the function's "
                f"{sorted(e.key for e in given)}"
            )
        return [TensorEntry(**{**e.__dict__, "tensor": found[e.key]["name"]}) for e in given]

    return Case(
        format=TFLITE,
        signature=signature_key,
        model=f"{TFLITE_DIR}/{name}",
        inputs=entries("input", inputs),
        outputs=entries("output", outputs),
    )


def _tflite_trackable(module: Any) -> Any:
    """What the converter may save: it lowers through tf.saved_model.save(trackable_obj) and
    re-imports the MetaGraph, which on a Keras 3 model is the keras3_save_trap again, silently
    this time: the variables stay uninitialised VAR_HANDLEs and every output is NaN (seen on
    mobilenet_v3). A tf.Module tracking the model's tf.Variables, as Keras' ExportArchive
    does, converts with the weights folded in."""
    import keras
    import tensorflow as tf

    if not isinstance(module, keras.Model):
        return module
    holder = tf.Module()
    holder.tracked_variables = [getattr(v, "value", v) for v in module.variables]
    return holder
