"""The export directory's layout and files: model directory names, tensor files with their
hashes, and the manifest that records them (shared by the format writers and prebuilt)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from .. import tensors
from ..fixtures import Fixture
from ..manifest import MANIFEST_NAME, Case, Manifest, TensorEntry

# Directory names inside an export entry. They happen to spell the format names, but they are
# paths recorded in manifests (``Case.model``), so they stay literal rather than follow
# formats.py.
FROZEN_DIR = "frozen"
SAVED_MODEL_DIR = "saved_model"
TFLITE_DIR = "tflite"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME
    }


def tensor_path(out: Path, folder: str, signature: str, key: str) -> Path:
    """Where tensor ``key`` of ``signature`` lives under ``inputs/`` or ``reference/``."""
    return out / folder / signature / f"{tensors.safe_file_name(key)}.npy"


def write_tensors(
    out: Path, kind: str, signature: str, arrays: dict[str, np.ndarray]
) -> list[TensorEntry]:
    (out / kind / signature).mkdir(parents=True, exist_ok=True)
    entries = []
    for key, array in arrays.items():
        path = tensor_path(out, kind, signature, key)
        dtype = tensors.write_tensor(path, array)
        entries.append(
            TensorEntry(
                key=key,
                tensor="",
                dtype=dtype,
                shape=list(array.shape),
                file=str(path.relative_to(out)),
                sha256=sha256(path),
            )
        )
    return entries


def write_manifest(
    fixture: Fixture,
    key: str,
    environment: dict[str, str],
    cases: list[Case],
    out: Path,
    started: float,
) -> Manifest:
    import keras
    import tensorflow as tf

    manifest = Manifest(
        fixture=fixture.name,
        cache_key=key,
        tf_version=tf.__version__,
        keras_version=keras.__version__,
        seed=fixture.seed,
        environment=environment,
        tolerance={"atol": fixture.tolerance.atol, "rtol": fixture.tolerance.rtol},
        output_tolerances={
            k: {"atol": t.atol, "rtol": t.rtol} for k, t in fixture.output_tolerances.items()
        },
        cases=cases,
        artifacts=hash_tree(out),
        export_seconds=round(time.perf_counter() - started, 3),
        directory=out,
    )
    (out / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest
