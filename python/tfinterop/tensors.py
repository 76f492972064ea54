"""Tensor files as the consumer contract defines them (docs/consumer-contract.md).

Numeric and bool tensors are plain ``.npy`` files. String tensors hold arbitrary bytes, which
neither numpy's fixed-width ``S`` dtype (drops trailing NULs) nor object arrays (need pickle)
can carry, so a string tensor at ``FILE`` is an ``<i8`` lengths array at ``FILE`` plus the
concatenated bytes at ``FILE.bytes``. Nothing here ever unpickles.
"""

from __future__ import annotations

import hashlib
import os
import string
from pathlib import Path

import numpy as np

from .errors import UserError

# Contract dtype name -> numpy dtype. The same names appear in manifests and result records.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "float16": np.dtype("<f2"),
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "uint32": np.dtype("<u4"),
    "uint64": np.dtype("<u8"),
    "bool": np.dtype("?"),
    "complex64": np.dtype("<c8"),
    "complex128": np.dtype("<c16"),
}
STRING = "string"
SUPPORTED_DTYPES = (*NUMPY_DTYPES, STRING)

BYTES_SUFFIX = ".bytes"
_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "-_.:@,=")
_SAFE_MAX = 100


def safe_file_name(name: str) -> str:
    """``name`` (a signature, input or output key from a model or fixture) as one path
    component: other characters become ``_`` and leading dots go, so ``../../etc`` cannot
    leave its directory; when anything changed, a hash of the original is appended so two
    keys never share a file (``a/b`` and ``a_b``)."""
    safe = "".join(c if c in _SAFE_CHARS else "_" for c in name).lstrip(".")[:_SAFE_MAX]
    if safe == name and name:
        return name
    return f"{safe or '_'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def dtype_name(array: np.ndarray) -> str:
    """The contract name of an array's dtype; object/bytes/str arrays are ``string``."""
    if array.dtype.kind in "OSU":
        return STRING
    for name, dtype in NUMPY_DTYPES.items():
        if array.dtype.newbyteorder("<") == dtype.newbyteorder("<"):
            return name
    raise UserError(
        f"dtype {array.dtype} is not supported (supported: {', '.join(SUPPORTED_DTYPES)})"
    )


def as_bytes_array(array: np.ndarray) -> np.ndarray:
    """Normalise a string-like array to an object array of ``bytes`` (str is UTF-8 encoded)."""
    out = np.empty(array.shape, dtype=object)
    flat_in = array.reshape(-1)
    flat_out = out.reshape(-1)
    for i, value in enumerate(flat_in):
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, np.bytes_ | bytes):
            value = bytes(value)
        else:
            raise UserError(
                f"string tensor element {i} is {type(value).__name__}, not bytes or str"
            )
        flat_out[i] = value
    return out


def _atomic_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = _atomic_path(path)
    with open(tmp, "wb") as handle:
        # asarray keeps 0-d arrays 0-d (ascontiguousarray would make a scalar shape (1,)).
        np.lib.format.write_array(handle, np.asarray(array, order="C"), allow_pickle=False)
    os.replace(tmp, path)


def write_tensor(path: str | os.PathLike[str], array: np.ndarray) -> str:
    """Write ``array`` in the contract encoding; returns its dtype name."""
    path = Path(path)
    name = dtype_name(array)
    if name != STRING:
        _save_npy(path, array.astype(NUMPY_DTYPES[name], copy=False))
        return name
    values = as_bytes_array(array)
    lengths = np.fromiter((len(v) for v in values.reshape(-1)), dtype="<i8", count=values.size)
    tmp = _atomic_path(path.with_name(path.name + BYTES_SUFFIX))
    tmp.write_bytes(b"".join(values.reshape(-1)))
    os.replace(tmp, path.with_name(path.name + BYTES_SUFFIX))
    _save_npy(path, lengths.reshape(values.shape))
    return STRING


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such tensor file") from None
    except ValueError as exc:
        # numpy raises ValueError both for bad headers and for object arrays (pickle refused).
        raise UserError(f"{path}: not a readable .npy tensor ({exc})") from None


def read_tensor(path: str | os.PathLike[str], dtype: str | None = None) -> np.ndarray:
    """Read a tensor file. ``dtype`` says how to interpret it (``string`` needs the sidecar).

    Without ``dtype`` the file is read as numeric unless a ``.bytes`` sidecar exists.
    """
    path = Path(path)
    sidecar = path.with_name(path.name + BYTES_SUFFIX)
    if dtype is None:
        dtype = STRING if sidecar.exists() else None
    array = _load_npy(path)
    if dtype != STRING:
        if array.dtype.kind in "OSUV":
            raise UserError(f"{path}: dtype {array.dtype} is not a numeric tensor")
        return array
    if array.dtype != np.dtype("<i8"):
        raise UserError(f"{path}: string tensor lengths must be int64, found {array.dtype}")
    try:
        blob = sidecar.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{sidecar}: missing bytes file of string tensor {path}") from None
    lengths = array.reshape(-1).tolist()
    negative = next((i for i, length in enumerate(lengths) if length < 0), None)
    if negative is not None:
        raise UserError(f"{path}: string length {lengths[negative]} at element {negative} is < 0")
    total = sum(lengths)  # Python ints: an int64 sum can wrap to exactly len(blob)
    if total != len(blob):
        raise UserError(
            f"{path}: string lengths add up to {total} bytes but {sidecar.name} holds {len(blob)}"
        )
    out = np.empty(array.shape, dtype=object)
    flat = out.reshape(-1)
    offset = 0
    for i, length in enumerate(lengths):
        flat[i] = blob[offset : offset + length]
        offset += length
    return out


def from_tensorflow(value: object) -> np.ndarray:
    """A TensorFlow tensor (or numpy value) as numpy; strings become object arrays of bytes.

    ``np.asarray`` on bytes would pick the ``S`` dtype, which drops trailing NUL bytes.
    """
    is_string = getattr(getattr(value, "dtype", None), "name", None) == "string"
    if hasattr(value, "numpy"):
        value = value.numpy()
    if is_string or isinstance(value, bytes):
        return np.array(value, dtype=object)
    array = np.asarray(value)
    return np.array(array, dtype=object) if array.dtype.kind == "S" else array
