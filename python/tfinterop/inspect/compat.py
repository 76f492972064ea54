"""Will a model load and run in *another* TensorFlow runtime? Predicted from the protos alone.

``predict(model, target, producer)`` compares every node of a model (the main graph of a frozen
GraphDef or of each SavedModel MetaGraph, and every function of the library, called or not)
with the target runtime's registry (``kernels.Registry``: OpDefs and KernelDefs, dumped by the
C consumer running against that runtime's libtensorflow) and lists what goes wrong there.

What TensorFlow does (its source, and the C API of tensorflow-cpu 2.12.0 on edited models):

* Building a graph from the protos fails on an op the target does not register ("Op type
  not registered", ``graph_constructor.cc``) and on an edge whose dtypes disagree. Importing
  the main graph builds the body of every function it calls, directly or through other
  functions (shape inference of the call nodes), even one that never runs (the checkpoint
  save) and nodes that are pruned later. A function nothing calls is never built by the C
  API loaders (``TF_GraphImportGraphDef``, ``TF_LoadSessionFromSavedModel``);
  ``tf.saved_model.load`` rebuilds every library function, so there it fails too
  (``loader=PYTHON_OBJECT``).
* An attr the target's OpDef does not have is **ignored** (TF 2.x ``ValidateNodeDef``,
  ``node_def_util.cc``: logs "NodeDef mentions attribute X which is not in the op definition
  ... Unknown attributes will be ignored" and goes on). No C API loader strips attrs
  (``RemoveNewDefaultAttrsFromGraphDef``, ``graph_def_util.cc``, is not called on those paths;
  Python's ``import_graph_def(producer_op_list=...)`` strips the ones equal to the producer's
  default, which a SavedModel's ``stripped_op_list`` supplies). So such an attr is harmless
  when it holds the producer OpDef's default, and changes behaviour otherwise; it breaks the
  load when it is a type attr that gave an input or output a dtype the target's OpDef fixes
  otherwise (``TopKV2``'s ``index_type=int64`` in 2.12: "Input 0 of node ... was passed int32
  ... incompatible with expected int64").
* A value outside the target OpDef's ``allowed_values`` (or under its ``minimum``), or a
  required attr (no default in the target) the node lacks, fails ``ValidateNodeDef``: at the
  import of a main-graph node; in a function body only when the node runs (its kernel is
  made), so not in functions that do not run, nor for nodes feeding none of the function's
  outputs (pruned). Placeholder values (``placeholder: "T"``) take the caller's value and are
  not checked.
* Every main-graph node needs a CPU (or DEFAULT) kernel whose constraints
  (``KernelDef.constraint``, ``kernel_def_util.cc`` ``KernelAttrsMatch``) accept its attrs:
  the session places the whole graph, fetched or not, at load for a SavedModel (the restore
  op runs there), at the first run for a frozen graph. A function body's nodes need one when
  they run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..formats import FROZEN, SAVED_MODEL
from .graphdef import GRAPH, call_closure, tensor_parts
from .kernels import CPU_DEVICES, Registry

C_API = "c_api"
"""``TF_GraphImportGraphDef`` + ``TF_SessionRun`` (frozen), ``TF_LoadSessionFromSavedModel``
(SavedModel): the C and Rust consumers."""
PYTHON_OBJECT = "python_object"
"""``tf.saved_model.load``: every library function is rebuilt as a graph at load."""
LOADERS = (C_API, PYTHON_OBJECT)

OP_NOT_REGISTERED = "op_not_registered"
UNKNOWN_ATTR = "unknown_attr"
"""The node sets an attr the target's OpDef lacks: ignored (logged) by the target."""
ARG_TYPE_CHANGED = "arg_type_changed"
"""An ignored type attr decided an input/output dtype the target's OpDef fixes otherwise."""
VALUE_NOT_ALLOWED = "value_not_allowed"
MISSING_ATTR = "missing_attr"
NO_CPU_KERNEL = "no_cpu_kernel"
NO_MATCHING_KERNEL = "no_matching_kernel"
KINDS = (
    OP_NOT_REGISTERED,
    ARG_TYPE_CHANGED,
    VALUE_NOT_ALLOWED,
    MISSING_ATTR,
    NO_CPU_KERNEL,
    NO_MATCHING_KERNEL,
    UNKNOWN_ATTR,
)

