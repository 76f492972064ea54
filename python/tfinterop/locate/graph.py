"""The tensors ``locate`` can fetch from a frozen GraphDef, in topological order.

Left out: constants (equal by construction), the inputs, and every node inside a
conditional branch (downstream of a ``Switch`` before its ``Merge``) or a loop body
(between ``Enter`` and ``Exit``): their tensors may be dead or per-iteration, and fetching
one fails the whole run. Read with TensorFlow's own graph import, which gives every op's
outputs and dtypes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ..inspect.graphdef import load_graph_def, tensor_parts

SKIPPED_OPS = frozenset({"Const", "Placeholder", "PlaceholderV2", "PlaceholderWithDefault", "NoOp"})
BRANCH_START, BRANCH_END = frozenset({"Switch", "RefSwitch"}), frozenset({"Merge", "RefMerge"})
LOOP_START, LOOP_END = frozenset({"Enter", "RefEnter"}), frozenset({"Exit", "RefExit"})
FETCHABLE_DTYPES = frozenset(
    {
        "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128", "string",
    }
)  # fmt: skip


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    """Data inputs as tensor names (``node:index``), in order."""
    outputs: list[tuple[str, str]] = field(default_factory=list)
    """(tensor name, dtype) of the outputs that can be fetched and compared."""
    index: int = 0
    """Position in topological order."""


@dataclass
class GraphTensors:
    nodes: list[Node]
    """Every node whose outputs are fetched, in topological order."""
    by_name: dict[str, Node]
    """Every node of the graph (also those left out), by name."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Node name -> why it is not fetched (inside a branch or a loop)."""

    @property
    def tensors(self) -> list[str]:
        return [name for node in self.nodes for name, _ in node.outputs]


def _downstream_until(starts: set[str], ends: frozenset[str], consumers: dict[str, set[str]],
                      ops: dict[str, str]) -> set[str]:  # fmt: skip
    """Nodes reachable from ``starts`` without passing a node whose op is in ``ends``."""
    seen: set[str] = set()
    queue = deque(n for start in starts for n in consumers.get(start, ()))
    while queue:
        name = queue.popleft()
        if name in seen or ops.get(name) in ends:
            continue
        seen.add(name)
        queue.extend(consumers.get(name, ()))
    return seen


def read_graph(path: Path) -> GraphTensors:
    """The graph's fetchable tensors, in topological order (UserError if not a GraphDef)."""
    import tensorflow as tf

    graph_def = load_graph_def(path)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    ops = {node.name: node.op for node in graph_def.node}
    data_inputs = {
        node.name: [i for i in node.input if not i.startswith("^")] for node in graph_def.node
    }
    consumers: dict[str, set[str]] = {}
    for name, inputs in data_inputs.items():
        for tensor in inputs:
            consumers.setdefault(tensor_parts(tensor)[0], set()).add(name)
    left_out = {
        name: "inside a conditional branch (Switch .. Merge)"
        for name in _downstream_until(
            {n for n, op in ops.items() if op in BRANCH_START}, BRANCH_END, consumers, ops
        )
    }
    for name in _downstream_until(
        {n for n, op in ops.items() if op in LOOP_START}, LOOP_END, consumers, ops
    ):
        left_out.setdefault(name, "inside a loop body (Enter .. Exit)")
    for name, op in ops.items():
        if op in BRANCH_START or op in LOOP_START:
            left_out.setdefault(name, f"a control-flow op ({op})")

    # Kahn's order over data inputs, ties broken by the GraphDef's own order.
    position = {node.name: i for i, node in enumerate(graph_def.node)}
    pending = {name: len({tensor_parts(t)[0] for t in ins}) for name, ins in data_inputs.items()}
    ready = sorted((n for n, count in pending.items() if count == 0), key=position.__getitem__)
    order: list[str] = []
    queue = deque(ready)
    while queue:
        name = queue.popleft()
        order.append(name)
        for user in sorted(consumers.get(name, ()), key=position.__getitem__):
            pending[user] -= 1
            if pending[user] == 0:
                queue.append(user)
    order += [n for n in position if n not in set(order)]  # cycles (loops): as written

    by_name: dict[str, Node] = {}
    nodes: list[Node] = []
    for index, name in enumerate(order):
        operation = graph.get_operation_by_name(name)
        node = Node(name, ops[name], [t if ":" in t else f"{t}:0" for t in data_inputs[name]])
        node.index = index
        by_name[name] = node
        if ops[name] in SKIPPED_OPS or name in left_out:
            continue
        node.outputs = [
            (t.name, t.dtype.base_dtype.name if t.dtype != tf.string else "string")
            for t in operation.outputs
            if (t.dtype.base_dtype.name if t.dtype != tf.string else "string") in FETCHABLE_DTYPES
        ]
        if node.outputs:
            nodes.append(node)
    return GraphTensors(nodes, by_name, left_out)


def spread(nodes: list[Node], limit: int) -> list[Node]:
    """At most ``limit`` nodes evenly spread over the order (first and last included)."""
    if len(nodes) <= limit:
        return list(nodes)
    step = (len(nodes) - 1) / (limit - 1)
    return [nodes[round(i * step)] for i in range(limit)]
