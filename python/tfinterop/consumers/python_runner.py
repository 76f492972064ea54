"""The Python consumer program: the contract's reference implementation in TensorFlow's Python API.

Frozen graphs run in a TF1 ``Session`` (what C and Rust do through the C API), SavedModels
through ``tf.saved_model.load(...).signatures[key]`` (what a Python deployment does). Together
with the C consumer this locates a failure: same numbers here and in C point at the export,
different ones at the consumer.

Run as ``python -m tfinterop.consumers.python_runner --plan PLAN --results RESULTS``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from tfinterop import plan as plan_format
from tfinterop import tensors
from tfinterop.errors import UserError
from tfinterop.images import decode_png


class JobError(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def _emit(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def _dtype_name(tf_dtype: Any) -> str:
    import tensorflow as tf

    return "string" if tf_dtype == tf.string else tf_dtype.name


def read_input(entry: plan_format.PlanTensor, expected_dtype: str) -> np.ndarray:
    """An input file (``.npy`` or string encoding by graph dtype, or a PNG for ``image``)."""
    key = entry.key
    try:
        if entry.image:
            if expected_dtype != "float32":
                raise JobError(
                    "read_input",
                    f"input {key!r}: an image feeds float32 but the graph's dtype is "
                    f"{expected_dtype}",
                )
            array = decode_png(entry.file)
        else:
            array = tensors.read_tensor(entry.file, expected_dtype)
    except UserError as exc:
        raise JobError("read_input", f"input {key!r}: {exc}") from None
    found = tensors.dtype_name(array)
    if found != expected_dtype:
        raise JobError(
            "read_input", f"input {key!r}: file has {found}, graph expects {expected_dtype}"
        )
    return array


def _tensor_name(entry: plan_format.PlanTensor) -> str:
    """Frozen jobs feed/fetch TENSOR; ``-`` means the KEY is the tensor name."""
    name = entry.key if entry.tensor == "-" else entry.tensor
    return name if ":" in name else f"{name}:0"


def _prepare_frozen(job: plan_format.Job, config: Any) -> Callable[[], dict[str, np.ndarray]]:
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(Path(job.model).read_bytes())
    except OSError as exc:
        raise JobError("load", f"cannot read {job.model}: {exc.strerror}") from None
    except Exception as exc:
        raise JobError("load", f"{job.model} is not a GraphDef: {exc}") from None
    graph = tf.Graph()
    with graph.as_default():
        try:
            tf.compat.v1.import_graph_def(graph_def, name="")
        except Exception as exc:
            raise JobError("load", str(exc).strip().splitlines()[-1]) from None
    session = tf.compat.v1.Session(graph=graph, config=config)

    def lookup(entry: plan_format.PlanTensor) -> Any:
        name = _tensor_name(entry)
        try:
            return graph.get_tensor_by_name(name)
        except (KeyError, ValueError) as exc:
            raise JobError("resolve", f"tensor {name!r} not found in graph: {exc}") from None

    feeds = {}
    for entry in job.inputs:
        tensor = lookup(entry)
        feeds[tensor] = read_input(entry, _dtype_name(tensor.dtype))
    fetches = [lookup(entry) for entry in job.outputs]

    def run() -> dict[str, np.ndarray]:
        values = session.run(fetches, feed_dict=feeds)
        return {e.key: tensors.from_tensorflow(v) for e, v in zip(job.outputs, values, strict=True)}

    return run


def _prepare_saved_model(job: plan_format.Job) -> Callable[[], dict[str, np.ndarray]]:
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(job.model, tags=job.tags)
    except Exception as exc:
        raise JobError(
            "load", str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        ) from None
    if job.signature not in loaded.signatures:
        available = ", ".join(sorted(loaded.signatures.keys())) or "none"
        raise JobError("resolve", f"signature {job.signature!r} not found; available: {available}")
    function = loaded.signatures[job.signature]
    specs = function.structured_input_signature[1]
    feeds = {}
    for entry in job.inputs:
        if entry.key not in specs:
            raise JobError(
                "resolve",
                f"signature {job.signature!r} has no input {entry.key!r}; inputs: {sorted(specs)}",
            )
        feeds[entry.key] = tf.constant(read_input(entry, _dtype_name(specs[entry.key].dtype)))
    output_keys = set(function.structured_outputs)
    for entry in job.outputs:
        if entry.key not in output_keys:
            raise JobError(
                "resolve",
                f"signature {job.signature!r} has no output {entry.key!r}; outputs: {sorted(output_keys)}",
            )

    def run() -> dict[str, np.ndarray]:
        result = function(**feeds)
        return {entry.key: tensors.from_tensorflow(result[entry.key]) for entry in job.outputs}

    return run


Prepare = Callable[[plan_format.Job], Callable[[], dict[str, np.ndarray]]]
"""Loads a job's model and reads its inputs; returns the function that runs it once."""


# Headers TensorFlow puts before the message of a failed Session.run / function call.
_GENERIC_LINES = ("Graph execution error:", "Detected at node", "Node: ", "File ", "  ")


