"""``tfinterop check PATH``: run someone else's model through every consumer and compare.

The reference is Python: the ``python`` consumer's first run of the model (TensorFlow's
Python API is what the model was written and tested with). Every consumer that loads the
format, ``python`` included, runs it and is compared with that reference exactly as
``interop`` compares with an export's reference. The reference and the ``python`` row come
from one Python process (one ``import tensorflow``): when no checked signature writes state
the row is a later run of the reference's load, so a model that does not reproduce itself
(random ops, state leaking between runs) shows there; otherwise each job loads afresh. With
``--expected FILE.npz`` (values recorded elsewhere: by whoever trained the model, or a
published test value) every consumer, Python included, is also compared with those, in rows
labelled ``<model> vs expected``. When the reference cannot be produced, the consumers that
ran are compared with each other instead (``<model> consensus`` rows, one per pair), and
their own rows say there is no Python reference.

Python loads TF1 SavedModels (no object graph) in a v1 Session over the MetaGraph, as TF1
serving and the C API do, and falls back to that when ``tf.saved_model.load`` cannot revive
a TF2 SavedModel's objects (``--python-loader`` forces either way). Inspecting the model
needs no ``import tensorflow`` in this process, so the consumers start within a second.

Each consumer loads the model afresh, so a stateful signature (one that applies a training
step) starts from the same restored state in every consumer; the outputs compared are
those of each consumer's first run. Working files (generated inputs, the reference, the
consumers' outputs) go under ``build/check/``.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..compare import compare
from ..consumers import NON_UTF8_STRINGS, Consumer
from ..contract import plan as plan_format
from ..contract.records import JobRecord
from ..errors import UserError
from ..fixtures import Tolerance
from ..inspect import GRAPH_DEF, SAVED_MODEL, Inspection, format_shape, inspect_model
from ..manifest import Case, TensorEntry
from ..pipeline.cases import CaseRef, cell_expectation, signature_label
from ..pipeline.cells import Cell, apply_expectation
from ..pipeline.compare import compare_job
from ..pipeline.plan import build_plan
from ..pipeline.run import ConsumerRun, run_consumer, run_consumers
from ..pipeline.settings import RunSettings

REFERENCE_CONSUMER = "python"
"""Whose outputs are the reference: TensorFlow's own Python API."""
DEFAULT_SIGNATURE = "serving_default"
DEFAULT_DIM = 2
"""Unknown dimensions of generated inputs: 2, so batch-mixing bugs cannot hide behind 1."""
DEFAULT_TOLERANCE = Tolerance(atol=1e-6, rtol=1e-5)
GRAPH_SIGNATURE = "-"
"""Signature column of a frozen graph (it has none)."""
RUNS_KEPT = 3
FLOAT_RANGE = (-1.0, 1.0)
INT_RANGE = (0.0, 9.0)
EXAMPLE_KINDS = ("float", "int", "bytes")
MAX_GENERATED_BYTES = 1 << 30
"""Generated inputs above 1 GiB are refused before anything is allocated: a mistyped
``--dim`` or a model declaring a (2**40,) input must not exhaust the machine's memory."""
MAX_INPUT_BYTES_VARIABLE = "TFINTEROP_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT_BYTES = 4 << 30
"""``--inputs`` archives expanding beyond this (default 4 GiB) are refused before decompression:
a compressed ``.npz`` of zeros is a few MB per GiB, and every consumer loads every input."""
STRING_ELEMENT_BYTES = 64
"""What one generated string element costs (a Python bytes object), for that limit."""


@dataclass(frozen=True)
class FeatureSpec:
    """``--example NAME=float|int|bytes:LENGTH``: one feature of generated tf.Examples."""

    name: str
    kind: str
    length: int

    @classmethod
    def parse(cls, text: str) -> FeatureSpec:
        name, _, rest = text.partition("=")
        kind, _, length = rest.partition(":")
        if not name or kind not in EXAMPLE_KINDS or not length.isdigit() or int(length) < 1:
            raise UserError(
                f"--example {text!r}: expected NAME=TYPE:LENGTH with TYPE one of "
                f"{', '.join(EXAMPLE_KINDS)} and LENGTH >= 1 (e.g. x=float:1)"
            )
        return cls(name, kind, int(length))


@dataclass
class CheckOptions:
    path: Path
    build_dir: Path
    work_dir: Path | None = None
    """Root of working files (default ``build_dir/check``)."""
    tags: list[str] | None = None
    signature: str | None = None
    all_signatures: bool = False
    inputs_file: Path | None = None
    expected_file: Path | None = None
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    seed: int = 0
    dims: dict[str | None, int] = field(default_factory=dict)
    """Input key (None: every input) -> size of its unknown dimensions."""
    shapes: dict[str, list[int]] = field(default_factory=dict)
    ranges: dict[str | None, tuple[float, float]] = field(default_factory=dict)
    """Input key or feature name (None: all) -> value range of generated values."""
    examples: list[FeatureSpec] = field(default_factory=list)
    tolerance: Tolerance = DEFAULT_TOLERANCE
    label: str | None = None
    python_loader: str = "auto"
    """How the Python consumer loads SavedModels: auto, object or session."""


@dataclass
class PreparedCase:
    """One signature (or the graph) ready to run: its inputs written, outputs declared."""

    case: Case
    state_writers: list[str] = field(default_factory=list)
    requires: dict[str, str] = field(default_factory=dict)
    reference_problem: str | None = None
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    generated: dict[str, str] = field(default_factory=dict)
    """Input key -> how it was made (``--inputs``, generated shape and range)."""
    python_load: str = ""
    """How the Python consumer loaded the model for the reference (its job record)."""


