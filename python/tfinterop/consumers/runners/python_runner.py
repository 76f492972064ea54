"""The Python consumer program: the contract's reference implementation in TensorFlow's Python API.

Frozen graphs run in a TF1 ``Session`` (what C and Rust do through the C API), TF2 SavedModels
through ``tf.saved_model.load(...).signatures[key]`` (what a Python deployment does), TF1
SavedModels (no object graph) in a v1 ``Session`` over the MetaGraph, as TF1 serving and
``saved_model_cli run`` load them; a TF2 SavedModel whose object graph cannot be revived falls
back to that too, and each job record's ``loader`` says which way was taken
(``TFINTEROP_PYTHON_LOADER=object|session`` forces one). Together with the C consumer this
locates a failure: same numbers here and in C point at the export, different ones at the
consumer.

Run as ``python -m tfinterop.consumers.runners.python_runner --plan PLAN --results RESULTS``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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


def _dtype_name(tf_dtype: Any) -> str:
    import tensorflow as tf

    return "string" if tf_dtype == tf.string else tf_dtype.name


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


def _tensor_name(entry: plan_format.PlanTensor) -> str:
    """Frozen jobs feed/fetch TENSOR; ``-`` means the KEY is the tensor name."""
    name = entry.key if entry.tensor == "-" else entry.tensor
    return name if ":" in name else f"{name}:0"


def _prepare_frozen(job: plan_format.Job, config: Any) -> Runner:
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
        feeds[tensor] = read_input(entry, _dtype_name(tensor.dtype), tensor.shape)
    fetches = [lookup(entry) for entry in job.outputs]
    return session_runner(session, feeds, fetches, job)


# TensorFlow adopts a numpy feed's buffer when it is aligned for Eigen (at most 64 bytes) and
# copies it on every run otherwise; np.load's buffers are 16-byte aligned.
_FEED_ALIGNMENT = 64


def _aligned(array: np.ndarray) -> np.ndarray:
    """``array`` in a buffer a Session run adopts without copying (strings it always encodes)."""
    if array.dtype.hasobject or (
        array.flags.c_contiguous and array.ctypes.data % _FEED_ALIGNMENT == 0
    ):
        return array
    raw = np.empty(array.nbytes + _FEED_ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % _FEED_ALIGNMENT
    aligned = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    aligned[...] = array
    return aligned


def session_runner(
    session: Any,
    feeds: dict[Any, np.ndarray],
    fetches: list[Any],
    job: plan_format.Job,
    loader: str = "",
    fallback: bool = False,
) -> Runner:
    """A v1 Session run as the C consumer times TF_SessionRun: one call of the callable
    Session::MakeCallable makes (TF_SessionRunCallable), on feeds prepared once; it returns
    numpy arrays aliasing TensorFlow's output buffers, the binding's own result type.
    ``Session.run`` (and ``make_callable`` with feeds, which calls it) would add per-run
    Python bookkeeping of fetches and feeds to the timed region."""
    from tensorflow.core.protobuf import config_pb2

    options = config_pb2.CallableOptions(
        feed=[tensor.name for tensor in feeds], fetch=[tensor.name for tensor in fetches]
    )
    values = [_aligned(array) for array in feeds.values()]
    made: list[Any] = []

    def run() -> list[np.ndarray]:
        if not made:  # on the first run, which builds the executors as C's first run does
            made.append(session._make_callable_from_options(options))
        return made[0](*values)

    def to_arrays(outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
        return {
            e.key: tensors.from_tensorflow(v) for e, v in zip(job.outputs, outputs, strict=True)
        }

    return Runner(run, to_arrays, loader, fallback)


LOADER_VARIABLE = "TFINTEROP_PYTHON_LOADER"
"""How SavedModels are loaded (``tfinterop check --python-loader``): one of ``LOADERS``."""
AUTO, OBJECT, SESSION = "auto", "object", "session"
LOADERS = (AUTO, OBJECT, SESSION)
SHARE_LOADS_VARIABLE = "TFINTEROP_PYTHON_SHARE_LOADS"
"""``1``: jobs on the same SavedModel and tag set share one load (``check`` sets it when no
checked signature writes state): the contract's fresh load per job is kept otherwise."""


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