def run_error_text(exc: BaseException) -> str:
    """The informative line of a run error ("No OpKernel was registered ...", not the
    "Graph execution error:" header), with the op it names."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_GENERIC_LINES)]
    return (useful or lines or [repr(exc)])[0].strip()


def run_job(job: plan_format.Job, prepare: Prepare) -> dict[str, Any]:
    record: dict[str, Any] = {"record": "job", "id": job.id}
    if job.problem:
        raise JobError("plan", job.problem)
    started = time.perf_counter()
    run = prepare(job)
    record["load_s"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        outputs = run()
    except JobError:
        raise
    except Exception as exc:
        raise JobError("run", run_error_text(exc)) from None
    record["first_run_s"] = time.perf_counter() - started
    written = []
    for entry in job.outputs:
        array = outputs[entry.key]
        try:
            dtype = tensors.write_tensor(entry.file, array)
        except (OSError, UserError) as exc:
            raise JobError("write_output", f"output {entry.key!r}: {exc}") from None
        written.append(
            {
                "key": entry.key,
                "tensor": entry.tensor,
                "dtype": dtype,
                "shape": list(array.shape),
                "file": entry.file,
            }
        )
    for _ in range(job.warmup):
        run()
    steady = []
    for _ in range(job.repeat):
        started = time.perf_counter()
        run()
        steady.append(time.perf_counter() - started)
    record.update(status="ok", steady_s=steady, outputs=written)
    return record


def peak_rss_kb() -> int:
    """Peak RSS of this process image (VmHWM): ru_maxrss survives exec and would report the
    harness's peak instead of ours."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _python_prepare(plan: plan_format.Plan) -> Prepare:
    import tensorflow as tf

    if plan.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(plan.intra_op_threads)
    if plan.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(plan.inter_op_threads)
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=plan.intra_op_threads,
        inter_op_parallelism_threads=plan.inter_op_threads,
    )

    def prepare(job: plan_format.Job) -> Callable[[], dict[str, np.ndarray]]:
        if job.format == "frozen":
            return _prepare_frozen(job, config)
        if job.format == "saved_model":
            return _prepare_saved_model(job)
        raise JobError("load", f"this consumer does not load the {job.format} format")

    return prepare


def consumer_record() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "record": "consumer",
        "name": "python",
        "contract": 1,
        "tf_version": tf.__version__,
        "binding": f"TensorFlow Python {tf.__version__} (v1 Session / tf.saved_model.load)",
    }


def _shorthand_plan(args: argparse.Namespace) -> plan_format.Plan:
    def entries(specs: list[str], image: bool = False) -> list[plan_format.PlanTensor]:
        result = []
        for spec in specs:
            name, _, file = spec.partition("=")
            key, _, tensor = name.partition("@")
            if not file or not key:
                raise plan_format.PlanError(f"expected KEY[@TENSOR]=FILE, got {spec!r}")
            result.append(
                plan_format.PlanTensor(
                    key, tensor or (key if args.format == "frozen" else "-"), file, image
                )
            )
        return result

    job = plan_format.Job(
        id="job",
        model=args.model,
        format=args.format,
        tags=args.tags.split(","),
        signature=args.signature,
        inputs=entries(args.input) + entries(args.image, image=True),
        outputs=entries(args.output),
        warmup=args.warmup,
        repeat=args.repeat,
    )
    if not job.outputs:
        raise plan_format.PlanError("at least one --output is required")
    intra, _, inter = (args.threads or "0,0").partition(",")
    return plan_format.Plan([job], int(intra or 0), int(inter or 0))


def serve(
    argv: list[str] | None,
    prog: str,
    record: Callable[[], dict[str, Any]],
    make_prepare: Callable[[plan_format.Plan], Prepare],
) -> int:
    """The contract's command line and job loop; a consumer supplies how to load and run."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--plan")
    parser.add_argument("--results")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("--model")
    parser.add_argument("--format", choices=plan_format.FORMATS)
    parser.add_argument("--tags", default="serve")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--input", action="append", default=[])
    parser.add_argument("--image", action="append", default=[])
    parser.add_argument("--output", action="append", default=[])
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads")
    args = parser.parse_args(argv)
    if args.version:
        _emit(sys.stdout, record())
        return 0
    try:
        if args.plan:
            plan = plan_format.parse(Path(args.plan).read_text(encoding="utf-8"))
        elif args.model and args.format:
            plan = _shorthand_plan(args)
        else:
            raise plan_format.PlanError(
                "give --plan PLAN or --model PATH --format FORMAT --output ..."
            )
    except (OSError, UserError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2

    prepare = make_prepare(plan)
    out: TextIO = open(args.results, "w", encoding="utf-8") if args.results else sys.stdout
    failed = 0
    try:
        _emit(out, record())
        for job in plan.jobs:
            try:
                result = run_job(job, prepare)
            except JobError as exc:
                failed += 1
                result = {
                    "record": "job",
                    "id": job.id,
                    "status": "error",
                    "stage": exc.stage,
                    "error": str(exc),
                }
            _emit(out, result)
        max_rss_kb = peak_rss_kb()
        _emit(
            out,
            {"record": "done", "jobs": len(plan.jobs), "failed": failed, "max_rss_kb": max_rss_kb},
        )
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


def skip_eager_keras_import() -> None:
    """``import tensorflow`` eagerly imports Keras 3 (~1.5 s of a ~3 s import) only to register
    its optimizers; loading and running models needs none of it. With TF_USE_LEGACY_KERAS set
    and tf_keras absent, TensorFlow's ``__init__`` skips that import (ImportError is caught).
    Left alone when tf_keras is installed, where the variable would change what loads."""
    import importlib.util

    if importlib.util.find_spec("tf_keras") is None:
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def main(argv: list[str] | None = None) -> int:
    skip_eager_keras_import()
    return serve(argv, "tfinterop-python-consumer", consumer_record, _python_prepare)


if __name__ == "__main__":
    raise SystemExit(main())
