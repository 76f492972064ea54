"""Cases ready to run: each signature's inputs written (given or generated), its outputs
declared, ``--expected`` matched; and the working directory they are written under."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import tensors
from ..consumers import NON_UTF8_STRINGS
from ..errors import UserError
from ..inspect import format_shape
from ..manifest import Case, TensorEntry
from .inputs import fit_dtype, fits, generate_input, lookup, non_utf8
from .options import RUNS_KEPT, CheckOptions, case_folder
from .specs import Spec


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


def prepare(
    spec: Spec,
    model: Path,
    fmt: str,
    options: CheckOptions,
    given: dict[str, np.ndarray] | None,
    expected: dict[str, np.ndarray] | None,
    work: Path,
) -> PreparedCase:
    graph = fmt == "frozen"
    folder = case_folder(spec.signature)
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
        found = lookup(given, spec.signature, key, graph) if given is not None else None
        if found is not None and given is not None:
            array = fit_dtype(given[found], dtype, what)
            if not fits(array.shape, declared):
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
        if non_utf8(array):
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
            found = lookup(expected, spec.signature, entry.key, graph)
            if found is not None:  # dtype "" = unknown until Python ran: take the file's
                what = f"--expected {found}"
                array = expected[found]
                prepared.expected[entry.key] = (
                    fit_dtype(array, entry.dtype, what) if entry.dtype else array
                )
    return prepared


# --------------------------------------------------------------------------------- run


def work_dir(options: CheckOptions, label: str) -> Path:
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
