"""What the user reads beside the table: ``notes`` (what was fed, what the reference is,
what to expect), warnings about options that size nothing (``dim_warnings``), and keys of
``--inputs``/``--expected`` that name nothing (``check_keys``)."""

from __future__ import annotations

import numpy as np

from .. import tensors
from ..errors import UserError
from ..inspect import format_shape
from ..pipeline.cases import signature_label
from .inputs import lookup
from .options import GRAPH_SIGNATURE, CheckOptions
from .result import CheckResult
from .specs import Spec


def notes(result: CheckResult) -> list[str]:
    """Lines printed under the table: what was fed, what the reference is, what to expect."""
    row = (
        "a later run of the same load (no checked signature writes state)"
        if result.shared_load
        else "a fresh load in the same process"
    )
    lines = [
        f"reference: the {result.reference} consumer's own first run of {result.label}; "
        f"the {result.reference} row is {row}"
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
            lines.append(f"{result.reference} loaded {name}: {item.python_load}")
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


def dim_warnings(
    specs: list[Spec], options: CheckOptions, given: dict[str, np.ndarray] | None, graph: bool
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
        if given is not None and lookup(given, signature, key, graph) is not None:
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


def check_keys(
    given: dict[str, np.ndarray] | None,
    expected: dict[str, np.ndarray] | None,
    specs: list[Spec],
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
            lookup(arrays, s, k, graph) for s, k in names if arrays
        ):
            raise UserError("--expected matches none of the checked outputs")