@dataclass
class CheckResult:
    label: str
    inspection: Inspection
    cases: list[PreparedCase]
    cells: list[Cell]
    consumer_info: dict[str, dict[str, Any]]
    settings: RunSettings
    work: Path
    tolerance: Tolerance = DEFAULT_TOLERANCE
    problems: list[Cell] = field(default_factory=list)
    """Cases that could not be prepared (all-signatures mode): one error row each."""
    warnings: list[str] = field(default_factory=list)
    """Options that did nothing (``--dim`` on an input without unknown dimensions)."""
    shared_load: bool = False
    """The Python reference and the python row ran on one load (no signature writes state)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.inspection.path),
            "format": self.inspection.format,
            "label": self.label,
            "work_dir": str(self.work),
            "reference": (
                f"outputs of the {REFERENCE_CONSUMER} consumer's own first run; rows "
                "'<model> vs expected' compare with --expected; without a reference, rows "
                "'<model> consensus' compare the consumers with each other"
            ),
            "warnings": self.warnings,
            "shared_load": self.shared_load,
            "cases": [
                {
                    "signature": p.case.signature,
                    "tags": p.case.tags,
                    "stateful": bool(p.state_writers),
                    "state_writers": p.state_writers,
                    "inputs": {
                        e.key: {"tensor": e.tensor, "dtype": e.dtype, "shape": e.shape}
                        for e in p.case.inputs
                    },
                    "outputs": {
                        e.key: {"tensor": e.tensor, "dtype": e.dtype, "shape": e.shape}
                        for e in p.case.outputs
                    },
                    "input_source": p.generated,
                    "reference_problem": p.reference_problem,
                    "python_load": p.python_load,
                    "requires": p.requires,
                    "notes": p.notes,
                }
                for p in self.cases
            ],
            "kernel_problems": [p.as_dict() for p in self.inspection.kernel_problems],
        }


# ------------------------------------------------------------------------------ inputs


GENERIC_NAMES = frozenset(
    {"saved_model", "savedmodel", "model", "export", "frozen", "graph", "serving_default"}
)


def default_label(path: Path) -> str:
    """A model's name in the report: its directory or file name, with the parents' names in
    front while those are generic (TF Serving's version numbers, ``saved_model``,
    ``frozen/serving_default.pb``)."""
    path = path.resolve()
    if path.name in ("saved_model.pb", "saved_model.pbtxt"):
        path = path.parent
    parts = [path.name]
    while len(parts) < 3 and (Path(parts[0]).stem in GENERIC_NAMES or parts[0].isdigit()):
        path = path.parent
        if not path.name:
            break
        parts.insert(0, path.name)
    return "/".join(parts)


def one_line(message: str) -> str:
    """TensorFlow's multi-line errors (kernel lists, ``[[node]]`` trailers) on one line."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _folder(signature: str) -> str:
    return "graph" if signature == GRAPH_SIGNATURE else tensors.safe_file_name(signature)


def _max_input_bytes() -> int:
    value = os.environ.get(MAX_INPUT_BYTES_VARIABLE, "")
    if not value:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{MAX_INPUT_BYTES_VARIABLE}={value!r} is not a number of bytes") from None


def _check_npz_members(path: Path, what: str) -> None:
    """Refuse, from the headers alone, what ``np.load`` would unpickle or over-allocate:
    object arrays, and headers declaring more data than the member holds."""
    if not path.is_file():
        raise UserError(f"{what} {path}: no such file")
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{what} {path}: not an .npz archive (write one with np.savez(FILE, KEY=array))"
        )
    limit = _max_input_bytes()
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
            if expanded > limit:
                raise UserError(
                    f"{what} {path}: its arrays expand to {expanded:,} bytes, over the "
                    f"{limit:,}-byte limit (a compressed .npz can hold far more than its file "
                    f"size); give smaller inputs, or raise {MAX_INPUT_BYTES_VARIABLE}"
                )
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _fortran, dtype = read_header(member)
                    header_size = member.tell()
                if dtype.hasobject:
                    raise UserError(
                        f"{what} {path}: array {name!r} holds Python objects (dtype object), "
                        "which only pickle can load: refused (tfinterop never unpickles); "
                        "store strings as a bytes array or as KEY lengths + KEY.bytes"
                    )
                declared = math.prod(shape) * dtype.itemsize
                if declared > info.file_size - header_size:
                    raise UserError(
                        f"{what} {path}: array {name!r} declares shape {tuple(shape)} "
                        f"({declared} bytes) but holds {info.file_size - header_size}: "
                        "the file is truncated or corrupt"
                    )
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise UserError(f"{what} {path}: not a readable .npz ({exc})") from None


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    """Arrays of an ``.npz`` (never unpickled). ``KEY`` int64 lengths + ``KEY.bytes`` uint8
    is a string tensor in the contract's encoding; ``S``/``U`` arrays are strings too."""
    _check_npz_members(path, what)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise UserError(f"{what} {path}: not a readable .npz without pickles ({exc})") from None
    out: dict[str, np.ndarray] = {}
    for key, array in arrays.items():
        if key.endswith(tensors.BYTES_SUFFIX) and key[: -len(tensors.BYTES_SUFFIX)] in arrays:
            continue
        blob = arrays.get(key + tensors.BYTES_SUFFIX)
        if blob is not None:
            lengths = array.astype(np.int64).reshape(-1)
            data = blob.astype(np.uint8).tobytes()
            if (lengths < 0).any() or int(lengths.sum()) != len(data):
                raise UserError(f"{what} {path}: {key} lengths do not add up to {key}.bytes")
            values = np.empty(array.shape, dtype=object)
            flat = values.reshape(-1)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            for i in range(len(lengths)):
                flat[i] = data[offsets[i] : offsets[i + 1]]
            out[key] = values
        elif array.dtype.kind in "SU":
            out[key] = tensors.as_bytes_array(array)
        else:
            out[key] = array
    return out


def _lookup(arrays: dict[str, np.ndarray], signature: str, key: str, graph: bool) -> str | None:
    """The npz key for ``key``: ``SIGNATURE/KEY`` first, then ``KEY``; graphs also accept
    ``x`` for ``x:0``."""
    candidates = [f"{signature}/{key}", key]
    if graph and key.endswith(":0"):
        candidates.append(key[:-2])
    return next((c for c in candidates if c in arrays), None)


def _fit_dtype(array: np.ndarray, dtype: str, what: str) -> np.ndarray:
    """Cast a user's array to the graph dtype when nothing is lost (float64 -> float32 values
    are rounded, ints must fit); anything else is an error naming both dtypes."""
    found = tensors.dtype_name(array)
    if found == dtype:
        return array
    if dtype == tensors.STRING or found == tensors.STRING or dtype not in tensors.NUMPY_DTYPES:
        raise UserError(f"{what} has dtype {found}, the model expects {dtype}")
    target = tensors.NUMPY_DTYPES[dtype]
    if not np.can_cast(array.dtype, target, "same_kind"):
        raise UserError(f"{what} has dtype {found}, the model expects {dtype}")
    cast = array.astype(target)
    if target.kind in "iub" and not np.array_equal(cast, array):
        raise UserError(f"{what}: values do not fit {dtype}")
    return cast


def _fits(shape: tuple[int, ...], declared: list[int] | None) -> bool:
    if declared is None:
        return True
    return len(shape) == len(declared) and all(
        d < 0 or d == s for s, d in zip(shape, declared, strict=True)
    )


