"""Prebuilt fixtures (``check --save-fixture``): a model exported elsewhere, copied into the
export entry with its inputs and stored reference; TensorFlow runs nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import tensors
from ..errors import UserError
from ..fixtures import Fixture, PrebuiltSpec
from ..formats import FROZEN, SAVED_MODEL
from ..manifest import Case, Manifest, TensorEntry
from .artifacts import FROZEN_DIR, SAVED_MODEL_DIR, sha256, write_manifest


def export_prebuilt(
    fixture: Fixture,
    spec: PrebuiltSpec,
    out: Path,
    key: str,
    environment: dict[str, str],
    started: float,
) -> Manifest:
    """Copy a prebuilt model, its inputs and stored reference into the export (no TF run)."""

    def declared(relative: str) -> Path:
        path = fixture.directory / relative
        undeclared = [
            str(p.relative_to(fixture.directory))
            for p in ([path] if path.is_file() else sorted(path.rglob("*")))
            if p.is_file() and str(p.relative_to(fixture.directory)) not in fixture.data
        ]
        if not path.exists() or undeclared:
            raise UserError(
                f"fixture {fixture.name}: {relative} is missing or has files not declared in "
                f"data=(...): {', '.join(undeclared[:3]) or relative}"
            )
        return path

    if spec.format not in (FROZEN, SAVED_MODEL):
        raise UserError(
            f"fixture {fixture.name}: prebuilt format must be {FROZEN} or {SAVED_MODEL}"
        )
    source = declared(spec.model)
    if spec.format == SAVED_MODEL:
        model = SAVED_MODEL_DIR
        shutil.copytree(source, out / model)
    else:
        model = f"{FROZEN_DIR}/{source.name}"
        (out / FROZEN_DIR).mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out / model)
    cases = []
    for prebuilt in spec.cases:
        entries: dict[str, list[TensorEntry]] = {"inputs": [], "reference": []}
        for folder, tensors_by_key in (
            ("inputs", prebuilt.inputs),
            ("reference", prebuilt.outputs),
        ):
            for tensor_key, (tensor, relative) in tensors_by_key.items():
                path = declared(relative)
                target = out / folder / tensors.safe_file_name(prebuilt.signature) / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                sidecar = path.with_name(path.name + tensors.BYTES_SUFFIX)
                if sidecar.exists():
                    shutil.copy2(
                        declared(str(sidecar.relative_to(fixture.directory))),
                        target.with_name(target.name + tensors.BYTES_SUFFIX),
                    )
                array = tensors.read_tensor(target)
                entries[folder].append(
                    TensorEntry(
                        key=tensor_key,
                        tensor=tensor,
                        dtype=tensors.dtype_name(array),
                        shape=list(array.shape),
                        file=str(target.relative_to(out)),
                        sha256=sha256(target),
                    )
                )
        cases.append(
            Case(
                format=spec.format,
                signature=prebuilt.signature,
                model=model,
                inputs=entries["inputs"],
                outputs=entries["reference"],
                tags=list(spec.tags) if spec.format == SAVED_MODEL else [],
            )
        )
    return write_manifest(fixture, key, environment, cases, out, started)
