"""What each case feeds and fetches, from the inspection: a SavedModel's signatures
(``--signature``/``--all-signatures``) or a frozen graph's inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..inspect import Inspection
from .options import DEFAULT_SIGNATURE, GRAPH_SIGNATURE, CheckOptions


@dataclass
class Spec:
    """What a case feeds and fetches, before inputs exist."""

    signature: str
    tags: list[str]
    method: str
    inputs: list[tuple[str, str, str, list[int] | None]]
    """(key, tensor, dtype, shape)."""
    outputs: list[tuple[str, str, str]]
    """(key, tensor, dtype)."""
    state_writers: list[str]
    notes: list[str]


def saved_model_specs(inspection: Inspection, options: CheckOptions) -> list[Spec]:
    if options.input_names or options.output_names:
        raise UserError("--input/--output are for frozen graphs; a SavedModel has signatures")
    meta = inspection.meta_graph(options.tags)
    callable_keys = [s.key for s in meta.signatures if s.callable]
    if options.all_signatures:
        if options.signature:
            raise UserError("give --signature or --all-signatures, not both")
        keys = callable_keys
    else:
        keys = [options.signature or DEFAULT_SIGNATURE]
        if options.signature is None and DEFAULT_SIGNATURE not in callable_keys:
            if len(callable_keys) != 1:
                raise UserError(
                    f"{inspection.path} has no {DEFAULT_SIGNATURE} signature; choose one with "
                    f"--signature ({', '.join(callable_keys) or 'none'}) or --all-signatures"
                )
            keys = callable_keys
    if not keys:
        raise UserError(f"{inspection.path}: MetaGraph {','.join(meta.tags)} has no signatures")
    specs = []
    for key in keys:
        signature = meta.signature(key)
        if not signature.callable:
            raise UserError(f"{key} runs at load time; it is not a signature to check")
        specs.append(
            Spec(
                signature=key,
                tags=list(meta.tags),
                method=signature.method_name,
                inputs=[(k, t.name, t.dtype, t.shape) for k, t in sorted(signature.inputs.items())],
                outputs=[(k, t.name, t.dtype) for k, t in sorted(signature.outputs.items())],
                state_writers=signature.state_writers,
                notes=list(signature.notes),
            )
        )
    return specs


def graph_specs(inspection: Inspection, options: CheckOptions) -> list[Spec]:
    from ..inspect import graphdef

    if options.tags or options.signature or options.all_signatures:
        raise UserError("--tags/--signature/--all-signatures are for SavedModels, not graphs")
    analysis = inspection.graph
    assert analysis is not None
    graph_def = graphdef.load_graph_def(inspection.path)
    nodes = {node.name: node for node in graph_def.node}
    input_names = [graphdef.canonical_tensor(n) for n in options.input_names] or [
        i.name for i in analysis.inputs if i.dtype != "resource"
    ]
    output_names = [graphdef.canonical_tensor(n) for n in options.output_names] or [
        o.name for o in analysis.outputs
    ]
    if not output_names:
        raise UserError(f"{inspection.path}: no likely outputs found; name them with --output")
    for name in input_names + output_names:
        if graphdef.tensor_parts(name)[0] not in nodes:
            raise UserError(f"{inspection.path} has no op {graphdef.tensor_parts(name)[0]!r}")
    specs, import_error = graphdef.tensor_specs(graph_def, input_names + output_names)
    for name in input_names:
        if not specs[name][0]:
            raise UserError(
                f"cannot tell the dtype of input {name}: TensorFlow cannot import the graph "
                f"({import_error})"
            )
    uses = graphdef.reachable_ops(graph_def, output_names, input_names)
    return [
        Spec(
            signature=GRAPH_SIGNATURE,
            tags=[],
            method="",
            inputs=[(n, n, specs[n][0], specs[n][1]) for n in input_names],
            outputs=[(n, n, specs[n][0]) for n in output_names],
            state_writers=graphdef.state_writers(uses),
            notes=[],
        )
    ]
