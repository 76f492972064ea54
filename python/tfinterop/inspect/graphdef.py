"""Look at a GraphDef (frozen graph, or a SavedModel's MetaGraph): inputs, outputs, ops.

Works on the protobuf alone; TensorFlow is only used, when it can import the graph, to
infer output dtypes and shapes. Function-call ops (a node whose op is a library function,
or ``PartitionedCall``-style ops with a ``func`` attribute) are followed into the function
library, so the ops a model really needs include those inside its functions.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError

CONTROL_FLOW_OPS = frozenset(
    {
        "Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond", "RefSwitch",
        "RefMerge", "RefEnter", "RefExit", "RefNextIteration", "If", "StatelessIf",
        "While", "StatelessWhile", "Case", "StatelessCase", "_If", "_While",
    }
)  # fmt: skip
VARIABLE_OPS = frozenset(
    {"Variable", "VariableV2", "VarHandleOp", "TemporaryVariable", "_VarHandlesOp"}
)
PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderV2"})
FRAME_OPS = frozenset({"Switch", "RefSwitch", "Enter", "RefEnter", "NextIteration"})
# Unconsumed nodes of these types are not model outputs: bookkeeping, checkpoints, inputs.
NOT_OUTPUTS = (
    PLACEHOLDER_OPS
    | VARIABLE_OPS
    | frozenset(
        {
            "NoOp", "Assert", "Print", "PrintV2", "Const", "PlaceholderWithDefault", "SaveV2",
            "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints",
            "ShardedFilename", "ShardedFilespec", "VarIsInitializedOp", "IsVariableInitialized",
            "ReadVariableOp", "DestroyResourceOp", "ControlTrigger",
        }
    )
)  # fmt: skip
# Ops that change state a later run sees. Table initialisers (LookupTableImportV2,
# InitializeTable*) are left out: they write the same contents on every run.
STATE_WRITERS = re.compile(
    r"^(Assign\w*|ResourceApply\w+|ResourceSparseApply\w+|Apply\w+|SparseApply\w+|"
    r"ResourceScatter\w+|Scatter(Nd)?(Update|Add|Sub|Mul|Div|Min|Max)|"
    r"(Resource)?StridedSliceAssign|LookupTable(Insert|Remove)\w*)$"
)
RANDOM_OPS = re.compile(
    r"^(Random\w+|Multinomial|TruncatedNormal|ParameterizedTruncatedNormal|"
    r"StatefulUniform\w*|StatefulStandardNormal\w*|StatefulTruncatedNormal|"
    r"StatefulRandomBinomial|RngSkip|RngReadAndSkip)$"
)
GRAPH = "graph"
"""``where`` label of the main graph (function names label the function library)."""


@dataclass
class TensorSpecInfo:
    name: str
    """Tensor name (``x:0``)."""
    op: str
    dtype: str | None
    shape: list[int] | None
    """None: unknown rank (or not inferred); -1: unknown dimension."""
    note: str = ""


@dataclass
class GraphAnalysis:
    node_count: int
    producer: int
    min_consumer: int
    op_histogram: dict[str, int]
    """Op type -> count in the main graph."""
    functions: list[str]
    function_op_count: int
    control_flow: list[str]
    variable_ops: list[str]
    """``name (op)`` of nodes holding variables in the main graph."""
    inputs: list[TensorSpecInfo] = field(default_factory=list)
    optional_inputs: list[TensorSpecInfo] = field(default_factory=list)
    outputs: list[TensorSpecInfo] = field(default_factory=list)
    ops_used: dict[str, list[str]] = field(default_factory=dict)
    """Op type -> where it is used (``graph`` or function names), function calls excluded."""
    state_writers: list[str] = field(default_factory=list)
    random_ops: list[str] = field(default_factory=list)
    import_error: str | None = None
    """Why TensorFlow could not import the graph (dtypes/shapes of outputs then unknown)."""

    @property
    def frozen(self) -> bool:
        resource_inputs = any(i.dtype == "resource" for i in self.inputs)
        return not self.variable_ops and not resource_inputs

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["frozen"] = self.frozen  # the property, as a JSON field (not the format name)
        return data


def dtype_name(enum_value: int) -> str:
    from .savedmodel import _dtype_name

    return _dtype_name(enum_value)


def shape_list(shape_proto: Any) -> list[int] | None:
    return None if shape_proto.unknown_rank else [int(d.size) for d in shape_proto.dim]


def load_graph_def(path: Path) -> Any:
    """Read a GraphDef from a binary ``.pb`` or a text ``.pbtxt``; UserError if it is not one."""
    from google.protobuf import text_format
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import graph_pb2

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    graph_def = graph_pb2.GraphDef()
    text = path.suffix in (".pbtxt", ".txt")
    try:
        if text:
            text_format.Parse(data.decode("utf-8"), graph_def)
        else:
            graph_def.ParseFromString(data)
    except (DecodeError, text_format.ParseError, UnicodeDecodeError) as exc:
        kind = "text" if text else "binary"
        raise UserError(f"{path} is not a {kind} GraphDef ({str(exc).splitlines()[0]})") from None
    if not graph_def.node:
        raise UserError(
            f"{path} holds no graph nodes: not a GraphDef (a SavedModel is a directory)"
        )
    return graph_def


def tensor_parts(name: str) -> tuple[str, int]:
    """``a:1`` -> (``a``, 1); ``a`` -> (``a``, 0); ``^a`` -> (``a``, -1) for a control input."""
    if name.startswith("^"):
        return name[1:], -1
    node, colon, index = name.rpartition(":")
    if colon and index.isdigit():
        return node, int(index)
    return name, 0


def canonical_tensor(name: str) -> str:
    node, index = tensor_parts(name)
    return f"{node}:{max(index, 0)}"


def called_functions(node: Any, library: set[str]) -> set[str]:
    """Functions a node calls: its op is a library function, or an attr names one."""
    called = {node.op} if node.op in library else set()
    for value in node.attr.values():
        if value.HasField("func") and value.func.name:
            called.add(value.func.name)
        if value.HasField("list"):
            called.update(f.name for f in value.list.func if f.name)
    return called & library


def call_closure(nodes: Iterable[Any], functions: dict[str, Any]) -> set[str]:
    """Every library function ``nodes`` call, directly or through other functions."""
    library = set(functions)
    seen: set[str] = set()
    pending = [f for node in nodes for f in called_functions(node, library)]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            pending.extend(called_functions(node, library) - seen)
    return seen


def _function_ops(
    names: Iterable[str], functions: dict[str, Any], uses: dict[str, set[str]], seen: set[str]
) -> None:
    library = set(functions)
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for node in functions[name].node_def:
            calls = called_functions(node, library)
            if node.op not in library:
                uses.setdefault(node.op, set()).add(name)
            pending.extend(calls)


def ops_used(graph_def: Any) -> dict[str, set[str]]:
    """Every op type in the graph and its whole function library -> where it is used."""
    functions = {f.signature.name: f for f in graph_def.library.function}
    uses: dict[str, set[str]] = {}
    for node in graph_def.node:
        if node.op not in functions:
            uses.setdefault(node.op, set()).add(GRAPH)
    _function_ops(functions, functions, uses, set())
    return uses


def reachable_ops(
    graph_def: Any, fetches: Iterable[str], feeds: Iterable[str] = ()
) -> dict[str, set[str]]:
    """Op types needed to compute ``fetches`` when ``feeds`` are fed (functions followed)."""
    nodes = {node.name: node for node in graph_def.node}
    functions = {f.signature.name: f for f in graph_def.library.function}
    library = set(functions)
    fed = {canonical_tensor(t) for t in feeds}
    uses: dict[str, set[str]] = {}
    seen_nodes: set[str] = set()
    seen_functions: set[str] = set()
    pending = []
    for fetch in fetches:
        name, index = tensor_parts(fetch)
        if f"{name}:{max(index, 0)}" not in fed:
            pending.append(name)
    while pending:
        name = pending.pop()
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        if node.op not in library:
            uses.setdefault(node.op, set()).add(GRAPH)
        _function_ops(called_functions(node, library), functions, uses, seen_functions)
        for edge in node.input:
            source, index = tensor_parts(edge)
            if index >= 0 and f"{source}:{index}" in fed:
                continue
            pending.append(source)
    return uses


def state_writers(uses: dict[str, Any]) -> list[str]:
    return sorted(op for op in uses if STATE_WRITERS.match(op))


def random_ops(uses: dict[str, Any]) -> list[str]:
    return sorted(op for op in uses if RANDOM_OPS.match(op))


def _output_count(node: Any, registry: Any) -> int:
    """Number of output tensors of ``node`` (from its OpDef; 1 when the op is unknown)."""
    op_def = registry.op_defs.get(node.op) if registry is not None else None
    if op_def is None:
        return 1
    count = 0
    for arg in op_def.output_arg:
        if arg.number_attr:
            count += int(node.attr[arg.number_attr].i)
        elif arg.type_list_attr:
            count += len(node.attr[arg.type_list_attr].list.type)
        else:
            count += 1
    return count


def _placeholder_info(node: Any) -> TensorSpecInfo:
    dtype = dtype_name(node.attr["dtype"].type) if "dtype" in node.attr else None
    shape = shape_list(node.attr["shape"].shape) if "shape" in node.attr else None
    return TensorSpecInfo(f"{node.name}:0", node.op, dtype, shape)


def analyze(graph_def: Any, registry: Any = None, *, infer: bool = True) -> GraphAnalysis:
    """Summarise a GraphDef; ``registry`` (kernels.Registry) gives op output counts."""
    functions = {f.signature.name: f for f in graph_def.library.function}
    histogram = Counter(node.op for node in graph_def.node)
    uses = ops_used(graph_def)
    nodes = {node.name: node for node in graph_def.node}
    consumed: set[str] = set()
    inside_control_flow: set[str] = set()
    for node in graph_def.node:
        for edge in node.input:
            source, index = tensor_parts(edge)
            if index >= 0:
                consumed.add(source)
                # Fed by a Switch/Enter/NextIteration: inside a v1 cond branch or loop frame;
                # values leave those through Merge/Exit, so such a node is no model output.
                if source in nodes and nodes[source].op in FRAME_OPS:
                    inside_control_flow.add(node.name)
    analysis = GraphAnalysis(
        node_count=len(graph_def.node),
        producer=int(graph_def.versions.producer),
        min_consumer=int(graph_def.versions.min_consumer),
        op_histogram=dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        functions=sorted(functions),
        function_op_count=sum(len(f.node_def) for f in functions.values()),
        control_flow=sorted(op for op in uses if op in CONTROL_FLOW_OPS),
        variable_ops=[f"{n.name} ({n.op})" for n in graph_def.node if n.op in VARIABLE_OPS],
        ops_used={op: sorted(w, key=lambda x: (x != GRAPH, x)) for op, w in sorted(uses.items())},
        state_writers=state_writers(uses),
        random_ops=random_ops(uses),
    )
    for node in graph_def.node:
        if node.op in PLACEHOLDER_OPS and node.name in consumed:  # lowering leaves unused ones
            analysis.inputs.append(_placeholder_info(node))
        elif node.op == "PlaceholderWithDefault":
            info = _placeholder_info(node)
            info.note = "has a default value: feeding it is optional"
            analysis.optional_inputs.append(info)
    for node in graph_def.node:
        if (
            node.name in consumed
            or node.name in inside_control_flow
            or node.op in NOT_OUTPUTS
            or STATE_WRITERS.match(node.op)
        ):
            continue
        for index in range(_output_count(node, registry)):
            analysis.outputs.append(TensorSpecInfo(f"{node.name}:{index}", node.op, None, None))
    for info in analysis.inputs:
        if info.dtype == "resource":
            info.note = "a captured variable: the graph was not frozen, its weights are missing"
    if infer:
        _infer_outputs(graph_def, analysis)
    return analysis


def _infer_outputs(graph_def: Any, analysis: GraphAnalysis) -> None:
    """Fill in output dtypes/shapes with TensorFlow's shape inference, when it can import."""
    import tensorflow as tf

    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
    except Exception as exc:  # an unregistered op, a bad attr: report, do not fail inspect
        lines = str(exc).strip().splitlines()
        analysis.import_error = lines[0] if lines else type(exc).__name__
        return
    outputs = []
    nodes = dict.fromkeys(tensor_parts(info.name)[0] for info in analysis.outputs)
    for node in nodes:  # the imported op knows its outputs, with or without a registry
        op = graph.get_operation_by_name(node)
        for tensor in op.outputs:
            outputs.append(
                TensorSpecInfo(
                    tensor.name, op.type, dtype_name(tensor.dtype.as_datatype_enum), None
                )
            )
            # A dimension of size 0 is real; as_list gives None only for unknown ones.
            if tensor.shape.rank is not None:
                outputs[-1].shape = [-1 if d is None else d for d in tensor.shape.as_list()]
    analysis.outputs = outputs