def _resolve_shape(key: str, declared: list[int] | None, options: CheckOptions) -> list[int]:
    if key in options.shapes:
        shape = options.shapes[key]
        if not _fits(tuple(shape), declared):
            raise UserError(
                f"--shape {key}: {format_shape(shape)} does not fit the model's "
                f"{format_shape(declared)} (-1: any size)"
            )
        return shape
    if declared is None:
        raise UserError(
            f"input {key!r} has unknown rank: give its shape with --shape {key}=D0,D1,... "
            "or its values with --inputs FILE.npz"
        )
    size = options.dims.get(key, options.dims.get(None, DEFAULT_DIM))
    return [size if d < 0 else d for d in declared]


def _refuse_huge(key: str, dtype: str, shape: list[int]) -> None:
    """Before allocating: a generated input above ``MAX_GENERATED_BYTES`` is an error."""
    count = math.prod(shape)
    # Floats are drawn as float64 (complex: two of them) and then cast.
    itemsize = (
        STRING_ELEMENT_BYTES
        if dtype not in tensors.NUMPY_DTYPES
        else max(tensors.NUMPY_DTYPES[dtype].itemsize, 8)
    )
    if count * itemsize > MAX_GENERATED_BYTES:
        raise UserError(
            f"input {key!r}: generating shape {tuple(shape)} ({count:.3g} {dtype} elements) "
            f"needs more than {MAX_GENERATED_BYTES >> 30} GiB: give smaller sizes with "
            f"--dim/--shape, or the values with --inputs FILE.npz"
        )


def _range(options: CheckOptions, name: str, default: tuple[float, float]) -> tuple[float, float]:
    return options.ranges.get(name, options.ranges.get(None, default))


def _examples(count: int, options: CheckOptions, rng: np.random.Generator) -> np.ndarray:
    """``count`` serialized tf.Example protos with the ``--example`` features."""
    from tensorflow.core.example import example_pb2

    out = np.empty(count, dtype=object)
    for i in range(count):
        example = example_pb2.Example()
        for spec in options.examples:
            feature = example.features.feature[spec.name]
            if spec.kind == "float":
                low, high = _range(options, spec.name, FLOAT_RANGE)
                feature.float_list.value.extend(rng.uniform(low, high, spec.length).tolist())
            elif spec.kind == "int":
                low, high = _range(options, spec.name, INT_RANGE)
                feature.int64_list.value.extend(
                    rng.integers(int(low), int(high), spec.length, endpoint=True).tolist()
                )
            else:
                feature.bytes_list.value.extend(
                    f"v{int(v)}".encode() for v in rng.integers(0, 1000, spec.length)
                )
        out[i] = example.SerializeToString()
    return out


def generate_input(
    key: str, dtype: str, declared: list[int] | None, options: CheckOptions, rng: Any
) -> tuple[np.ndarray, str]:
    """Values for one input from its dtype and shape; returns them and how they were made."""
    if (
        dtype == tensors.STRING
        and options.examples
        and declared is None
        and key not in options.shapes
    ):
        declared = [-1]  # a batch of serialized Examples (TF1 tf_example placeholders)
    shape = _resolve_shape(key, declared, options)
    _refuse_huge(key, dtype, shape)
    if dtype == tensors.STRING:
        count = math.prod(shape)
        if options.examples:
            features = ", ".join(f"{s.name}={s.kind}:{s.length}" for s in options.examples)
            values = _examples(count, options, rng).reshape(shape)
            return values, f"generated {tuple(shape)} serialized tf.Example ({features})"
        values = np.array([f"tfinterop-{i}".encode() for i in range(count)], dtype=object)
        return values.reshape(shape), (
            f"generated {tuple(shape)} strings 'tfinterop-N' (serialized tf.Example inputs: "
            "--example NAME=float:1)"
        )
    if dtype not in tensors.NUMPY_DTYPES:
        raise UserError(
            f"input {key!r} has dtype {dtype}, which the consumer contract cannot carry "
            f"(supported: {', '.join(tensors.SUPPORTED_DTYPES)})"
        )
    target = tensors.NUMPY_DTYPES[dtype]
    if target.kind == "b":
        values = np.asarray(rng.integers(0, 2, shape)).astype(bool)
        return values, f"generated {tuple(shape)} random bools"
    if target.kind in "iu":
        low, high = _range(options, key, INT_RANGE)
        info = np.iinfo(target)
        low, high = max(int(low), int(info.min)), min(int(high), int(info.max))
        values = np.asarray(rng.integers(low, high, shape, endpoint=True)).astype(target)
        return values, f"generated {tuple(shape)} {dtype} in [{low}, {high}]"
    low, high = _range(options, key, FLOAT_RANGE)
    values = np.asarray(rng.uniform(low, high, shape))
    if target.kind == "c":
        values = values + 1j * rng.uniform(low, high, shape)
    return values.astype(target), f"generated {tuple(shape)} {dtype} uniform in [{low:g}, {high:g})"


def _non_utf8(array: np.ndarray) -> bool:
    if array.dtype != object:
        return False
    for value in array.reshape(-1):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


# ------------------------------------------------------------------------------- cases


@dataclass
class _Spec:
    """What a case feeds and fetches, before inputs exist."""

    signature: str
    tags: list[str]
    method: str
    inputs: list[tuple[str, str, str, list[int] | None]]
    """(key, tensor, dtype, shape)."""
    outputs: list[tuple[str, str, str]]
    """(key, tensor, dtype)."""
    state_writers: list[str]
    notes: list[str]


def _saved_model_specs(inspection: Inspection, options: CheckOptions) -> list[_Spec]:
    if options.input_names or options.output_names:
        raise UserError("--input/--output are for frozen graphs; a SavedModel has signatures")
    meta = inspection.meta_graph(options.tags)
    callable_keys = [s.key for s in meta.signatures if s.callable]
    if options.all_signatures:
        if options.signature:
            raise UserError("give --signature or --all-signatures, not both")
        keys = callable_keys
    else:
        keys = [options.signature or DEFAULT_SIGNATURE]
        if options.signature is None and DEFAULT_SIGNATURE not in callable_keys:
            if len(callable_keys) != 1:
                raise UserError(
                    f"{inspection.path} has no {DEFAULT_SIGNATURE} signature; choose one with "
                    f"--signature ({', '.join(callable_keys) or 'none'}) or --all-signatures"
                )
            keys = callable_keys
    if not keys:
        raise UserError(f"{inspection.path}: MetaGraph {','.join(meta.tags)} has no signatures")
    specs = []
    for key in keys:
        signature = meta.signature(key)
        if not signature.callable:
            raise UserError(f"{key} runs at load time; it is not a signature to check")
        specs.append(
            _Spec(
                signature=key,
                tags=list(meta.tags),
                method=signature.method_name,
                inputs=[(k, t.name, t.dtype, t.shape) for k, t in sorted(signature.inputs.items())],
                outputs=[(k, t.name, t.dtype) for k, t in sorted(signature.outputs.items())],
                state_writers=signature.state_writers,
                notes=list(signature.notes),
            )
        )
    return specs


