"""``tfinterop locate MODEL``: any model, as ``check`` takes it, made into a cell to locate.

The case is prepared through the check API (the same inspection, signature choice, input
generation or ``--inputs``, output declaration). A GraphDef is located as it is. A
SavedModel's signature is frozen first (its concrete function with the variables folded
into constants, as the exporter writes frozen graphs; a TF1 SavedModel that
``tf.saved_model.load`` cannot freeze is frozen from a v1 Session instead), and the
signature's inputs and outputs are mapped onto the frozen graph's tensors; the notes say
which tensor each became.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import tensors
from ..check.inputs import load_npz
from ..check.options import CheckOptions
from ..check.prepare import prepare
from ..check.run import default_label
from ..check.specs import Spec, graph_specs, saved_model_specs
from ..errors import UserError
from ..fixtures import Tolerance
from ..formats import FROZEN, SAVED_MODEL
from ..inspect import GRAPH_DEF, inspect_model
from ..manifest import Case
from ..pipeline.cases import CaseRef


@dataclass
class ModelCell:
    wanted: CaseRef
    """The case as asked for (a SavedModel signature, or the graph)."""
    frozen: CaseRef
    """The case on the frozen graph that is located."""
    name: str
    """For working directories: label, format and signature."""
    notes: list[str] = field(default_factory=list)


def _ref(label: str, case: Case, tolerance: Tolerance, requires: dict[str, str]) -> CaseRef:
    return CaseRef(
        label, case, Path("/"), lambda key, runtime: tolerance,
        lambda consumer, fmt, signature, runtime: None, requires,
    )  # fmt: skip


def model_cell(options: CheckOptions, work_root: Path) -> ModelCell:
    """Inspect ``options.path``, prepare its one case (inputs written under ``work_root``)
    and, for a SavedModel, freeze the signature; UserError for anything not locatable."""
    if options.all_signatures:
        raise UserError("locate works on one signature: give --signature KEY")
    inspection = inspect_model(options.path, None)
    if inspection.missing_weights:
        raise UserError(inspection.missing_weights)
    label = default_label(inspection.path)
    fmt = SAVED_MODEL if inspection.format == SAVED_MODEL else FROZEN
    assert inspection.format in (SAVED_MODEL, GRAPH_DEF)
    spec: Spec = (
        saved_model_specs(inspection, options)
        if fmt == SAVED_MODEL
        else graph_specs(inspection, options)
    )[0]
    given = load_npz(options.inputs_file, "--inputs") if options.inputs_file else None
    model = inspection.path.resolve()
    digest = hashlib.sha256(str(model).encode()).hexdigest()[:8]
    name = tensors.safe_file_name(f"{Path(label).name}-{digest}-{fmt}-{spec.signature}")
    work = work_root / name
    if spec.state_writers:
        raise UserError(
            f"{spec.signature} writes variables ({', '.join(spec.state_writers[:3])}): a frozen "
            "graph holds no variables to write, so it cannot be located; choose a signature "
            "that only reads them"
        )
    prepared = prepare(spec, model, fmt, options, given, None, work)
    if fmt == FROZEN:
        ref = _ref(label, prepared.case, options.tolerance, prepared.requires)
        return ModelCell(ref, ref, name)
    frozen_case, notes = freeze_signature(prepared.case, work / "frozen.pb")
    wanted = _ref(label, prepared.case, options.tolerance, prepared.requires)
    return ModelCell(
        wanted, _ref(label, frozen_case, options.tolerance, prepared.requires), name, notes
    )


def freeze_signature(case: Case, out: Path) -> tuple[Case, list[str]]:
    """The SavedModel case's signature as a frozen GraphDef written to ``out``: the case on
    it (same keys and input files, the frozen graph's tensor names) and notes naming each
    tensor's counterpart."""
    import tensorflow as tf

    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # the v1 loader's deprecation notices are not the user's problem
    try:
        graph_def, inputs, outputs = _freeze_object(case)
    except Exception as first:
        try:
            graph_def, inputs, outputs = _freeze_session(case)
        except Exception as second:
            raise UserError(
                f"cannot freeze signature {case.signature} of {case.model}: "
                f"{_line(first)} (v1 Session: {_line(second)})"
            ) from None
    finally:
        logger.setLevel(level)
    try:  # what locate does with it next: a graph TensorFlow cannot import is said here
        with tf.Graph().as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
    except Exception as exc:
        raise UserError(
            f"the frozen graph of signature {case.signature} does not import: {_line(exc)}"
        ) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_graph(graph_def, str(out.parent), out.name, as_text=False)
    frozen_inputs, frozen_outputs, mapped = [], [], []
    for entry in case.inputs:
        tensor = inputs.get(entry.key)
        if tensor is None:
            raise UserError(f"the frozen {case.signature} has no input for {entry.key!r}")
        frozen_inputs.append(replace(entry, tensor=tensor))
        mapped.append(f"input {entry.key} ({entry.tensor}) -> {tensor}")
    for entry in case.outputs:
        tensor = outputs.get(entry.key)
        if tensor is None:
            raise UserError(f"the frozen {case.signature} has no output for {entry.key!r}")
        frozen_outputs.append(replace(entry, tensor=tensor))
        mapped.append(f"output {entry.key} ({entry.tensor}) -> {tensor}")
    frozen = Case(
        format=FROZEN, signature=case.signature, model=str(out), inputs=frozen_inputs,
        outputs=frozen_outputs, tags=[], method=case.method,
    )  # fmt: skip
    return frozen, [
        f"SavedModel signature {case.signature} located on its frozen graph {out} "
        f"({len(graph_def.node)} nodes; variables folded): " + "; ".join(mapped)
    ]


def _line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def _freeze_object(case: Case) -> tuple[Any, dict[str, str], dict[str, str]]:
    """tf.saved_model.load, the signature's concrete function, variables to constants."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    loaded = tf.saved_model.load(case.model, tags=case.tags or None)
    function = loaded.signatures[case.signature]
    frozen = convert_variables_to_constants_v2(function, lower_control_flow=True)
    keyword = function.structured_input_signature[1]
    placeholders = [t.name for t in frozen.inputs]
    # A signature's placeholders are named after its TensorSpecs (the keys, usually); else
    # they come in the flattened (sorted-key) order.
    inputs = {key: t for key, t in zip(sorted(keyword), placeholders, strict=False)}
    for key, spec in keyword.items():
        if spec.name and f"{spec.name}:0" in placeholders:
            inputs[key] = f"{spec.name}:0"
    outputs = {
        key: t.name
        for key, t in zip(sorted(function.structured_outputs), frozen.outputs, strict=True)
    }
    return frozen.graph.as_graph_def(), inputs, outputs


def _freeze_session(case: Case) -> tuple[Any, dict[str, str], dict[str, str]]:
    """A v1 Session over the MetaGraph (TF1 SavedModels), variables to constants; the
    tensor names stay the signature's."""
    import tensorflow as tf

    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, case.tags or ["serve"], case.model)
        signature = meta.signature_def[case.signature]
        outputs = {key: info.name for key, info in signature.outputs.items()}
        graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
            session,
            graph.as_graph_def(),
            sorted({name.rpartition(":")[0] for name in outputs.values()}),
        )
    return graph_def, {key: info.name for key, info in signature.inputs.items()}, outputs
