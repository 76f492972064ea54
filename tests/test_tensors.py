"""Tensor files of the contract: .npy for numbers, lengths + bytes for strings; no pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfinterop import tensors
from tfinterop.errors import UserError


@pytest.mark.parametrize("dtype", [n for n in tensors.NUMPY_DTYPES])
def test_numeric_round_trip(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(6).reshape(2, 3) % 2).astype(tensors.NUMPY_DTYPES[dtype])
    assert tensors.write_tensor(tmp_path / "t.npy", array) == dtype
    back = tensors.read_tensor(tmp_path / "t.npy")
    assert back.dtype == array.dtype and np.array_equal(back, array)


def test_strings_keep_nul_non_utf8_and_long_values(tmp_path: Path) -> None:
    values = np.array([[b"", b"a\x00"], [b"\xff\xfe\x00", b"x" * 100]], dtype=object)
    assert tensors.write_tensor(tmp_path / "s.npy", values) == "string"
    assert (tmp_path / "s.npy.bytes").read_bytes() == b"a\x00\xff\xfe\x00" + b"x" * 100
    back = tensors.read_tensor(tmp_path / "s.npy", "string")
    assert back.shape == (2, 2) and list(back.reshape(-1)) == list(values.reshape(-1))


def test_scalar_string_from_tensorflow_value_keeps_trailing_nul() -> None:
    assert tensors.from_tensorflow(b"ab\x00").item() == b"ab\x00"


def test_object_arrays_are_refused_not_unpickled(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=r"not a readable \.npy tensor"):
        tensors.read_tensor(tmp_path / "o.npy")


def test_string_length_mismatch_is_reported(tmp_path: Path) -> None:
    tensors.write_tensor(tmp_path / "s.npy", np.array([b"abc"], dtype=object))
    (tmp_path / "s.npy.bytes").write_bytes(b"ab")
    with pytest.raises(UserError, match=r"lengths add up to 3 bytes but s\.npy\.bytes holds 2"):
        tensors.read_tensor(tmp_path / "s.npy", "string")


def test_missing_file_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such tensor file"):
        tensors.read_tensor(tmp_path / "missing.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(UserError, match="not a readable"):
        tensors.read_tensor(tmp_path / "bad.npy")


def test_string_lengths_that_overflow_int64_are_refused(tmp_path: Path) -> None:
    huge = 2**63 - 1
    np.save(tmp_path / "s.npy", np.array([huge, huge, 2], dtype="<i8"))
    (tmp_path / "s.npy.bytes").write_bytes(b"")
    with pytest.raises(UserError, match=rf"lengths add up to {2 * huge + 2} bytes but"):
        tensors.read_tensor(tmp_path / "s.npy", "string")


def test_negative_string_length_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.array([-1, 3], dtype="<i8"))
    (tmp_path / "s.npy.bytes").write_bytes(b"ab")
    with pytest.raises(UserError, match=r"s\.npy: string length -1 at element 0"):
        tensors.read_tensor(tmp_path / "s.npy", "string")
