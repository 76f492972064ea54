"""What a check is asked to do: ``CheckOptions``, ``FeatureSpec`` and the defaults and
limits the other modules share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import tensors
from ..errors import UserError
from ..fixtures import Tolerance

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


def case_folder(signature: str) -> str:
    """The directory a signature's working files (inputs, reference, expected) go in."""
    return "graph" if signature == GRAPH_SIGNATURE else tensors.safe_file_name(signature)