ERROR = "error"
"""Loading or running fails."""
WARNING = "warning"
"""Loads and runs, but behaves differently, or fails only for another loader."""
INFO = "info"
"""Ignored by the target without effect (an unknown attr holding the producer's default)."""
SEVERITIES = (ERROR, WARNING, INFO)

LOAD = "load"
RUN = "run"
STRIPPED_OP_LIST = "stripped_op_list"
"""``where`` of an op only the SavedModel's ``meta_info_def.stripped_op_list`` names."""
SHOWN_NODES = 3
_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")
KERNEL_LABEL_ATTR = "_kernel"


@dataclass
class GraphSource:
    """One graph a loader imports: a frozen GraphDef, or one SavedModel MetaGraph's."""

    label: str
    """``graph`` (frozen) or ``MetaGraph serve`` (the tag set)."""
    graph_def: Any
    tags: list[str] = field(default_factory=list)
    producer_op_defs: dict[str, Any] = field(default_factory=dict)
    """The MetaGraph's ``meta_info_def.stripped_op_list``: the producer's OpDefs of its ops."""
    tensorflow_version: str = ""
    """``meta_info_def.tensorflow_version`` (empty for a frozen graph)."""
    roots: list[str] = field(default_factory=list)
    """Main-graph nodes a SavedModel load or signature runs (signature outputs, init and
    restore ops); empty: every node (a frozen graph)."""


@dataclass
class ModelGraphs:
    path: Path
    format: str
    """``frozen`` or ``saved_model`` (formats.py)."""
    graphs: list[GraphSource]


@dataclass
class Incompatibility:
    """One problem in the target runtime, for every node that has it (``count``)."""

    kind: str
    severity: str
    stage: str
    """``load``, ``run`` or empty (nothing fails with this loader)."""
    op: str
    attr: str | None
    node: str
    """The first node with the problem."""
    where: str
    """``graph`` or the function holding ``node``."""
    runtime: str
    """The target's TensorFlow version."""
    message: str
    count: int = 1
    nodes: list[str] = field(default_factory=list)
    """The first few nodes, ``WHERE/NODE`` for nodes in functions."""
    places: list[str] = field(default_factory=list)
    """Every graph/function holding such a node (``graph`` first)."""
    meta_graph: str = ""
    """Tag set of the SavedModel MetaGraph (empty for a frozen graph)."""
    value: str = ""
    """The offending attr value, or for kernels the attrs the kernels were matched with."""

    @property
    def fatal(self) -> bool:
        return self.severity == ERROR

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fatal"] = self.fatal
        return data


# ------------------------------------------------------------------------------ loading


def _saved_model_roots(meta_graph: Any) -> list[str]:
    roots = []
    for signature in meta_graph.signature_def.values():
        for info in signature.outputs.values():
            if info.name:
                roots.append(tensor_parts(info.name)[0])
    saver = meta_graph.saver_def
    for name in (saver.restore_op_name, saver.filename_tensor_name):
        if name:
            roots.append(tensor_parts(name)[0])
    for key in _INIT_COLLECTIONS:
        if key in meta_graph.collection_def:
            roots += [tensor_parts(n)[0] for n in meta_graph.collection_def[key].node_list.value]
    return roots


def model_graphs(path: Path, fmt: str | None = None, tags: list[str] | None = None) -> ModelGraphs:
    """The graphs a loader imports from ``path``: a frozen GraphDef (``fmt`` ``frozen``, also
    ``graph_def``) or a SavedModel directory (every MetaGraph, or the one with ``tags``).
    ``fmt`` None: a directory is a SavedModel. Raises UserError."""
    from . import graphdef
    from .savedmodel import read_saved_model

    if fmt is None:
        fmt = SAVED_MODEL if path.is_dir() or path.name.startswith("saved_model.pb") else FROZEN
    if fmt == SAVED_MODEL:
        directory = path.parent if path.is_file() else path
        info = read_saved_model(directory)
        metas = [info.meta_graph(tags)] if tags else info.meta_graphs
        graphs = []
        for meta in metas:
            proto = meta.proto
            graphs.append(
                GraphSource(
                    label="MetaGraph " + ",".join(meta.tags),
                    graph_def=proto.graph_def,
                    tags=list(meta.tags),
                    producer_op_defs={
                        op.name: op for op in proto.meta_info_def.stripped_op_list.op
                    },
                    tensorflow_version=meta.tensorflow_version,
                    roots=_saved_model_roots(proto),
                )
            )
        return ModelGraphs(directory, SAVED_MODEL, graphs)
    if fmt not in (FROZEN, "graph_def"):
        raise UserError(f"cannot predict compatibility of a {fmt} model")
    return ModelGraphs(path, FROZEN, [GraphSource(GRAPH, graphdef.load_graph_def(path))])