def tensor_specs(
    graph_def: Any, names: Iterable[str]
) -> tuple[dict[str, tuple[str, list[int] | None]], str | None]:
    """(dtype, shape) of tensors by name, and why TensorFlow could not import the graph.

    Placeholders are read from their attrs; other tensors come from TensorFlow's shape
    inference (dtype ``""`` and unknown shape when the graph does not import)."""
    nodes = {node.name: node for node in graph_def.node}
    wanted = list(names)
    found: dict[str, tuple[str, list[int] | None]] = {}
    rest = []
    for name in wanted:
        node_name, index = tensor_parts(name)
        node = nodes.get(node_name)
        if (
            node is not None
            and index == 0
            and node.op in (*PLACEHOLDER_OPS, "PlaceholderWithDefault")
        ):
            info = _placeholder_info(node)
            found[name] = (info.dtype or "", info.shape)
        else:
            rest.append(name)
    if not rest:
        return found, None
    import tensorflow as tf

    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.compat.v1.import_graph_def(graph_def, name="")
    except Exception as exc:  # unregistered op or bad attr: the consumers will say more
        lines = str(exc).strip().splitlines()
        for name in rest:
            found[name] = ("", None)
        return found, lines[0] if lines else type(exc).__name__
    for name in rest:
        try:
            tensor = graph.get_tensor_by_name(name)
        except (KeyError, ValueError) as exc:
            raise UserError(f"no tensor {name!r} in the graph ({exc})") from None
        shape = (
            None
            if tensor.shape.rank is None
            else [-1 if d is None else d for d in tensor.shape.as_list()]
        )
        found[name] = (dtype_name(tensor.dtype.as_datatype_enum), shape)
    return found, None