@dataclass
class LoadedSavedModel:
    """A SavedModel loaded one way or the other, and how (the job record's ``loader``)."""

    how: str
    fallback: bool = False
    """Loaded in a v1 Session because ``tf.saved_model.load`` failed."""
    restored: Any = None
    """``tf.saved_model.load``'s object (object-graph path)."""
    session: Any = None
    meta_graph: Any = None
    """The v1 Session and the MetaGraphDef it was loaded from (session path)."""


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1].strip() if text else repr(exc)


def _has_object_graph(job: plan_format.Job) -> bool:
    """Whether the job's MetaGraph has a SavedObjectGraph (TF2); True when unreadable, so
    the object loader reports what is wrong with the file."""
    try:
        from tensorflow.python.saved_model import loader_impl

        proto = loader_impl.parse_saved_model(job.model)
    except Exception:  # the loaders say why, in their own words
        return True
    for meta_graph in proto.meta_graphs:
        if sorted(meta_graph.meta_info_def.tags) == sorted(job.tags):
            return len(meta_graph.object_graph_def.nodes) > 0
    return True


def _session_load(job: plan_format.Job, config: Any, how: str) -> LoadedSavedModel:
    """TF1 serving's way (``saved_model_cli run``, TF Serving, the C API): a v1 Session over
    the MetaGraph, restored by its saver, assets in place, its init op run."""
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, job.tags, job.model)
    except Exception as exc:
        session.close()
        raise JobError("load", _last_line(exc)) from None
    return LoadedSavedModel(how, session=session, meta_graph=meta_graph)


def _object_load(job: plan_format.Job) -> LoadedSavedModel:
    import tensorflow as tf

    try:
        restored = tf.saved_model.load(job.model, tags=job.tags)
    except Exception as exc:
        raise JobError("load", _last_line(exc)) from None
    return LoadedSavedModel("tf.saved_model.load", restored=restored)


def load_saved_model(job: plan_format.Job, config: Any, loader: str = AUTO) -> LoadedSavedModel:
    """``tf.saved_model.load`` (what a TF2 Python deployment does) for TF2 SavedModels; a v1
    Session for TF1 ones (no object graph: the object loader would wrap their signatures in
    pruned functions, which fail on ref-typed tensors), and as the fallback when the object
    graph cannot be revived (a Keras 2 optimizer TF 2.16+ no longer knows)."""
    if loader == SESSION:
        return _session_load(job, config, "v1 Session (--python-loader session)")
    if loader == AUTO and not _has_object_graph(job):
        return _session_load(
            job, config, "v1 Session: a TF1 SavedModel (no object graph), as TF1 serving loads it"
        )
    try:
        return _object_load(job)
    except JobError as exc:
        if loader == OBJECT:
            raise
        failed = str(exc)
    try:
        loaded = _session_load(
            job, config, f"v1 Session, because tf.saved_model.load failed: {failed}"
        )
    except JobError as exc:
        raise JobError(exc.stage, f"{exc} (after tf.saved_model.load failed: {failed})") from None
    loaded.fallback = True
    return loaded


def _bind_session(job: plan_format.Job, loaded: LoadedSavedModel) -> Runner:
    """The signature's tensors fed and fetched by name (ref-typed outputs included)."""
    session, signatures = loaded.session, loaded.meta_graph.signature_def
    if job.signature not in signatures:
        available = ", ".join(sorted(k for k in signatures if not k.startswith("__"))) or "none"
        raise JobError("resolve", f"signature {job.signature!r} not found; available: {available}")
    signature = signatures[job.signature]

    def lookup(entry: plan_format.PlanTensor, infos: Any, kind: str) -> Any:
        info = infos.get(entry.key)
        if info is None or info.WhichOneof("encoding") != "name":
            what = "no" if info is None else "a non-dense"
            raise JobError(
                "resolve",
                f"signature {job.signature!r} has {what} {kind} {entry.key!r}; "
                f"{kind}s: {sorted(infos)}",
            )
        if entry.tensor != "-" and _tensor_name(entry) != info.name:
            raise JobError(
                "resolve",
                f"{kind} {entry.key!r}: the signature names {info.name}, the plan {entry.tensor}",
            )
        return session.graph.get_tensor_by_name(info.name)

    feeds = {}
    for entry in job.inputs:
        tensor = lookup(entry, signature.inputs, "input")
        feeds[tensor] = read_input(entry, _dtype_name(tensor.dtype.base_dtype), tensor.shape)
    fetches = [lookup(entry, signature.outputs, "output") for entry in job.outputs]
    return session_runner(session, feeds, fetches, job, loaded.how, loaded.fallback)