def _graph_specs(inspection: Inspection, options: CheckOptions) -> list[_Spec]:
    from ..inspect import graphdef

    if options.tags or options.signature or options.all_signatures:
        raise UserError("--tags/--signature/--all-signatures are for SavedModels, not graphs")
    analysis = inspection.graph
    assert analysis is not None
    graph_def = graphdef.load_graph_def(inspection.path)
    nodes = {node.name: node for node in graph_def.node}
    input_names = [graphdef.canonical_tensor(n) for n in options.input_names] or [
        i.name for i in analysis.inputs if i.dtype != "resource"
    ]
    output_names = [graphdef.canonical_tensor(n) for n in options.output_names] or [
        o.name for o in analysis.outputs
    ]
    if not output_names:
        raise UserError(f"{inspection.path}: no likely outputs found; name them with --output")
    for name in input_names + output_names:
        if graphdef.tensor_parts(name)[0] not in nodes:
            raise UserError(f"{inspection.path} has no op {graphdef.tensor_parts(name)[0]!r}")
    specs, import_error = graphdef.tensor_specs(graph_def, input_names + output_names)
    for name in input_names:
        if not specs[name][0]:
            raise UserError(
                f"cannot tell the dtype of input {name}: TensorFlow cannot import the graph "
                f"({import_error})"
            )
    uses = graphdef.reachable_ops(graph_def, output_names, input_names)
    return [
        _Spec(
            signature=GRAPH_SIGNATURE,
            tags=[],
            method="",
            inputs=[(n, n, specs[n][0], specs[n][1]) for n in input_names],
            outputs=[(n, n, specs[n][0]) for n in output_names],
            state_writers=graphdef.state_writers(uses),
            notes=[],
        )
    ]


def _prepare(
    spec: _Spec,
    model: Path,
    fmt: str,
    options: CheckOptions,
    given: dict[str, np.ndarray] | None,
    expected: dict[str, np.ndarray] | None,
    work: Path,
) -> PreparedCase:
    graph = fmt == "frozen"
    folder = _folder(spec.signature)
    rng = np.random.default_rng([options.seed, *spec.signature.encode()])
    prepared = PreparedCase(
        case=Case(
            format=fmt,
            signature=spec.signature,
            model=str(model),
            inputs=[],
            outputs=[],
            tags=spec.tags,
            method=spec.method,
        ),
        state_writers=spec.state_writers,
        notes=list(spec.notes),
    )
    for key, tensor, dtype, declared in spec.inputs:
        if not tensor:
            raise UserError(f"signature {spec.signature}: input {key!r} is not a dense tensor")
        what = f"input {key!r}" + ("" if graph else f" of {spec.signature}")
        found = _lookup(given, spec.signature, key, graph) if given is not None else None
        if found is not None and given is not None:
            array = _fit_dtype(given[found], dtype, what)
            if not _fits(array.shape, declared):
                raise UserError(
                    f"{what}: shape {format_shape(list(array.shape))} does not fit the model's "
                    f"{format_shape(declared)} (-1: any size); fix the array in --inputs"
                )
            prepared.generated[key] = f"--inputs {found}"
        else:  # inputs --inputs leaves out are generated (and the report says so)
            try:
                array, how = generate_input(key, dtype, declared, options, rng)
            except UserError as exc:
                if given is None:
                    raise
                raise UserError(
                    f"--inputs has no array for input {key!r} and it cannot be generated: {exc}"
                ) from None
            prepared.generated[key] = how
        path = work / "inputs" / folder / f"{tensors.safe_file_name(key)}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors.write_tensor(path, array)
        prepared.case.inputs.append(
            TensorEntry(key, tensor, tensors.dtype_name(array), list(array.shape), str(path))
        )
        if _non_utf8(array):
            prepared.requires[NON_UTF8_STRINGS] = (
                f"input {key!r} holds bytes that are not valid UTF-8 "
                "(serialized tf.Example with float or int features always does)"
            )
    for key, tensor, dtype in spec.outputs:
        if not tensor:
            raise UserError(f"signature {spec.signature}: output {key!r} is not a dense tensor")
        path = work / "reference" / folder / f"{tensors.safe_file_name(key)}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        prepared.case.outputs.append(TensorEntry(key, tensor, dtype, [], str(path)))
    if expected is not None:
        for entry in prepared.case.outputs:
            found = _lookup(expected, spec.signature, entry.key, graph)
            if found is not None:  # dtype "" = unknown until Python ran: take the file's
                what = f"--expected {found}"
                array = expected[found]
                prepared.expected[entry.key] = (
                    _fit_dtype(array, entry.dtype, what) if entry.dtype else array
                )
    return prepared


# --------------------------------------------------------------------------------- run