# ------------------------------------------------------------------------- attr values


@cache
def _dtype_enum() -> dict[int, str]:
    """DataType number -> TensorFlow's DataTypeString (``float``, ``half``, ``int64``...)."""
    from .savedmodel import proto_class

    attr_value = proto_class("tensorflow.AttrValue", "tensorflow/core/framework/attr_value.proto")
    enum = attr_value.DESCRIPTOR.fields_by_name["type"].enum_type
    return {v.number: v.name.removeprefix("DT_").lower() for v in enum.values}


def dtype_string(number: int) -> str:
    return _dtype_enum().get(number, f"type{number}")


def _types(values: Iterable[int]) -> str:
    return ", ".join(dtype_string(t) for t in values)


def summarize(value: Any) -> str:
    """An AttrValue the way TensorFlow prints it in errors (``float``, ``"SAME"``, ``[1, 2]``)."""
    kind = value.WhichOneof("value")
    if kind == "type":
        return dtype_string(value.type)
    if kind == "s":
        return '"' + value.s.decode("utf-8", "replace") + '"'
    if kind in ("i", "f"):
        return str(getattr(value, kind))
    if kind == "b":
        return "true" if value.b else "false"
    if kind == "placeholder":
        return "$" + value.placeholder
    if kind == "func":
        return value.func.name
    if kind == "list":
        items: list[str] = []
        items += [dtype_string(t) for t in value.list.type]
        items += ['"' + s.decode("utf-8", "replace") + '"' for s in value.list.s]
        items += [str(v) for v in (*value.list.i, *value.list.f)]
        items += ["true" if b else "false" for b in value.list.b]
        items += [f.name for f in value.list.func]
        if value.list.shape:
            items.append(f"{len(value.list.shape)} shapes")
        return "[" + ", ".join(items) + "]"
    if kind in ("shape", "tensor"):
        return kind
    return "unset"


def _same_value(a: Any, b: Any) -> bool:
    """AttrValues equal by content (they may come from different descriptor pools)."""
    return bool(a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True))


def _attr_def(op_def: Any, name: str) -> Any | None:
    for attr in op_def.attr:
        if attr.name == name:
            return attr
    return None


def _value_problem(value: Any, attr_def: Any) -> str:
    """Why ``ValidateAttrValue`` (op_def_util.cc) refuses the value, or empty."""
    allowed = attr_def.allowed_values.list
    kind = value.WhichOneof("value")
    if allowed.type:
        given = [value.type] if kind == "type" else list(value.list.type) if kind == "list" else []
        for dtype in given:
            if dtype not in allowed.type:
                return (
                    f"Value for attr '{attr_def.name}' of {dtype_string(dtype)} is not in the "
                    f"list of allowed values: {_types(allowed.type)}"
                )
    if allowed.s:
        strings = [value.s] if kind == "s" else list(value.list.s) if kind == "list" else []
        for text in strings:
            if text not in allowed.s:
                shown = ", ".join('"' + s.decode("utf-8", "replace") + '"' for s in allowed.s)
                return (
                    f"Value for attr '{attr_def.name}' of \"{text.decode('utf-8', 'replace')}\" "
                    f"is not in the list of allowed values: {shown}"
                )
    if attr_def.has_minimum:
        if attr_def.type == "int" and kind == "i" and value.i < attr_def.minimum:
            return (
                f"Value for attr '{attr_def.name}' of {value.i} must be at least minimum "
                f"{attr_def.minimum}"
            )
        if attr_def.type.startswith("list(") and kind == "list":
            length = max(
                len(getattr(value.list, part))
                for part in ("s", "i", "f", "b", "type", "shape", "tensor", "func")
            )
            if length < attr_def.minimum:
                return (
                    f"Length for attr '{attr_def.name}' of {length} must be at least minimum "
                    f"{attr_def.minimum}"
                )
    return ""