def _bind_object(job: plan_format.Job, loaded: LoadedSavedModel) -> Runner:
    import tensorflow as tf

    signatures = loaded.restored.signatures
    if job.signature not in signatures:
        available = ", ".join(sorted(signatures.keys())) or "none"
        raise JobError("resolve", f"signature {job.signature!r} not found; available: {available}")
    function = signatures[job.signature]
    specs = function.structured_input_signature[1]
    feeds = {}
    for entry in job.inputs:
        if entry.key not in specs:
            raise JobError(
                "resolve",
                f"signature {job.signature!r} has no input {entry.key!r}; inputs: {sorted(specs)}",
            )
        spec = specs[entry.key]
        feeds[entry.key] = tf.constant(read_input(entry, _dtype_name(spec.dtype), spec.shape))
    output_keys = set(function.structured_outputs)
    for entry in job.outputs:
        if entry.key not in output_keys:
            raise JobError(
                "resolve",
                f"signature {job.signature!r} has no output {entry.key!r}; outputs: {sorted(output_keys)}",
            )

    def run() -> dict[str, Any]:
        # A Python deployment's call (eager: it returns once the function has run).
        return function(**feeds)

    def to_arrays(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
        return {entry.key: tensors.from_tensorflow(outputs[entry.key]) for entry in job.outputs}

    return Runner(run, to_arrays, loaded.how)


def _prepare_saved_model(
    job: plan_format.Job,
    config: Any,
    loader: str = AUTO,
    shared: dict[tuple[str, tuple[str, ...]], LoadedSavedModel | JobError] | None = None,
) -> Runner:
    """Load (or, with ``shared``, reuse an earlier job's load of) the SavedModel, then bind
    the job's signature, inputs and outputs."""
    key = (job.model, tuple(sorted(job.tags)))
    loaded = shared.get(key) if shared is not None else None
    reused = loaded is not None
    if isinstance(loaded, JobError):  # it failed for an earlier job: it would again
        raise JobError(loaded.stage, str(loaded))
    if loaded is None:
        try:
            loaded = load_saved_model(job, config, loader)
        except JobError as exc:
            if shared is not None:
                shared[key] = exc
            raise
        if shared is not None:
            shared[key] = loaded
    runner = (_bind_session if loaded.session is not None else _bind_object)(job, loaded)
    if reused:
        runner.loader += " (reusing this process's earlier load)"
    return runner


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
    for _ in range(job.warmup):
        run()
    steady = []
    for _ in range(job.repeat):
        started = time.perf_counter()
        outputs = run()
        steady.append(time.perf_counter() - started)
        del outputs  # released outside the timer, as C releases its output tensors
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
    loader = os.environ.get(LOADER_VARIABLE) or AUTO
    shared: dict[tuple[str, tuple[str, ...]], LoadedSavedModel | JobError] | None = (
        {} if os.environ.get(SHARE_LOADS_VARIABLE) == "1" else None
    )

    def prepare(job: plan_format.Job) -> Runner:
        if job.format == "frozen":
            return _prepare_frozen(job, config)
        if job.format == "saved_model":
            if loader not in LOADERS:
                raise JobError(
                    "load", f"{LOADER_VARIABLE}={loader!r}: expected one of {', '.join(LOADERS)}"
                )
            return _prepare_saved_model(job, config, loader, shared)
        raise JobError("load", f"this consumer does not load the {job.format} format")

    return prepare


def consumer_record() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "record": "consumer",
        "name": "python",
        "contract": 1,
        "tf_version": tf.__version__,
        "binding": (
            f"TensorFlow Python {tf.__version__} (v1 Session on graphs and TF1 SavedModels, "
            "tf.saved_model.load on TF2 SavedModels)"
        ),
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