def _work_dir(options: CheckOptions, label: str) -> Path:
    root = options.work_dir or options.build_dir / "check"
    digest = hashlib.sha256(str(options.path.resolve()).encode()).hexdigest()[:8]
    model_dir = root / f"{tensors.safe_file_name(label)}-{digest}"
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        old = sorted(
            (p for p in model_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
        )
        for path in old[: max(0, len(old) - RUNS_KEPT + 1)]:
            shutil.rmtree(path, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%d-%H%M%S')}-", dir=model_dir))
    except OSError as exc:
        raise UserError(
            f"cannot write working files under {root}: {exc.strerror or exc} "
            "(choose another --work-dir)"
        ) from None


REFERENCE_JOB = "reference/{index}"


@dataclass
class PythonRun:
    """The one Python process of a check: the reference jobs, then the python row's jobs."""

    run: ConsumerRun | None
    missing: str | None
    rows: bool
    """Whether the python consumer was chosen (its row's jobs are in the plan)."""

    def failure(self) -> str | None:
        if self.missing:
            return self.missing
        if self.run is not None and self.run.failure:
            return self.run.failure.describe()
        return None


def _python_environment(
    settings: RunSettings, options: CheckOptions, share: bool
) -> dict[str, str]:
    from ..consumers.runners.python_runner import LOADER_VARIABLE, SHARE_LOADS_VARIABLE

    return {
        **settings.environment,
        LOADER_VARIABLE: options.python_loader,
        SHARE_LOADS_VARIABLE: "1" if share else "0",
    }


def _python_run(
    python: Consumer,
    prepared: list[PreparedCase],
    refs: list[CaseRef],
    work: Path,
    settings: RunSettings,
    options: CheckOptions,
    *,
    rows: bool,
    share: bool,
) -> PythonRun:
    """One Python process computes the reference and, when python is a chosen consumer, its
    row: ``import tensorflow`` (2-3 s) is paid once. Reference outputs are written straight
    into ``reference/``. With ``share`` (no checked signature writes state) the row's jobs
    reuse the reference's load, so the row compares a later run of the same load with the
    first (random ops and state leaking between runs still show); otherwise every job loads
    the model afresh, as each consumer does.

    Updates the cases (output dtypes and shapes, requirements, how Python loaded them) and
    the refs (why there is no reference) in place."""
    plan = plan_format.Plan(
        intra_op_threads=settings.threads[0], inter_op_threads=settings.threads[1]
    )
    for index, item in enumerate(prepared):
        case = item.case
        plan.jobs.append(
            plan_format.Job(
                id=REFERENCE_JOB.format(index=index),
                model=case.model,
                format=case.format,
                tags=case.tags or ["serve"],
                signature=case.signature,
                inputs=[plan_format.PlanTensor(e.key, e.tensor, e.file) for e in case.inputs],
                outputs=[plan_format.PlanTensor(e.key, e.tensor, e.file) for e in case.outputs],
                warmup=0,
                repeat=1,
            )
        )
    missing = settings.unavailable(python)
    run_dir = work / "python-run"
    if rows:
        plan.jobs += build_plan(
            python,
            refs,
            run_dir / "row",
            warmup=settings.warmup,
            repeat=settings.repeat,
            threads=settings.threads,
        ).jobs
    run: ConsumerRun | None = None
    if not missing:
        run = run_consumer(
            python,
            plan,
            run_dir,
            settings.build_dir,
            timeout_s=settings.timeout_s,
            environment=_python_environment(settings, options, share),
        )
    result = PythonRun(run, missing, rows)
    for index, item in enumerate(prepared):
        record = run.jobs.get(REFERENCE_JOB.format(index=index)) if run else None
        if record is None:
            why = result.failure() or "no record"
            item.reference_problem = f"{REFERENCE_CONSUMER} (the reference) did not run: {why}"
        elif not record.ok:
            item.reference_problem = (
                f"{REFERENCE_CONSUMER} (the reference) failed: "
                f"[{record.stage or '?'}] {one_line(record.error or '')}"
            )
        refs[index].reference_problem = item.reference_problem
        if record is not None and record.loader:
            item.python_load = record.loader
        if item.reference_problem or record is None:
            continue
        written = {o.key: o for o in record.outputs}
        for entry in item.case.outputs:
            produced = written.get(entry.key)
            if produced is not None and isinstance(produced.dtype, str):
                entry.dtype = produced.dtype
            shape = produced.shape if produced is not None else None
            entry.shape = list(shape) if isinstance(shape, list) else []
            if entry.dtype == tensors.STRING and _non_utf8(
                tensors.read_tensor(entry.file, tensors.STRING)
            ):
                item.requires.setdefault(
                    NON_UTF8_STRINGS, f"output {entry.key!r} holds bytes that are not valid UTF-8"
                )
    return result


def _python_cells(
    python: Consumer, result: PythonRun, refs: list[CaseRef]
) -> tuple[list[Cell], dict[str, Any]]:
    """The python row (as ``run_consumers`` makes rows) and what the consumer reported."""
    run = result.run
    failure = result.failure()
    if run is not None and run.protocol_errors and not failure:
        failure = f"{python.name} broke the contract: {run.protocol_errors[0]}"
    cells = []
    for index, ref in enumerate(refs):
        expectation = cell_expectation(python, ref)
        if expectation is not None and expectation.kind == "skip":
            cell = Cell(ref.fixture, ref.case.format, ref.label, python.name, "skip")
            cells.append(apply_expectation(cell, expectation))
            continue
        record = run.jobs.get(ref.job_id) if run else None
        cell = compare_job(ref, python.name, record, failure)
        reference = run.jobs.get(REFERENCE_JOB.format(index=index)) if run else None
        if record and reference and "reusing" in (record.loader or ""):
            cell.load_s = reference.load_s  # the load it shares, not the lookup
        cells.append(apply_expectation(cell, expectation))
    info: dict[str, Any] = {}
    if run is not None:
        info = {
            **run.info,
            "max_rss_kb": run.done.max_rss_kb,
            "wall_s": round(run.wall_s, 3),
        }
    return cells, info


def _case_ref(item: PreparedCase, tolerance: Tolerance, label: str) -> CaseRef:
    return CaseRef(
        label,
        item.case,
        Path("/"),
        lambda key: tolerance,
        lambda consumer, fmt, signature: None,
        item.requires,
        reference_problem=item.reference_problem,
    )


def _expected_cells(
    consumers: list[Consumer],
    runs: dict[str, ConsumerRun],
    prepared: list[PreparedCase],
    label: str,
    work: Path,
    main_refs: list[CaseRef],
    missing: dict[str, str | None],
) -> list[Cell]:
    """Every consumer's outputs against ``--expected`` (the outputs it covers)."""
    cells = []
    for item, main_ref in zip(prepared, main_refs, strict=True):
        if not item.expected:
            continue
        outputs = []
        for entry in item.case.outputs:
            if entry.key not in item.expected:
                continue
            path = (
                work
                / "expected"
                / _folder(item.case.signature)
                / f"{tensors.safe_file_name(entry.key)}.npy"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            dtype = tensors.write_tensor(path, item.expected[entry.key])
            outputs.append(
                TensorEntry(
                    entry.key, entry.tensor, dtype, list(item.expected[entry.key].shape), str(path)
                )
            )
        case = Case(**{**item.case.__dict__, "outputs": outputs})
        ref = CaseRef(
            f"{label} vs expected",
            case,
            Path("/"),
            main_ref.tolerance_for,
            main_ref.expectation_for,
            main_ref.requires,
        )
        for consumer in consumers:
            expectation = cell_expectation(consumer, ref)
            run = runs.get(consumer.name)
            record = run.jobs.get(main_ref.job_id) if run else None
            failure = missing.get(consumer.name)
            if run is not None and run.failure:
                failure = run.failure.describe()
            cell = compare_job(ref, consumer.name, record, failure)
            if expectation is not None and expectation.kind == "skip":
                cell = Cell(cell.fixture, cell.format, cell.signature, consumer.name, "skip")
            cells.append(apply_expectation(cell, expectation))
    return cells


def run_check(
    options: CheckOptions,
    consumers: list[Consumer],
    settings: RunSettings,
    *,
    on_phase: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> CheckResult:
    """Inspect, prepare inputs, run the Python reference, run every consumer, compare."""
    from ..consumers import by_name

    inspection = inspect_model(options.path, options.build_dir)
    if inspection.missing_weights:  # every consumer would fail to load: say it once, now
        raise UserError(inspection.missing_weights)
    label = options.label or default_label(inspection.path)
    fmt = "saved_model" if inspection.format == SAVED_MODEL else "frozen"
    assert inspection.format in (SAVED_MODEL, GRAPH_DEF)
    specs = (
        _saved_model_specs(inspection, options)
        if fmt == "saved_model"
        else _graph_specs(inspection, options)
    )
    given = _load_npz(options.inputs_file, "--inputs") if options.inputs_file else None
    expected = _load_npz(options.expected_file, "--expected") if options.expected_file else None
    runnable = [c for c in consumers if c.supports(fmt)]
    if not runnable:
        names = ", ".join(c.name for c in consumers)
        raise UserError(f"none of the chosen consumers ({names}) loads the {fmt} format")
    work = _work_dir(options, label)
    prepared: list[PreparedCase] = []
    problems: list[Cell] = []
    model = inspection.path.resolve()
    for spec in specs:
        try:
            prepared.append(_prepare(spec, model, fmt, options, given, expected, work))
        except UserError as exc:
            if not options.all_signatures:
                raise
            problems += [
                Cell(label, fmt, spec.signature, c.name, "error", f"cannot check: {exc}")
                for c in runnable
            ]
    _check_keys(given, expected, specs, fmt == "frozen")
    warnings = _dim_warnings(specs, options, given, fmt == "frozen")
    for warning in warnings:
        if on_warning:
            on_warning(warning)
    if any(ch in str(model) + str(work) for ch in "\t\n\r"):
        raise UserError(f"{model}: paths with tabs or newlines cannot go into a plan")
    settings.runs_dir = work / "runs"
    refs = [_case_ref(item, options.tolerance, label) for item in prepared]
    runs: dict[str, ConsumerRun] = {}
    if on_phase:
        on_phase(
            f"running {len(prepared)} case(s): the {REFERENCE_CONSUMER} reference, then "
            f"comparing {', '.join(c.name for c in runnable)}"
        )
    python = by_name([REFERENCE_CONSUMER])[0]
    others = [c for c in runnable if c.name != REFERENCE_CONSUMER]
    with_row = len(others) < len(runnable)
    share = not any(item.state_writers for item in prepared)
    # Python (reference and row, one process) runs alongside the other consumers, all started
    # at once; each one's completion waits for the reference, so comparing starts only once
    # the reference files exist. (Running Rust and C one after the other beside Python, so
    # that three processes do not share two cores, measured no faster: 1.63 vs 1.59 x
    # saved_model_cli on MobileNetV3, 6 alternating runs each.)
    with ThreadPoolExecutor(max_workers=1) as pool:
        reference = pool.submit(
            _python_run, python, prepared, refs, work, settings, options, rows=with_row, share=share
        )

        def done(run: ConsumerRun) -> None:
            runs[run.consumer] = run
            reference.result()

        other_cells, consumer_info, _ = (
            run_consumers(others, refs, settings, on_done=done) if others else ([], {}, {})
        )
        python_result = reference.result()
    cells: list[Cell] = []
    records = {name: run.jobs for name, run in runs.items()}
    if with_row:
        python_cells, python_info = _python_cells(python, python_result, refs)
        cells += python_cells
        consumer_info = {python.name: python_info, **consumer_info}
        if python_result.run is not None:
            records[python.name] = python_result.run.jobs
    cells += other_cells
    cells = _without_reference(cells, refs, with_row, expected is not None)
    cells += _consensus_cells(refs, records, [c.name for c in runnable], options.tolerance)
    for cell in cells:
        cell.message = one_line(cell.message)
    if expected is not None:
        missing = {c.name: settings.unavailable(c) for c in runnable}
        if with_row:
            missing[python.name] = python_result.failure()
            if python_result.run is not None:
                runs[python.name] = python_result.run
        for cell in _expected_cells(runnable, runs, prepared, label, work, refs, missing):
            cell.message = one_line(cell.message)
            cells.append(cell)
    return CheckResult(
        label=label,
        inspection=inspection,
        cases=prepared,
        cells=problems + cells,
        consumer_info=consumer_info,
        settings=settings,
        work=work,
        tolerance=options.tolerance,
        problems=problems,
        warnings=warnings,
        shared_load=share,
    )


NOTHING_TO_COMPARE = "ran, but there is nothing to compare with: "
"""How ``compare_job`` starts the message of a consumer that ran while the reference failed."""


def _without_reference(
    cells: list[Cell], refs: list[CaseRef], with_row: bool, expected: bool
) -> list[Cell]:
    """A consumer that ran while the reference failed is not in error: its row says it was
    compared by consensus (and --expected) instead. The failure stays visible: the python
    row is an error, or, when python is not a chosen consumer, a ``python (reference)`` row."""
    problems = {(r.case.format, r.label): r.reference_problem for r in refs if r.reference_problem}
    instead = "the consensus rows" + (" and the 'vs expected' rows" if expected else "")
    out = []
    for cell in cells:
        problem = problems.get((cell.format, cell.signature))
        if (
            problem
            and cell.status == "error"
            and cell.consumer != REFERENCE_CONSUMER
            and cell.message.startswith(NOTHING_TO_COMPARE)
        ):
            cell.status = "skip"
            cell.message = f"no Python reference ({problem}); its outputs are compared in {instead}"
        out.append(cell)
    if not with_row:
        for ref in refs:
            if ref.reference_problem:
                out.append(
                    Cell(
                        ref.fixture,
                        ref.case.format,
                        ref.label,
                        f"{REFERENCE_CONSUMER} (reference)",
                        "error",
                        ref.reference_problem,
                    )
                )
    return out


def _consensus_cell(
    ref: CaseRef,
    first: tuple[str, JobRecord],
    second: tuple[str, JobRecord],
    tolerance: Tolerance,
) -> Cell:
    """``second``'s outputs against ``first``'s, under the check's tolerance."""
    (a, record_a), (b, record_b) = first, second
    cell = Cell(f"{ref.fixture} consensus", ref.case.format, ref.label, f"{a} vs {b}", "fail")
    written = [{o.key: o for o in record.outputs} for record in (record_a, record_b)]
    messages = []
    for entry in ref.case.outputs:
        output_a, output_b = (w.get(entry.key) for w in written)
        if output_a is None or output_b is None:
            who = a if output_a is None else b
            messages.append(f"output {entry.key}: not written by {who}")
            continue
        try:
            value_a = tensors.read_tensor(output_a.file, output_a.dtype)
            value_b = tensors.read_tensor(output_b.file, output_b.dtype)
        except Exception as exc:  # a garbage output file is a failed row, not a crash
            messages.append(f"output {entry.key}: unreadable ({exc})")
            continue
        result = compare(entry.key, value_b, value_a, tolerance)
        cell.outputs.append(result)
        if not result.passed:
            messages.append(result.summary())
    errors = [o.max_abs for o in cell.outputs if o.max_abs is not None]
    cell.max_abs = max(errors, default=None)
    cell.max_rel = max((o.max_rel for o in cell.outputs if o.max_rel is not None), default=None)
    cell.status = "fail" if messages else "pass"
    if messages:
        cell.message = f"no Python reference: {b} vs {a}: " + " || ".join(messages)
    else:
        worst = "equal" if not cell.max_abs else f"worst |diff| {cell.max_abs:.3g}"
        cell.message = (
            f"no Python reference: {a} and {b} agree ({worst}; atol={tolerance.atol:g}, "
            f"rtol={tolerance.rtol:g})"
        )
    return cell


def _consensus_cells(
    refs: list[CaseRef],
    records: dict[str, dict[str, JobRecord]],
    order: list[str],
    tolerance: Tolerance,
) -> list[Cell]:
    """Where there is no reference, every pair of consumers that ran compared with each
    other: one row per pair, naming it, with its worst difference."""
    cells = []
    for ref in refs:
        if not ref.reference_problem:
            continue
        ran = [(name, records[name].get(ref.job_id)) for name in order if name in records]
        ok = [(name, r) for name, r in ran if r is not None and r.ok]
        for first, second in itertools.combinations(ok, 2):
            cells.append(_consensus_cell(ref, first, second, tolerance))
    return cells


def _dim_warnings(
    specs: list[_Spec], options: CheckOptions, given: dict[str, np.ndarray] | None, graph: bool
) -> list[str]:
    """``--dim`` that can size nothing: a key naming no input is refused; a key (or a bare
    ``--dim N``) whose inputs have no unknown dimension to size is a warning naming them."""
    inputs = [
        (spec.signature, key, dtype, shape)
        for spec in specs
        for key, _, dtype, shape in spec.inputs
    ]
    keys = sorted({key for _, key, _, _ in inputs})
    for key, size in options.dims.items():
        if key is not None and key not in keys:
            raise UserError(
                f"--dim {key}={size}: the model has no input {key!r} (inputs: "
                f"{', '.join(keys) or 'none'}); --dim N sizes every input's unknown dimensions"
            )

    def unsized(signature: str, key: str, dtype: str, declared: list[int] | None) -> str | None:
        """Why --dim cannot size this input, or None when it can."""
        what = f"input {key!r}" + ("" if graph else f" of {signature}")
        if given is not None and _lookup(given, signature, key, graph) is not None:
            return f"{what} comes from --inputs"
        if key in options.shapes:
            return f"{what} has its whole shape from --shape"
        if dtype == tensors.STRING and options.examples and declared is None:
            declared = [-1]  # generate_input's batch of serialized Examples
        if declared is None:
            return f"{what} has unknown rank (give --shape {key}=D0,D1,...)"
        if all(d >= 0 for d in declared):
            return f"{what} has shape {format_shape(declared)}, no unknown dimension"
        return None

    def overridden(item: tuple[str, str, str, list[int] | None]) -> str | None:
        """Why a bare --dim N cannot size this input: its own --dim KEY=M wins."""
        key = item[1]
        if key in options.dims:
            return f"input {key!r} takes --dim {key}={options.dims[key]}"
        return unsized(*item)

    warnings = []
    for key, size in options.dims.items():
        reasons = [
            unsized(*item) if key is not None else overridden(item)
            for item in inputs
            if key is None or item[1] == key
        ]
        if reasons and all(reasons):
            option = f"--dim {size}" if key is None else f"--dim {key}={size}"
            warnings.append(f"{option} does nothing: {'; '.join(r for r in reasons if r)}")
    return warnings


def _check_keys(
    given: dict[str, np.ndarray] | None,
    expected: dict[str, np.ndarray] | None,
    specs: list[_Spec],
    graph: bool,
) -> None:
    """Keys of --inputs/--expected that name nothing are mistakes, not silently ignored."""
    for what, arrays, names in (
        ("--inputs", given, [(s.signature, k) for s in specs for k, *_ in s.inputs]),
        ("--expected", expected, [(s.signature, k) for s in specs for k, *_ in s.outputs]),
    ):
        if arrays is None:
            continue
        known = set()
        for signature, key in names:
            known.update({f"{signature}/{key}", key})
            if graph and key.endswith(":0"):
                known.add(key[:-2])
        unknown = sorted(set(arrays) - known)
        if unknown:
            valid = sorted({k for _, k in names})
            raise UserError(
                f"{what} has array(s) {', '.join(unknown)} that match no "
                f"{'input' if what == '--inputs' else 'output'} (expected keys: "
                f"{', '.join(valid)}, or SIGNATURE/KEY)"
            )
        if what == "--expected" and not any(
            _lookup(arrays, s, k, graph) for s, k in names if arrays
        ):
            raise UserError("--expected matches none of the checked outputs")


# ----------------------------------------------------------------------------- report


def notes(result: CheckResult) -> list[str]:
    """Lines printed under the table: what was fed, what the reference is, what to expect."""
    row = (
        "a later run of the same load (no checked signature writes state)"
        if result.shared_load
        else "a fresh load in the same process"
    )
    lines = [
        f"reference: the {REFERENCE_CONSUMER} consumer's own first run of {result.label}; "
        f"the {REFERENCE_CONSUMER} row is {row}"
        + (
            "; rows 'vs expected' compare with --expected"
            if any(c.expected for c in result.cases)
            else ""
        )
    ]
    compared = {c.signature for c in result.cells if c.fixture == f"{result.label} consensus"}
    for item in result.cases:
        name = item.case.signature if item.case.signature != GRAPH_SIGNATURE else "graph"
        for key, how in item.generated.items():
            lines.append(f"input {name}/{key}: {how}")
        if item.python_load and item.python_load != "tf.saved_model.load":
            lines.append(f"python loaded {name}: {item.python_load}")
        if item.reference_problem:
            lines.append(
                f"no Python reference for {name}: "
                + (
                    "the consumers that ran it are compared with each other (consensus rows)"
                    if signature_label(item.case) in compared
                    else "fewer than two consumers ran it, so there is no consensus either"
                )
            )
        if item.state_writers:
            lines.append(
                f"stateful: {name} writes variables ({', '.join(item.state_writers)}); each "
                "consumer loaded the model afresh, so every first run (the one compared) "
                "started from the same restored state"
            )
        for note in item.notes:
            lines.append(f"note: {name}: {note}")
    for problem in result.inspection.kernel_problems:
        lines.append(f"predicted by inspect: {problem.describe()}")
    return lines


# ---------------------------------------------------------------------- save a fixture


FIXTURE_TEMPLATE = '''"""{name}: a model checked with `tfinterop check --save-fixture` on {date}.

Source: {source}
The model, its inputs and the reference outputs (what TensorFlow Python {tf_version}
computed when the fixture was saved) are data under data/{name}/, copied as they were.
"""

from tfinterop.fixtures import PrebuiltCase, PrebuiltSpec, Tolerance, fixture, require


@fixture(
    {name_literal},
    seed={seed},
    tolerance=Tolerance(atol={atol!r}, rtol={rtol!r}),
    data=(
{data}    ),
    requires=[
{requires}    ],
)
def build(ctx):
    """Prebuilt {kind} (tfinterop check --save-fixture)."""
    return PrebuiltSpec(
        format={fmt},
        model={model},
        tags={tags},
        cases=[
{cases}        ],
    )
'''


def _literal(value: Any) -> str:
    """Python source for str/tuple/dict values, with double quotes (ruff's style)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _format_source(path: Path) -> None:
    """ruff-format a generated fixture when ruff is installed (`nox -s lint` checks fixtures/)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if os.access(ruff, os.X_OK):
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False, capture_output=True)


def save_fixture(result: CheckResult, name: str, fixtures_dir: Path, seed: int) -> Path:
    """Write ``fixtures_dir/NAME.py`` and ``fixtures_dir/data/NAME/`` (model, inputs,
    Python's reference) so the checked model runs in every later ``interop``."""
    from ..fixtures import NAME_PATTERN
    from ..tfenv import find_tensorflow

    if not NAME_PATTERN.match(name):
        raise UserError(f"fixture name {name!r} must match {NAME_PATTERN.pattern}")
    if not fixtures_dir.is_dir():
        raise UserError(f"fixtures directory {fixtures_dir} does not exist")
    source = fixtures_dir / f"{name}.py"
    data_root = fixtures_dir / "data" / name
    if source.exists() or data_root.exists():
        raise UserError(f"{source} or {data_root} already exists: choose another name")
    without = [i for i in result.cases if i.reference_problem]
    if without or not result.cases:
        why = without[0].reference_problem if without else "nothing was checked"
        raise UserError(f"cannot save a fixture without a Python reference: {why}")
    model = result.inspection.path.resolve()
    fmt = result.cases[0].case.format
    staging = fixtures_dir / "data" / f".{name}.tmp{os.getpid()}"
    # The source is written aside and renamed into place last: fixture files are executed
    # when loaded, so an interrupted save must not leave half of one (``_`` files are skipped).
    partial = fixtures_dir / f"_{name}.tmp{os.getpid()}.py"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        if fmt == "saved_model":
            model_rel = "saved_model"
            shutil.copytree(model, staging / model_rel)
        else:
            model_rel = f"model{model.suffix or '.pb'}"
            staging.mkdir(parents=True)
            shutil.copy2(model, staging / model_rel)
        case_lines, require_lines = [], []
        for item in result.cases:
            folder = _folder(item.case.signature)
            entries: dict[str, dict[str, tuple[str, str]]] = {"inputs": {}, "outputs": {}}
            for kind, items in (("inputs", item.case.inputs), ("reference", item.case.outputs)):
                for entry in items:
                    target = staging / kind / folder / Path(entry.file).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(entry.file, target)
                    sidecar = Path(entry.file + tensors.BYTES_SUFFIX)
                    if sidecar.exists():
                        shutil.copy2(sidecar, Path(str(target) + tensors.BYTES_SUFFIX))
                    relative = f"data/{name}/{kind}/{folder}/{target.name}"
                    side = "inputs" if kind == "inputs" else "outputs"
                    entries[side][entry.key] = (entry.tensor, relative)
            case_lines.append(
                f"            PrebuiltCase(\n"
                f"                {_literal(item.case.signature)},\n"
                f"                inputs={_literal(entries['inputs'])},\n"
                f"                outputs={_literal(entries['outputs'])},\n"
                f"            ),\n"
            )
            label = signature_label(item.case)
            for capability, reason in item.requires.items():
                require_lines.append(  # the label is a glob pattern there: escape it
                    f"        require({_literal(capability)}, {_literal(reason)}, "
                    f"signature={_literal(glob.escape(label))}),\n"
                )
        files = sorted(
            f"data/{name}/{p.relative_to(staging)}" for p in staging.rglob("*") if p.is_file()
        )
        text = FIXTURE_TEMPLATE.format(
            name=name,
            name_literal=_literal(name),
            source=str(model).replace('"""', "'''"),
            date=time.strftime("%Y-%m-%d"),
            tf_version=find_tensorflow().version,
            seed=seed,
            atol=result.tolerance.atol,
            rtol=result.tolerance.rtol,
            data="".join(f"        {_literal(f)},\n" for f in files),
            requires="".join(require_lines),
            kind="SavedModel" if fmt == "saved_model" else "GraphDef",
            fmt=_literal(fmt),
            model=_literal(f"data/{name}/{model_rel}"),
            tags=_literal(tuple(result.cases[0].case.tags)),
            cases="".join(case_lines),
        )
        partial.write_text(text)
        _format_source(partial)
        os.replace(staging, data_root)
        os.replace(partial, source)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return source


# -------------------------------------------------------------------------------- CLI
