"""The TFLite consumer program: ``.tflite`` models in the LiteRT interpreter, same contract.

Uses ``ai_edge_litert`` (LiteRT, the interpreter's new home) when it is installed and
``tf.lite.Interpreter`` of the pinned TensorFlow otherwise. Each model holds one signature
(the exporter writes one file per fixture signature); inputs and outputs are addressed by
signature key, and the plan's TENSOR names are checked against the model's own.

Run as ``python -m tfinterop.consumers.tflite_runner --plan PLAN --results RESULTS``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from tfinterop import plan as plan_format
from tfinterop import tensors
from tfinterop.consumers.python_runner import (
    JobError,
    Prepare,
    read_input,
    serve,
    skip_eager_keras_import,
)


def _interpreter_class() -> tuple[Any, str, str | None]:
    """The interpreter class, the binding's description, and the TensorFlow version it runs
    (None for LiteRT, which is not TensorFlow). LiteRT is preferred: it is what a Python
    deployment of a .tflite model ships (tf.lite.Interpreter is deprecated), and it starts
    in ~0.5 s where ``import tensorflow`` takes ~3 s."""
    try:
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]

        binding = f"LiteRT {version('ai-edge-litert')} (ai_edge_litert.interpreter)"
        return Interpreter, binding, None
    except ImportError:
        import tensorflow as tf

        binding = f"tf.lite.Interpreter (TensorFlow {tf.__version__})"
        return tf.lite.Interpreter, binding, tf.__version__


def consumer_record() -> dict[str, Any]:
    _, binding, tf_version = _interpreter_class()
    return {
        "record": "consumer",
        "name": "tflite",
        "contract": 1,
        "tf_version": tf_version,
        "binding": binding,
    }


def _dtype_name(dtype: Any) -> str:
    dtype = np.dtype(dtype)
    return "string" if dtype.kind in "OSU" else tensors.dtype_name(np.empty(0, dtype))


def _canonical(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _make_prepare(plan: plan_format.Plan) -> Prepare:
    interpreter_class, _, _ = _interpreter_class()
    threads = plan.intra_op_threads or None

    def prepare(job: plan_format.Job) -> Callable[[], dict[str, np.ndarray]]:
        if job.format != "tflite":
            raise JobError("load", f"this consumer loads tflite models, not {job.format}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
                interpreter = interpreter_class(model_path=job.model, num_threads=threads)
        except Exception as exc:
            raise JobError("load", str(exc).strip().splitlines()[-1] or repr(exc)) from None
        signatures = list(interpreter.get_signature_list())
        if len(signatures) != 1:
            raise JobError(
                "resolve", f"{job.model} has signatures {signatures}; the contract needs one"
            )
        runner = interpreter.get_signature_runner(signatures[0])
        details = {"input": runner.get_input_details(), "output": runner.get_output_details()}

        def lookup(kind: str, entry: plan_format.PlanTensor) -> dict[str, Any]:
            found = details[kind].get(entry.key)
            if found is None:
                raise JobError(
                    "resolve",
                    f"signature {signatures[0]!r} has no {kind} {entry.key!r}; "
                    f"{kind}s: {sorted(details[kind])}",
                )
            if entry.tensor != "-" and _canonical(entry.tensor) != _canonical(found["name"]):
                raise JobError(
                    "resolve",
                    f"{kind} {entry.key!r} resolves to {found['name']!r}, "
                    f"the plan says {entry.tensor!r}",
                )
            return found

        feeds = {
            entry.key: read_input(entry, _dtype_name(lookup("input", entry)["dtype"]))
            for entry in job.inputs
        }
        for entry in job.outputs:
            lookup("output", entry)

        def run() -> dict[str, np.ndarray]:
            # The runner resizes inputs whose shape differs from the model's and reallocates.
            result = runner(**feeds)
            return {e.key: tensors.from_tensorflow(result[e.key]) for e in job.outputs}

        return run

    return prepare


def main(argv: list[str] | None = None) -> int:
    skip_eager_keras_import()  # only matters for the tf.lite.Interpreter fallback
    return serve(argv, "tfinterop-tflite-consumer", consumer_record, _make_prepare)


if __name__ == "__main__":
    raise SystemExit(main())
