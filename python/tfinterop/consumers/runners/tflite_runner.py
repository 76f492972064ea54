"""The TFLite consumer program: ``.tflite`` models in the LiteRT interpreter, same contract.

Uses ``ai_edge_litert`` (LiteRT, the interpreter's new home) when it is installed and
``tf.lite.Interpreter`` of the pinned TensorFlow otherwise. Each model holds one signature
(the exporter writes one file per fixture signature); inputs and outputs are addressed by
signature key, and the plan's TENSOR names are checked against the model's own. The inputs
are set once; the run timers cover ``invoke()`` alone (docs/consumer-contract.md, "Timing").

An output whose TENSOR is ``#N`` (capability ``fetches_tflite_tensors``) is the interpreter's
tensor N of the main subgraph, any intermediate: a job naming one builds its interpreter
with ``experimental_preserve_all_tensors`` so every tensor still holds its value after
``invoke()`` (``tfinterop locate --format tflite``).

Run as ``python -m tfinterop.consumers.runners.tflite_runner --plan PLAN --results RESULTS``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tfinterop import tensors
from tfinterop.consumers.runners.serve import (
    JobError,
    Prepare,
    Runner,
    read_input,
    run_error_text,
    serve,
    skip_eager_keras_import,
)
from tfinterop.contract import plan as plan_format


def _interpreter_class() -> tuple[Any, str, str | None]:
    """The interpreter class, the binding's description, and the TensorFlow version it runs
    (None for LiteRT, which is not TensorFlow). LiteRT is preferred: it is what a Python
    deployment of a .tflite model ships (tf.lite.Interpreter is deprecated), and it starts
    in ~0.5 s where ``import tensorflow`` takes ~3 s."""
    try:
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

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


def _tensor_index(entry: plan_format.PlanTensor) -> int | None:
    """N of an output ``#N`` (an interpreter tensor by index), None for a signature output."""
    if not entry.tensor.startswith("#"):
        return None
    if not entry.tensor[1:].isdigit():
        raise JobError("resolve", f"output {entry.key!r}: {entry.tensor!r} is not #INDEX")
    return int(entry.tensor[1:])


def _make_prepare(plan: plan_format.Plan) -> Prepare:
    interpreter_class, _, _ = _interpreter_class()
    threads = plan.intra_op_threads or None

    def prepare(job: plan_format.Job) -> Runner:
        if job.format != "tflite":
            raise JobError("load", f"this consumer loads tflite models, not {job.format}")
        by_index = {e.key: i for e in job.outputs if (i := _tensor_index(e)) is not None}
        try:
            with warnings.catch_warnings():
                # tf.lite.Interpreter's deprecation notice; LiteRT's "debugging only" notice
                # about preserving every tensor
                warnings.simplefilter("ignore")
                interpreter = interpreter_class(
                    model_path=job.model, num_threads=threads,
                    experimental_preserve_all_tensors=bool(by_index),
                )  # fmt: skip
        except Exception as exc:
            raise JobError("load", str(exc).strip().splitlines()[-1] or repr(exc)) from None
        signatures = list(interpreter.get_signature_list())
        if len(signatures) != 1:
            raise JobError(
                "resolve", f"{job.model} has signatures {signatures}; the contract needs one"
            )
        runner = interpreter.get_signature_runner(signatures[0])
        details = {"input": runner.get_input_details(), "output": runner.get_output_details()}
        # The runner's reference to the interpreter's internals would make invoke() refuse to
        # run (its check that no view into the interpreter's buffers is alive).
        del runner

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
        outputs = {
            entry.key: lookup("output", entry)["index"]
            for entry in job.outputs
            if entry.key not in by_index
        }
        count = len(interpreter.get_tensor_details())
        for key, index in by_index.items():
            if index >= count:
                raise JobError(
                    "resolve", f"output {key!r}: #{index}, but the model has {count} tensors"
                )
            outputs[key] = index
        inputs = {key: found["index"] for key, found in details["input"].items()}
        if sorted(feeds) != sorted(inputs):
            raise JobError(
                "run",
                f"signature {signatures[0]!r} takes {sorted(inputs)}, the job feeds {sorted(feeds)}",
            )
        # invoke() and set_tensor() address the main subgraph: check it is the signature's.
        main = {d["name"]: d["index"] for d in interpreter.get_input_details()}
        main.update((d["name"], d["index"]) for d in interpreter.get_output_details())
        if any(
            main.get(d["name"]) != d["index"] for kind in details.values() for d in kind.values()
        ):
            raise JobError(
                "resolve",
                f"signature {signatures[0]!r} is not the model's main subgraph, "
                "the only one this consumer runs",
            )
        # Set once, as a signature runner would on every call: resized where the file's shape
        # differs from the model's, allocated, copied in. Runs leave input buffers alone.
        try:
            for key, array in feeds.items():
                interpreter.resize_tensor_input(inputs[key], array.shape)
            interpreter.allocate_tensors()
            for key, array in feeds.items():
                interpreter.set_tensor(inputs[key], array)
        except Exception as exc:
            raise JobError("run", run_error_text(exc)) from None

        def to_arrays(_: None) -> dict[str, np.ndarray]:
            # Copies out of the interpreter's buffers, which the next invoke() overwrites.
            return {
                key: tensors.from_tensorflow(interpreter.get_tensor(index))
                for key, index in outputs.items()
            }

        return Runner(interpreter.invoke, to_arrays)

    return prepare


def main(argv: list[str] | None = None) -> int:
    skip_eager_keras_import()  # only matters for the tf.lite.Interpreter fallback
    return serve(argv, "tfinterop-tflite-consumer", consumer_record, _make_prepare)


if __name__ == "__main__":
    raise SystemExit(main())
