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


def _read_input(path: str, key: str, expected_dtype: str) -> np.ndarray:
    try:
        array = tensors.read_tensor(path, expected_dtype)
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
        feeds[tensor] = _read_input(entry.file, entry.key, _dtype_name(tensor.dtype))
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
        feeds[entry.key] = tf.constant(
            _read_input(entry.file, entry.key, _dtype_name(specs[entry.key].dtype))
        )
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


def run_job(job: plan_format.Job, config: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"record": "job", "id": job.id}
    if job.problem:
        raise JobError("plan", job.problem)
    started = time.perf_counter()
    if job.format == "frozen":
        run = _prepare_frozen(job, config)
    else:
        run = _prepare_saved_model(job)
    record["load_s"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        outputs = run()
    except JobError:
        raise
    except Exception as exc:
        raise JobError(
            "run", str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        ) from None
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
    def entries(specs: list[str]) -> list[plan_format.PlanTensor]:
        result = []
        for spec in specs:
            name, _, file = spec.partition("=")
            key, _, tensor = name.partition("@")
            if not file or not key:
                raise plan_format.PlanError(f"expected KEY[@TENSOR]=FILE, got {spec!r}")
            result.append(
                plan_format.PlanTensor(
                    key, tensor or (key if args.format == "frozen" else "-"), file
                )
            )
        return result

    job = plan_format.Job(
        id="job",
        model=args.model,
        format=args.format,
        tags=args.tags.split(","),
        signature=args.signature,
        inputs=entries(args.input),
        outputs=entries(args.output),
        warmup=args.warmup,
        repeat=args.repeat,
    )
    if not job.outputs:
        raise plan_format.PlanError("at least one --output is required")
    intra, _, inter = (args.threads or "0,0").partition(",")
    return plan_format.Plan([job], int(intra or 0), int(inter or 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tfinterop-python-consumer", description=__doc__)
    parser.add_argument("--plan")
    parser.add_argument("--results")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("--model")
    parser.add_argument("--format", choices=plan_format.FORMATS)
    parser.add_argument("--tags", default="serve")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--input", action="append", default=[])
    parser.add_argument("--output", action="append", default=[])
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads")
    args = parser.parse_args(argv)
    if args.version:
        _emit(sys.stdout, consumer_record())
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
        print(f"tfinterop-python-consumer: {exc}", file=sys.stderr)
        return 2

    import tensorflow as tf

    if plan.intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(plan.intra_op_threads)
    if plan.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(plan.inter_op_threads)
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=plan.intra_op_threads,
        inter_op_parallelism_threads=plan.inter_op_threads,
    )
    out: TextIO = open(args.results, "w", encoding="utf-8") if args.results else sys.stdout
    failed = 0
    try:
        _emit(out, consumer_record())
        for job in plan.jobs:
            try:
                record = run_job(job, config)
            except JobError as exc:
                failed += 1
                record = {
                    "record": "job",
                    "id": job.id,
                    "status": "error",
                    "stage": exc.stage,
                    "error": str(exc),
                }
            _emit(out, record)
        max_rss_kb = peak_rss_kb()
        _emit(
            out,
            {"record": "done", "jobs": len(plan.jobs), "failed": failed, "max_rss_kb": max_rss_kb},
        )
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
