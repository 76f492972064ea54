"""The consumer contract's command line and job loop for consumers written in Python
(runners/python_runner.py, runners/tflite_runner.py): parse the plan (or the one-job
shorthand), run each job through the consumer's ``Prepare``, time it as the contract says
(docs/consumer-contract.md "Timing"), write the records. A consumer supplies only how to load
and run a model.
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

from tfinterop import tensors
from tfinterop.contract import plan as plan_format
from tfinterop.errors import UserError
from tfinterop.images import decode_png


class JobError(Exception):
    def __init__(self, stage: str, message: str) -> None:
        super().__init__(message)
        self.stage = stage


def _emit(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(record) + "\n")
    out.flush()


def _dims(shape: Any) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def read_input(
    entry: plan_format.PlanTensor, expected_dtype: str, expected_shape: Any = None
) -> np.ndarray:
    """An input file (``.npy`` or string encoding by graph dtype, or a PNG for ``image``),
    checked like the C and Rust consumers check it: dtype, rank and every dimension the graph
    knows (``expected_shape``, a ``tf.TensorShape``; TensorFlow runs many misshaped feeds)."""
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
    if expected_shape is not None and not expected_shape.is_compatible_with(array.shape):
        raise JobError(
            "read_input",
            f"input {key!r}: file has shape {_dims(array.shape)}, graph expects "
            f"{_dims(expected_shape.as_list() if expected_shape.rank is not None else [])} "
            f"({entry.file})",
        )
    return array


class Runner:
    """Runs a loaded job once: a call is one execution of the model on inputs prepared
    beforehand (all that the run timers cover, docs/consumer-contract.md "Timing") and returns
    the outputs as the runtime gives them; ``to_arrays`` makes host arrays of them by output
    key, untimed (``convert_s``). ``loader`` says how a SavedModel was loaded (job record
    field; empty for the other formats).

    A run failing after the fallback load says so: the error record has no ``loader``."""

    def __init__(
        self,
        run: Callable[[], Any],
        to_arrays: Callable[[Any], dict[str, np.ndarray]],
        loader: str = "",
        fallback: bool = False,
    ) -> None:
        self.run = run
        self.to_arrays = to_arrays
        self.loader = loader
        self.fallback = fallback

    def __call__(self) -> Any:
        try:
            return self.run()
        except Exception as exc:
            if not self.fallback or isinstance(exc, JobError):
                raise
            raise JobError("run", f"{run_error_text(exc)} (loaded as {self.loader})") from None


Prepare = Callable[[plan_format.Job], Runner]
"""Loads a job's model and prepares its inputs; returns what runs it."""


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
    if run.loader:  # how a SavedModel was loaded
        record["loader"] = run.loader
    started = time.perf_counter()
    try:
        outputs = run()
    except JobError:
        raise
    except Exception as exc:
        raise JobError("run", run_error_text(exc)) from None
    record["first_run_s"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        arrays = run.to_arrays(outputs)
    except Exception as exc:  # the model ran: an output the contract cannot carry
        raise JobError("write_output", run_error_text(exc)) from None
    record["convert_s"] = time.perf_counter() - started
    del outputs
    written = []
    for entry in job.outputs:
        array = arrays[entry.key]
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
    for number in range(1, job.warmup + 1):
        _later_run(run, f"warm-up run {number}")
    steady = []
    for number in range(1, job.repeat + 1):
        started = time.perf_counter()
        outputs = _later_run(run, f"timed run {number}")
        steady.append(time.perf_counter() - started)
        del outputs  # released outside the timer, as C releases its output tensors
    record.update(status="ok", steady_s=steady, outputs=written)
    return record


def _later_run(run: Runner, which: str) -> Any:
    """A run after the first: a model that fails only on a later run (state it writes, a
    resource it exhausts) fails its job at ``run`` naming which run, as the C consumer does,
    instead of ending the process and losing the jobs after it."""
    try:
        return run()
    except JobError as exc:
        raise JobError(exc.stage, f"{which} failed: {exc}") from None
    except Exception as exc:
        raise JobError("run", f"{which} failed: {run_error_text(exc)}") from None


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
