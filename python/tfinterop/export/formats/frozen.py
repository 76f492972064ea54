"""Frozen GraphDef writer: variables folded into constants, one ``.pb`` per signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import UserError
from ...formats import FROZEN
from ...manifest import Case, TensorEntry
from ..artifacts import FROZEN_DIR


def export_frozen(
    out: Path,
    signature_key: str,
    concrete: Any,
    inputs: list[TensorEntry],
    outputs: list[TensorEntry],
    *,
    lower_control_flow: bool = True,
) -> Case:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    # Without this step the graph keeps VarHandleOps and ships without its weights.
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=lower_control_flow)
    graph_def = frozen.graph.as_graph_def()
    name = f"{signature_key}.pb"
    (out / FROZEN_DIR).mkdir(exist_ok=True)
    tf.io.write_graph(graph_def, str(out / FROZEN_DIR), name, as_text=False)

    placeholders = {t.name for t in frozen.inputs}
    frozen_inputs = []
    for entry in inputs:
        tensor = f"{entry.key}:0"
        if tensor not in placeholders:
            raise UserError(
                f"frozen graph has no placeholder {tensor} (has {sorted(placeholders)})"
            )
        frozen_inputs.append(TensorEntry(**{**entry.__dict__, "key": tensor, "tensor": tensor}))
    # Outputs of a dict-returning function are flattened in sorted key order (tf.nest rule).
    output_keys = sorted(concrete.structured_outputs)
    by_key = {entry.key: entry for entry in outputs}
    frozen_outputs = []
    for key, tensor in zip(output_keys, frozen.outputs, strict=True):
        frozen_outputs.append(
            TensorEntry(**{**by_key[key].__dict__, "key": key, "tensor": tensor.name})
        )
    return Case(
        format=FROZEN,
        signature=signature_key,
        model=f"{FROZEN_DIR}/{name}",
        inputs=frozen_inputs,
        outputs=frozen_outputs,
    )
