"""What an emitted program needs to know about a model, taken from its inspection: the tag
set, the signature's real tensor names (a SavedModel's SignatureDef; a frozen graph's
placeholders and outputs), each tensor's dtype and shape, and how each dtype is spelled in
the target language."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UserError
from ...formats import SAVED_MODEL
from ..analyse import GRAPH_DEF, Inspection, MetaGraphReport, SignatureReport, format_shape
from ..graphdef import TensorSpecInfo, tensor_parts

BATCH_SIZE = "BATCH_SIZE"
"""The constant a leading ``-1`` dimension becomes (the batch the model leaves free)."""
FREE_DIM = "FREE_DIM"
"""The constant any other ``-1`` dimension becomes."""
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class DType:
    """One TensorFlow dtype as the emitted programs spell it."""

    name: str
    """The contract/numpy name (``float32``, ``string``...)."""
    rust: str
    """The element type of ``tensorflow::Tensor<T>`` in crate 0.17."""
    c: str
    """The ``TF_DataType`` enumerator."""


DTYPES = {
    d.name: d
    for d in (
        DType("float32", "f32", "TF_FLOAT"),
        DType("float64", "f64", "TF_DOUBLE"),
        DType("float16", "half::f16", "TF_HALF"),
        DType("bfloat16", "tensorflow::BFloat16", "TF_BFLOAT16"),
        DType("int8", "i8", "TF_INT8"),
        DType("int16", "i16", "TF_INT16"),
        DType("int32", "i32", "TF_INT32"),
        DType("int64", "i64", "TF_INT64"),
        DType("uint8", "u8", "TF_UINT8"),
        DType("uint16", "u16", "TF_UINT16"),
        DType("uint32", "u32", "TF_UINT32"),
        DType("uint64", "u64", "TF_UINT64"),
        DType("bool", "bool", "TF_BOOL"),
        DType("complex64", "num_complex::Complex<f32>", "TF_COMPLEX64"),
        DType("complex128", "num_complex::Complex<f64>", "TF_COMPLEX128"),
        DType("string", "String", "TF_STRING"),
    )
}

_RUST_KEYWORDS = frozenset(
    "as break const continue crate else enum extern false fn for if impl in let loop match mod "
    "move mut pub ref return self static struct super trait true type unsafe use where while "
    "async await dyn abstract become box do final macro override priv typeof unsized virtual "
    "yield try main args session graph bundle status model tensor proto count first".split()
)


@dataclass
class Port:
    """One tensor the program feeds or fetches."""

    key: str
    """The signature's key (a frozen graph: the tensor's node name)."""
    tensor: str
    """The graph tensor, ``op:index``, from the SignatureDef or the graph."""
    dtype: DType
    shape: list[int] | None
    """As the model records it (None: unknown rank; -1: free dimension)."""
    variable: str = ""
    """Identifier in the emitted code."""

    @property
    def operation(self) -> str:
        return tensor_parts(self.tensor)[0]

    @property
    def index(self) -> int:
        return tensor_parts(self.tensor)[1]

    @property
    def dims(self) -> list[str]:
        """The dimensions the program uses: free ones become the named constants."""
        return [
            str(d) if d >= 0 else (BATCH_SIZE if i == 0 else FREE_DIM)
            for i, d in enumerate(self.shape or [])
        ]

    @property
    def shape_text(self) -> str:
        return format_shape(self.shape)


@dataclass
class Program:
    """Everything a template renders: the model, how to load it, what to feed and fetch."""

    model: Path
    """Absolute path of the SavedModel directory or GraphDef file."""
    format: str
    """``saved_model`` or ``graph_def``."""
    signature: str
    """The signature key (a frozen graph: ``graph``)."""
    tags: list[str]
    inputs: list[Port]
    outputs: list[Port]
    name: str
    """Package / program name (a Cargo package name)."""
    notes: list[str] = field(default_factory=list)
    """What the reader should know (optional inputs not fed, unknown ranks...)."""

    @property
    def saved_model(self) -> bool:
        return self.format == SAVED_MODEL

    @property
    def uses_batch(self) -> bool:
        return any(BATCH_SIZE in p.dims for p in self.inputs)

    @property
    def uses_free_dim(self) -> bool:
        return any(FREE_DIM in p.dims for p in self.inputs)


def _dtype(kind: str, key: str, dtype: str | None) -> DType:
    if dtype is None or dtype == "":
        raise UserError(
            f"{kind} {key!r}: its dtype is unknown (TensorFlow could not import the graph), "
            "so no program can be typed for it"
        )
    try:
        return DTYPES[dtype]
    except KeyError:
        raise UserError(
            f"{kind} {key!r} has dtype {dtype}: the emitted programs feed and fetch "
            f"{', '.join(DTYPES)} only"
        ) from None


def _identifier(key: str, prefix: str, taken: set[str]) -> str:
    """A Rust/C identifier from a signature key: lower snake case, unique, not a keyword."""
    base = re.sub(r"\W+", "_", key).strip("_").lower() or prefix
    if base[0].isdigit() or base in _RUST_KEYWORDS:
        base = f"{prefix}_{base}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _package_name(model: Path) -> str:
    """``tf-emit-<model>``: a valid Cargo package name (also the C binary's name)."""
    stem = model.stem
    if stem.isdigit() or stem in ("saved_model", "frozen", "model"):  # say whose it is
        stem = f"{model.parent.name}-{stem}"
    stem = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "model"
    return f"tf-emit-{stem}"


def _signature(meta: MetaGraphReport, key: str | None) -> SignatureReport:
    if key is not None:
        return meta.signature(key)  # one line listing the signatures there are
    callable_ = [s for s in meta.signatures if s.callable]
    if any(s.key == DEFAULT_SIGNATURE for s in callable_):
        return meta.signature(DEFAULT_SIGNATURE)
    if len(callable_) == 1:
        return callable_[0]
    available = ", ".join(s.key for s in callable_) or "none"
    raise UserError(f"no {DEFAULT_SIGNATURE} signature: choose one with --signature ({available})")


def program(inspection: Inspection, signature: str | None, name: str | None = None) -> Program:
    """The program for ``signature`` of an inspected model (a SavedModel's default:
    ``serving_default``, or its only signature)."""
    model = inspection.path.resolve()
    taken: set[str] = set()
    notes: list[str] = []
    if inspection.format == GRAPH_DEF:
        if signature is not None:
            raise UserError(
                f"{inspection.path} is a GraphDef: it has no signatures (--signature is for "
                "SavedModels); its placeholders are fed and its outputs fetched"
            )
        graph = inspection.graph
        assert graph is not None  # inspect_graph_def always sets it
        if not graph.inputs and not graph.outputs:
            raise UserError(f"{inspection.path}: the graph has no placeholders and no outputs")
        inputs = [_graph_port("input", t, taken) for t in graph.inputs]
        outputs = [_graph_port("output", t, taken) for t in graph.outputs]
        notes += [
            f"{t.name} (PlaceholderWithDefault) is not fed: its default is used"
            for t in graph.optional_inputs
        ]
        tags: list[str] = []
        key = "graph"
    else:
        meta = inspection.meta_graph(None)
        chosen = _signature(meta, signature)
        inputs, outputs = [], []
        for kind, infos, ports in (
            ("input", chosen.inputs, inputs),
            ("output", chosen.outputs, outputs),
        ):
            for port_key, info in sorted(infos.items()):
                if info.encoding != "name" or not info.name:
                    raise UserError(
                        f"signature {chosen.key!r} {kind} {port_key!r} is a {info.encoding} "
                        "tensor: the emitted programs feed and fetch dense tensors by name"
                    )
                ports.append(
                    Port(
                        port_key,
                        info.name,
                        _dtype(kind, port_key, info.dtype),
                        info.shape,
                        _identifier(port_key, kind, taken),
                    )
                )
        tags, key = meta.tags, chosen.key
    for port in inputs:
        if port.shape is None:
            notes.append(
                f"input {port.key!r} has no recorded shape: it is fed as a scalar; set its shape"
            )
    return Program(
        model, inspection.format, key, tags, inputs, outputs, name or _package_name(model), notes
    )


def _graph_port(kind: str, info: TensorSpecInfo, taken: set[str]) -> Port:
    node = tensor_parts(info.name)[0]
    return Port(
        node,
        info.name,
        _dtype(kind, info.name, info.dtype),
        info.shape,
        _identifier(node, kind, taken),
    )