# --------------------------------------------------------------------------- kernels


def _constraint_accepts(constraint: Any, value: Any) -> bool:
    """``KernelAttrsMatch`` for one constraint; a placeholder value is taken as accepted."""
    allowed = constraint.allowed_values.list
    kind = value.WhichOneof("value")
    if kind == "placeholder":
        return True
    if allowed.type:
        given = [value.type] if kind == "type" else list(value.list.type)
        return all(t in allowed.type for t in given)
    if allowed.s:
        return (value.s in allowed.s) if kind == "s" else all(s in allowed.s for s in value.list.s)
    if allowed.i:
        return (value.i in allowed.i) if kind == "i" else all(i in allowed.i for i in value.list.i)
    if allowed.b:
        return (value.b in allowed.b) if kind == "b" else all(b in allowed.b for b in value.list.b)
    return True


def _kernel_matches(kernel: Any, attrs: dict[str, Any]) -> bool:
    for constraint in kernel.constraint:
        value = attrs.get(constraint.name)
        if value is None or not _constraint_accepts(constraint, value):
            return False
    return True


def _describe_kernels(kernels: list[Any]) -> str:
    """The CPU/DEFAULT kernels' constraints, merged per device and attr."""
    merged: dict[str, dict[str, list[str]]] = {}
    for kernel in kernels:
        device = merged.setdefault(kernel.device_type, {})
        if not kernel.constraint:
            device.setdefault("", [])
        for constraint in kernel.constraint:
            allowed = constraint.allowed_values.list
            values = [dtype_string(t) for t in allowed.type] + [
                str(v) for v in (*allowed.s, *allowed.i, *allowed.b)
            ]
            known = device.setdefault(constraint.name, [])
            known += [v for v in values if v not in known]
    parts = []
    for device_type, constraints in sorted(merged.items()):
        shown = "; ".join(
            f"{name} in {{{', '.join(values)}}}" for name, values in constraints.items() if name
        )
        parts.append(f"{device_type} {shown or 'any attrs'}")
    return ", ".join(parts)


# ------------------------------------------------------------------------------ checks


@dataclass
class _Finding:
    kind: str
    op: str
    attr: str | None
    node: str
    where: str
    severity: str
    stage: str
    detail: str
    """The whole message for this node."""
    value: str = ""


@dataclass
class _Scope:
    """Where a node is: the main graph or a function, and whether its nodes run."""

    where: str
    reachable: bool = True
    """The main graph, or a function it calls (directly or through functions)."""
    executed: bool = True
    """Called from what loading or a signature runs (not only, say, the checkpoint save)."""
    live: frozenset[str] = frozenset()
    """Function body nodes feeding its outputs (``ret``/``control_ret``); others are pruned."""

    @property
    def main(self) -> bool:
        return self.where == GRAPH


def _input_node(edge: str) -> str:
    """The node an input names: ``^a``, ``a``, ``a:1`` (graph), ``a:out:0`` (function)."""
    return edge.lstrip("^").split(":")[0]


