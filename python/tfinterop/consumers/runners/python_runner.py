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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfinterop import tensors
from tfinterop.consumers.python import LOADER_VARIABLE, SHARE_LOADS_VARIABLE
from tfinterop.consumers.runners.serve import (
    JobError,
    Prepare,
    Runner,
    read_input,
    serve,
    skip_eager_keras_import,
)
from tfinterop.contract import plan as plan_format


def _dtype_name(tf_dtype: Any) -> str:
    import tensorflow as tf

    return "string" if tf_dtype == tf.string else tf_dtype.name


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


AUTO, OBJECT, SESSION = "auto", "object", "session"
LOADERS = (AUTO, OBJECT, SESSION)
"""Values of ``LOADER_VARIABLE`` (set by ``PythonConsumer.loader_environment``)."""


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


def main(argv: list[str] | None = None) -> int:
    skip_eager_keras_import()
    return serve(argv, "tfinterop-python-consumer", consumer_record, _python_prepare)


if __name__ == "__main__":
    raise SystemExit(main())
