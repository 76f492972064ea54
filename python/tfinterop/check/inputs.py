"""Input values of a check: ``.npz`` files read without unpickling (and refused, from their
headers, when they would over-allocate), users' arrays fitted to the model's dtypes, and
generated inputs (random values, serialized tf.Examples) within the size limits."""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..errors import UserError
from ..inspect import format_shape
from .options import (
    DEFAULT_DIM,
    DEFAULT_MAX_INPUT_BYTES,
    FLOAT_RANGE,
    INT_RANGE,
    MAX_GENERATED_BYTES,
    MAX_INPUT_BYTES_VARIABLE,
    STRING_ELEMENT_BYTES,
    CheckOptions,
)


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


def load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
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


def lookup(arrays: dict[str, np.ndarray], signature: str, key: str, graph: bool) -> str | None:
    """The npz key for ``key``: ``SIGNATURE/KEY`` first, then ``KEY``; graphs also accept
    ``x`` for ``x:0``."""
    candidates = [f"{signature}/{key}", key]
    if graph and key.endswith(":0"):
        candidates.append(key[:-2])
    return next((c for c in candidates if c in arrays), None)


def fit_dtype(array: np.ndarray, dtype: str, what: str) -> np.ndarray:
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


def fits(shape: tuple[int, ...], declared: list[int] | None) -> bool:
    if declared is None:
        return True
    return len(shape) == len(declared) and all(
        d < 0 or d == s for s, d in zip(shape, declared, strict=True)
    )


def _resolve_shape(key: str, declared: list[int] | None, options: CheckOptions) -> list[int]:
    if key in options.shapes:
        shape = options.shapes[key]
        if not fits(tuple(shape), declared):
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


def non_utf8(array: np.ndarray) -> bool:
    if array.dtype != object:
        return False
    for value in array.reshape(-1):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False