def _closure(nodes: dict[str, Any], roots: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        pending.extend(_input_node(edge) for edge in nodes[name].input)
    return seen


def _live_nodes(function: Any) -> frozenset[str]:
    nodes = {node.name: node for node in function.node_def}
    roots = [_input_node(v) for v in function.ret.values()]
    roots += list(function.control_ret.values())
    return frozenset(_closure(nodes, roots))


def _consumed_outputs(nodes: Iterable[Any], rets: Iterable[str]) -> set[tuple[str, str]]:
    """(node, output) pairs read by data inputs: ``node:N`` in a graph, ``node:arg:N`` in a
    function body (returned values count as read)."""
    used: set[tuple[str, str]] = set()
    for edge in [e for node in nodes for e in node.input] + list(rets):
        if edge.startswith("^"):
            continue
        parts = edge.split(":")
        used.add((parts[0], parts[1] if len(parts) > 1 else "0"))
    return used


def _output_slots(node: Any, op_def: Any, arg_name: str) -> list[str]:
    """The graph output indices of output arg ``arg_name`` (as strings), by ``op_def``."""
    index = 0
    for arg in op_def.output_arg:
        width = 1
        if arg.number_attr:
            width = int(node.attr[arg.number_attr].i) if arg.number_attr in node.attr else 1
        elif arg.type_list_attr and arg.type_list_attr in node.attr:
            width = len(node.attr[arg.type_list_attr].list.type)
        if arg.name == arg_name:
            return [str(index + k) for k in range(width)]
        index += width
    return []


def _where_text(where: str) -> str:
    return "in graph" if where == GRAPH else f"in function {where}"


class _Checker:
    """The findings for one graph (a frozen GraphDef or one MetaGraph's) in the target."""

    def __init__(
        self,
        target: Registry,
        producer: Registry | None,
        source: GraphSource,
        loader: str,
        frozen: bool,
    ) -> None:
        self.target = target
        self.version = target.tf_version
        self.producer = producer
        self.source = source
        self.loader = loader
        self.frozen = frozen
        self.findings: list[_Finding] = []

    def producer_op(self, op: str) -> Any | None:
        """The producer's OpDef: the SavedModel's own stripped_op_list, else its registry."""
        if op in self.source.producer_op_defs:
            return self.source.producer_op_defs[op]
        if self.producer is not None:
            return self.producer.op_defs.get(op)
        return None

    def add(
        self,
        kind: str,
        node: Any,
        scope: _Scope,
        attr: str | None,
        outcome: tuple[str, str, str],
        head: str,
        value: str = "",
    ) -> None:
        severity, stage, effect = outcome
        detail = f"{node.op} node '{node.name}' ({_where_text(scope.where)}) {head}: {effect}"
        self.findings.append(
            _Finding(kind, node.op, attr, node.name, scope.where, severity, stage, detail, value)
        )

    def outcome(self, scope: _Scope, node: Any, stage: str, error: str) -> tuple[str, str, str]:
        """(severity, stage, what happens) for a problem TensorFlow finds when it validates
        (``stage`` LOAD: at import for a main-graph node) or runs the node."""
        quoted = f'"{error}"'
        if scope.main:
            when = "loading fails" if stage == LOAD else "the first run fails"
            return ERROR, stage, f"{when} with {quoted}"
        if stage == LOAD and self.loader == PYTHON_OBJECT:
            return ERROR, LOAD, f"tf.saved_model.load validates every function: fails with {quoted}"
        if not scope.reachable:
            return (
                WARNING,
                "",
                f"nothing calls function {scope.where}, so nothing fails ({quoted} if it ever runs)",
            )
        if not scope.executed:
            return (
                WARNING,
                "",
                f"function {scope.where} is called only by nodes that neither loading nor a "
                f"signature runs (such as the checkpoint save), so nothing fails ({quoted} when it runs)",
            )
        if node.name not in scope.live:
            return (
                WARNING,
                "",
                f"the node feeds none of {scope.where}'s outputs, so TensorFlow prunes it "
                f"({quoted} if it ran)",
            )
        return ERROR, RUN, f"running the function fails with {quoted}"

    def check_node(
        self, node: Any, scope: _Scope, library: set[str], consumed: set[tuple[str, str]]
    ) -> None:
        if node.op in library:
            return  # a call by function name: the function itself is checked
        op_def = self.target.op_defs.get(node.op)
        if op_def is None:
            self.not_registered(node, scope)
            return
        attrs = dict(node.attr.items())
        attr_problem = False
        producer_def = self.producer_op(node.op)
        for name, value in sorted(attrs.items()):
            if name.startswith("_"):
                continue  # internal attrs: ValidateNodeDef skips them
            attr_def = _attr_def(op_def, name)
            if attr_def is None:
                attr_problem |= self.unknown_attr(
                    node, name, value, scope, producer_def, op_def, consumed
                )
            elif value.WhichOneof("value") != "placeholder":
                problem = _value_problem(value, attr_def)
                if problem:
                    attr_problem = True
                    shown = summarize(value)
                    head = f"sets attr {name}={shown}, which TensorFlow {self.version}'s {node.op} does not allow"
                    self.add(
                        VALUE_NOT_ALLOWED,
                        node,
                        scope,
                        name,
                        self.outcome(scope, node, LOAD, problem),
                        head,
                        shown,
                    )
        for attr_def in op_def.attr:
            if attr_def.name not in attrs and not attr_def.HasField("default_value"):
                attr_problem = True
                problem = f"NodeDef missing attr '{attr_def.name}' from Op<name={node.op} ...>"
                head = f"does not set attr {attr_def.name}, which TensorFlow {self.version}'s {node.op} requires (it has no default)"
                self.add(
                    MISSING_ATTR,
                    node,
                    scope,
                    attr_def.name,
                    self.outcome(scope, node, LOAD, problem),
                    head,
                )
        if not attr_problem:
            self.check_kernel(node, op_def, attrs, scope)

    def built_outcome(self, scope: _Scope, error: str) -> tuple[str, str, str]:
        """For a problem found when a graph is built from the protos (an op lookup, an edge's
        dtype): importing the main graph builds every function it calls, directly or not
        (shape inference of the call nodes), pruned nodes and unrun functions included."""
        quoted = f'"{error}"'
        if scope.reachable:
            return ERROR, LOAD, f"loading fails with {quoted}"
        if self.loader == PYTHON_OBJECT:
            return (
                ERROR,
                LOAD,
                f"tf.saved_model.load rebuilds every library function: it fails with {quoted}",
            )
        return (
            WARNING,
            "",
            f"nothing calls function {scope.where}, so the C API loads the model; "
            f"tf.saved_model.load and converters that rebuild every library function fail "
            f"with {quoted}",
        )

    def not_registered(self, node: Any, scope: _Scope) -> None:
        outcome = self.built_outcome(scope, f"Op type not registered '{node.op}' in binary")
        head = f"uses op {node.op}, which TensorFlow {self.version} does not register"
        self.add(OP_NOT_REGISTERED, node, scope, None, outcome, head)

    def unknown_attr(
        self,
        node: Any,
        name: str,
        value: Any,
        scope: _Scope,
        producer_def: Any | None,
        op_def: Any,
        consumed: set[tuple[str, str]],
    ) -> bool:
        """Record an attr the target ignores; True when ignoring it breaks the node."""
        shown = summarize(value)
        head = (
            f"sets attr {name}={shown}, which TensorFlow {self.version}'s {node.op} does not have"
        )
        logged = (
            f'TensorFlow ignores it (logs "NodeDef mentions attribute {name} which is not in the '
            'op definition ... Unknown attributes will be ignored")'
        )
        producer_attr = _attr_def(producer_def, name) if producer_def is not None else None
        drift = self.type_drift(
            node, name, value, producer_def, op_def, consumed, producer_attr, scope.main
        )
        if drift:
            change, error = drift
            severity, stage, effect = self.built_outcome(scope, error)
            self.add(
                ARG_TYPE_CHANGED,
                node,
                scope,
                name,
                (severity, stage, f"{logged}, so {change}; {effect}"),
                head,
                shown,
            )
            return True
        if value.WhichOneof("value") == "placeholder":
            severity, effect = (
                WARNING,
                "its value comes from the caller: the node may behave differently",
            )
        elif producer_attr is None:
            severity, effect = (
                WARNING,
                "the producer's default is unknown: the node may behave differently",
            )
        elif producer_attr.HasField("default_value") and _same_value(
            producer_attr.default_value, value
        ):
            severity, effect = INFO, "the value is the producer's default: nothing changes"
        else:
            default = (
                summarize(producer_attr.default_value)
                if producer_attr.HasField("default_value")
                else "none"
            )
            severity, effect = (
                WARNING,
                f"the value differs from the producer's default ({default}): the node runs as if it were unset",
            )
        self.add(
            UNKNOWN_ATTR, node, scope, name, (severity, "", f"{logged}; {effect}"), head, shown
        )
        return False

    def type_drift(
        self,
        node: Any,
        name: str,
        value: Any,
        producer_def: Any | None,
        op_def: Any,
        consumed: set[tuple[str, str]],
        producer_attr: Any | None,
        main: bool,
    ) -> tuple[str, str] | None:
        """(what changes, TensorFlow's error) when ignoring type attr ``name`` gives a connected
        input or output another dtype (the target's OpDef fixes it); None otherwise. ``main``:
        the node is in the main graph (a function body's edges fail with other words)."""
        if producer_def is None or producer_attr is None or producer_attr.type != "type":
            return None
        if value.WhichOneof("value") != "type":
            return None
        wanted = dtype_string(value.type)
        inputs = {arg.name: arg for arg in op_def.input_arg}
        for arg in producer_def.input_arg:
            fixed = inputs.get(arg.name)
            if (
                arg.type_attr == name
                and fixed is not None
                and fixed.type
                and fixed.type != value.type
            ):
                got = dtype_string(fixed.type)
                error = (
                    f"Input ... of node {node.name} was passed {wanted} from ... incompatible "
                    f"with expected {got}"
                    if main
                    else f"input ... expected type {got} != {wanted} ... In {{{{node {node.name}}}}}"
                )
                return f"its input '{arg.name}' must be {got}, not {wanted}", error
        outputs = {arg.name: arg for arg in op_def.output_arg}
        for arg in producer_def.output_arg:
            fixed = outputs.get(arg.name)
            if arg.type_attr != name or fixed is None or not fixed.type or fixed.type == value.type:
                continue
            slots = {*_output_slots(node, producer_def, arg.name), arg.name}
            if any((node.name, slot) in consumed for slot in slots):
                got = dtype_string(fixed.type)
                error = (
                    f"Input ... was passed {got} from {node.name}:... incompatible with "
                    f"expected {wanted}"
                    if main
                    else f"input ... expected type {wanted} != {got}, the type of "
                    f"{node.name}:{arg.name}:..."
                )
                return f"its output '{arg.name}' is {got} instead of {wanted}", error
        return None

    def check_kernel(self, node: Any, op_def: Any, attrs: dict[str, Any], scope: _Scope) -> None:
        stage = RUN if (self.frozen or not scope.main) else LOAD  # SavedModels run restore at load
        with_defaults = dict(attrs)
        for attr_def in op_def.attr:
            if attr_def.name not in with_defaults and attr_def.HasField("default_value"):
                with_defaults[attr_def.name] = attr_def.default_value
        devices = sorted(self.target.kernel_devices.get(node.op, frozenset()))
        if not set(devices) & CPU_DEVICES:
            error = (
                f"No OpKernel was registered to support Op '{node.op}' "
                f"(kernels exist for devices: {', '.join(devices) or 'none'})"
            )
            head = f"has no CPU kernel in TensorFlow {self.version}"
            self.add(
                NO_CPU_KERNEL, node, scope, None, self.outcome(scope, node, stage, error), head
            )
            return
        kernels = [
            k for k in self.target.kernel_defs.get(node.op, []) if k.device_type in CPU_DEVICES
        ]
        if not kernels:
            return  # a registry without KernelDefs: the device check is all there is
        label = (
            attrs[KERNEL_LABEL_ATTR].s.decode("utf-8", "replace")
            if KERNEL_LABEL_ATTR in attrs
            else ""
        )
        labelled = [k for k in kernels if k.label == label] or kernels
        if any(k.label == label and _kernel_matches(k, with_defaults) for k in labelled):
            return
        constrained = sorted({c.name for k in labelled for c in k.constraint})
        shown = ", ".join(
            f"{a}={summarize(with_defaults[a])}" if a in with_defaults else f"{a} unset"
            for a in constrained
        )
        error = (
            f"No OpKernel was registered to support Op '{node.op}' used by "
            f"{{{{node {node.name}}}}} with these attrs: [{shown}]"
        )
        head = (
            f"has no TensorFlow {self.version} CPU kernel for {shown or 'its attrs'}"
            f"{f' (label {label!r})' if label else ''} (kernels: {_describe_kernels(labelled)})"
        )
        attr = constrained[0] if len(constrained) == 1 else None
        self.add(
            NO_MATCHING_KERNEL,
            node,
            scope,
            attr,
            self.outcome(scope, node, stage, error),
            head,
            shown,
        )

    def run(self) -> list[_Finding]:
        graph_def = self.source.graph_def
        functions = {f.signature.name: f for f in graph_def.library.function}
        library = set(functions)
        reachable = call_closure(graph_def.node, functions)
        nodes = {node.name: node for node in graph_def.node}
        roots = self.source.roots
        executed_nodes = [nodes[n] for n in _closure(nodes, roots)] if roots else graph_def.node
        executed = call_closure(executed_nodes, functions)
        consumed = _consumed_outputs(graph_def.node, ())
        for node in graph_def.node:
            self.check_node(node, _Scope(GRAPH), library, consumed)
        for name in sorted(functions, key=lambda n: (n not in reachable, n)):
            function = functions[name]
            scope = _Scope(name, name in reachable, name in executed, _live_nodes(function))
            consumed = _consumed_outputs(function.node_def, function.ret.values())
            for node in function.node_def:
                self.check_node(node, scope, library, consumed)
        self.stripped_only(graph_def, functions)
        return self.findings

    def stripped_only(self, graph_def: Any, functions: dict[str, Any]) -> None:
        """Ops only the MetaGraph's stripped_op_list names: nothing in the C API reads it."""
        used = {n.op for n in graph_def.node} | {
            n.op for f in functions.values() for n in f.node_def
        }
        for op in sorted(self.source.producer_op_defs):
            if op in self.target.op_defs or op in used:
                continue
            detail = (
                f"op {op}, listed in the MetaGraph's stripped_op_list but used by no node, is not "
                f"registered in TensorFlow {self.version}: nothing reads that list at load, "
                "nothing fails"
            )
            self.findings.append(
                _Finding(OP_NOT_REGISTERED, op, None, "", STRIPPED_OP_LIST, WARNING, "", detail)
            )


# ----------------------------------------------------------------------------- grouping


def _group(findings: list[_Finding], runtime: str, meta_graph: str) -> list[Incompatibility]:
    groups: dict[tuple[str, str, str | None, str, str], list[_Finding]] = {}
    for finding in findings:
        key = (finding.kind, finding.op, finding.attr, finding.severity, finding.stage)
        groups.setdefault(key, []).append(finding)
    records = []
    for (kind, op, attr, severity, stage), items in groups.items():
        first = items[0]
        places = sorted({f.where for f in items}, key=lambda w: (w != GRAPH, w))
        nodes = [f.node if f.where == GRAPH else f"{f.where}/{f.node}" for f in items]
        message = first.detail
        if len(items) > 1:
            more = ", ".join(nodes[1 : 1 + SHOWN_NODES])
            rest = len(items) - 1 - SHOWN_NODES
            message += (
                f" [{len(items)} nodes; also {more}" + (f", +{rest} more" if rest > 0 else "") + "]"
            )
        records.append(
            Incompatibility(
                kind=kind,
                severity=severity,
                stage=stage,
                op=op,
                attr=attr,
                node=first.node,
                where=first.where,
                runtime=runtime,
                message=message,
                count=len(items),
                nodes=nodes[: SHOWN_NODES + 1],
                places=places,
                meta_graph=meta_graph,
                value=first.value,
            )
        )
    records.sort(
        key=lambda r: (SEVERITIES.index(r.severity), KINDS.index(r.kind), r.op, r.attr or "")
    )
    return records


def predict(
    model: ModelGraphs,
    target: Registry,
    producer: Registry | None = None,
    *,
    loader: str = C_API,
) -> list[Incompatibility]:
    """Every problem loading or running ``model`` in the ``target`` runtime (errors first).

    ``producer`` is the registry of the runtime that exported the model: its OpDefs tell
    whether an attr the target ignores held the default (a SavedModel's own
    ``stripped_op_list`` is preferred). ``loader``: ``C_API`` (the C and Rust consumers) or
    ``PYTHON_OBJECT`` (``tf.saved_model.load``, which also rebuilds uncalled functions)."""
    if loader not in LOADERS:
        raise ValueError(f"loader {loader!r}: one of {', '.join(LOADERS)}")
    records: list[Incompatibility] = []
    for source in model.graphs:
        findings = _Checker(target, producer, source, loader, model.format == FROZEN).run()
        meta_graph = ",".join(source.tags) if model.format == SAVED_MODEL else ""
        records += _group(findings, target.tf_version, meta_graph)
    return records


@dataclass
class RuntimeCheck:
    """``inspect --runtime V``: the predictions for one target runtime."""

    runtime: str
    source: str
    problems: list[Incompatibility] = field(default_factory=list)

    @property
    def loads(self) -> bool:
        return not any(p.fatal for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "source": self.source,
            "loads": self.loads,
            "problems": [p.as_dict() for p in self.problems],
        }
