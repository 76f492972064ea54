"""Read a SavedModel's MetaGraphDefs and SignatureDefs (what ``saved_model_cli show`` prints).

Tensor names always come from here, never from layer names: in TF2 SavedModels the feed is
``serving_default_x:0`` and the fetch ``StatefulPartitionedCall:0`` (or ``..._N:0``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import UserError

SHAPE_FROM_SIGNATURE = "signature"
SHAPE_FROM_OUTPUT_SHAPES = "graph _output_shapes"
SHAPE_FROM_PLACEHOLDER = "placeholder shape attr"
SHAPE_ABSENT = "absent"
"""The TensorInfo has no shape and the graph records none: unknown rank."""


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: list[int] | None
    """None for unknown rank; -1 for unknown dimensions."""
    op: str = ""
    """Type of the op producing the tensor (``Placeholder``, ``PlaceholderWithDefault``, a TF1
    ``Identity`` that is fed directly, ``StatefulPartitionedCall``...); empty if not found."""
    encoding: str = "name"
    """``name`` for a dense tensor; ``coo_sparse``/``composite_tensor`` cannot be fed by name."""
    shape_source: str = SHAPE_FROM_SIGNATURE
    """Where ``shape`` comes from: the SignatureDef, or (when its TensorInfo has no
    ``tensor_shape`` at all, as TF 1.0-era exporters wrote it) the graph, or nowhere."""


@dataclass
class SignatureInfo:
    key: str
    method_name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]


@dataclass
class MetaGraphInfo:
    tags: list[str]
    tensorflow_version: str
    signatures: dict[str, SignatureInfo]
    tensorflow_git_version: str = ""
    object_graph_nodes: int = 0
    """Nodes of the TF2 object graph; 0 for a TF1 SavedModel (builder API)."""
    asset_files: list[str] = field(default_factory=list)
    """Asset file names the MetaGraph refers to (``asset_file_def``)."""
    proto: Any = field(default=None, compare=False, repr=False)
    """The MetaGraphDef protobuf (its ``graph_def`` holds the graph and function library)."""

    def signature(self, key: str) -> SignatureInfo:
        try:
            return self.signatures[key]
        except KeyError:
            available = (
                ", ".join(sorted(k for k in self.signatures if not k.startswith("__"))) or "none"
            )
            raise UserError(f"signature {key!r} not found; available: {available}") from None


@dataclass
class SavedModelInfo:
    path: Path
    meta_graphs: list[MetaGraphInfo]
    assets: list[str] = field(default_factory=list)

    def meta_graph(self, tags: list[str]) -> MetaGraphInfo:
        for meta_graph in self.meta_graphs:
            if sorted(meta_graph.tags) == sorted(tags):
                return meta_graph
        available = "; ".join(",".join(m.tags) for m in self.meta_graphs)
        raise UserError(
            f"{self.path}: no MetaGraph with tag set {','.join(tags)!r}; available tag sets: {available}"
        )


# ---------------------------------------------------------- TensorFlow's protos, no import

# `import tensorflow` (any `tensorflow.core..._pb2` module runs the package's __init__) costs
# 2-3 s of CPU, and `check` on a 2-core machine pays it before any consumer can start. The
# wheel's generated modules embed each .proto's serialized descriptor; building the messages
# from those in a private pool reads the same schema in milliseconds.
_SERIALIZED_FILE = re.compile(r"AddSerializedFile\((b'(?:[^'\\]|\\.)*')\)")


def _add_proto_file(pool: Any, root: Path, name: str, added: set[str]) -> None:
    from google.protobuf import descriptor_pb2

    if name in added:
        return
    if name.startswith("google/protobuf/"):
        module = importlib.import_module(name.removesuffix(".proto").replace("/", ".") + "_pb2")
        serialized = module.DESCRIPTOR.serialized_pb
    else:
        source = (root / name.replace(".proto", "_pb2.py")).read_text(encoding="utf-8")
        match = _SERIALIZED_FILE.search(source)
        if match is None:
            raise ValueError(f"no serialized descriptor in {name.replace('.proto', '_pb2.py')}")
        serialized = ast.literal_eval(match.group(1))
    for dependency in descriptor_pb2.FileDescriptorProto.FromString(serialized).dependency:
        _add_proto_file(pool, root, dependency, added)
    pool.AddSerializedFile(serialized)
    added.add(name)


@cache
def _private_pool() -> tuple[Any, set[str]]:
    from google.protobuf import descriptor_pool

    return descriptor_pool.DescriptorPool(), set()


def _pool_with(proto_file: str) -> Any | None:
    """The private descriptor pool, holding ``proto_file`` and its imports; None when the
    wheel's generated modules cannot be read that way (the caller imports TensorFlow's)."""
    pool, added = _private_pool()
    try:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(next(iter(spec.submodule_search_locations))).parent
        _add_proto_file(pool, root, proto_file, added)
    except (OSError, ValueError, SyntaxError, TypeError, KeyError):
        return None
    return pool


def _tensorflow_module(proto_file: str) -> Any:
    return importlib.import_module(proto_file.removesuffix(".proto").replace("/", ".") + "_pb2")


@cache
def proto_class(full_name: str, proto_file: str) -> Any:
    """TensorFlow's message class ``full_name`` (``tensorflow.SavedModel``) declared in
    ``proto_file`` (``tensorflow/core/protobuf/saved_model.proto``), built from the installed
    wheel's own descriptors without importing TensorFlow (else TensorFlow's own class)."""
    from google.protobuf import message_factory

    pool = _pool_with(proto_file)
    if pool is None:
        return getattr(_tensorflow_module(proto_file), full_name.rpartition(".")[2])
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


TYPES_PROTO = "tensorflow/core/framework/types.proto"
_SPECIAL_DTYPE_NAMES = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16"}
REF_OFFSET = 100
"""``DT_FLOAT_REF`` = ``DT_FLOAT`` + 100 (types.proto)."""


@cache
def _dtype_names() -> dict[int, str]:
    """DataType enum value -> TensorFlow's dtype name (``tf.as_dtype(v).name``), from
    types.proto: ``DT_INT32`` -> ``int32``, with float/double/half as float32/64/16."""
    pool = _pool_with(TYPES_PROTO)
    enum = (
        pool.FindEnumTypeByName("tensorflow.DataType")
        if pool is not None
        else _tensorflow_module(TYPES_PROTO).DataType.DESCRIPTOR
    )
    return {
        value.number: _SPECIAL_DTYPE_NAMES.get(value.name, value.name.removeprefix("DT_").lower())
        for value in enum.values
        if 0 < value.number < REF_OFFSET
    }


def _dtype_name(enum_value: int) -> str:
    if enum_value == 0:  # DT_INVALID, e.g. the NoOp "output" of __saved_model_init_op
        return "invalid"
    # A ref (``float32_ref``: a TF1 VariableV2 fetched directly) is fetched as its value.
    if enum_value > REF_OFFSET:
        enum_value -= REF_OFFSET
    return _dtype_names().get(enum_value, f"unknown({enum_value})")


def dtype_name(enum_value: int) -> str:
    """Contract/numpy-style dtype name of a DataType enum (``float32``, ``string``...)."""
    return _dtype_name(enum_value)


def is_saved_model_dir(path: Path) -> bool:
    return path.is_dir() and any(
        (path / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")
    )


def _version_dir_hint(path: Path) -> str:
    """TF Serving keeps SavedModels in numbered version directories under a base path."""
    if not path.is_dir():
        return ""
    versions = sorted(
        (p for p in path.iterdir() if p.name.isdigit() and is_saved_model_dir(p)),
        key=lambda p: int(p.name),
    )
    return f"; it holds TF Serving version directories: use {versions[-1]}" if versions else ""


def read_saved_model(path: Path) -> SavedModelInfo:
    from google.protobuf.message import DecodeError

    saved_model_class = proto_class(
        "tensorflow.SavedModel", "tensorflow/core/protobuf/saved_model.proto"
    )
    pb = path / "saved_model.pb"
    if not pb.exists():
        if not path.exists():
            raise UserError(f"{path} does not exist")
        if (path / "saved_model.pbtxt").exists():
            from google.protobuf import text_format

            try:
                proto = text_format.Parse(
                    (path / "saved_model.pbtxt").read_text(), saved_model_class()
                )
            except (text_format.ParseError, UnicodeDecodeError) as exc:
                raise UserError(f"{path / 'saved_model.pbtxt'}: not a SavedModel ({exc})") from None
        else:
            raise UserError(
                f"{path} is not a SavedModel directory (no saved_model.pb){_version_dir_hint(path)}"
            )
    else:
        proto = saved_model_class()
        try:
            proto.ParseFromString(pb.read_bytes())
        except DecodeError as exc:
            raise UserError(f"{pb}: not a SavedModel protobuf ({exc})") from None
    meta_graphs = []
    for meta_graph in proto.meta_graphs:
        nodes = {node.name: node for node in meta_graph.graph_def.node}
        signatures = {}
        for key, signature in meta_graph.signature_def.items():
            signatures[key] = SignatureInfo(
                key=key,
                method_name=signature.method_name,
                inputs={k: _tensor_info(v, nodes) for k, v in signature.inputs.items()},
                outputs={k: _tensor_info(v, nodes) for k, v in signature.outputs.items()},
            )
        meta_graphs.append(
            MetaGraphInfo(
                tags=list(meta_graph.meta_info_def.tags),
                tensorflow_version=meta_graph.meta_info_def.tensorflow_version,
                signatures=signatures,
                tensorflow_git_version=meta_graph.meta_info_def.tensorflow_git_version,
                object_graph_nodes=len(meta_graph.object_graph_def.nodes),
                asset_files=[a.filename for a in meta_graph.asset_file_def],
                proto=meta_graph,
            )
        )
    assets_dir = path / "assets"
    assets = (
        sorted(str(p.relative_to(path)) for p in assets_dir.rglob("*") if p.is_file())
        if assets_dir.is_dir()
        else []
    )
    return SavedModelInfo(path=path, meta_graphs=meta_graphs, assets=assets)


def _shape(proto: Any) -> list[int] | None:
    return None if proto.unknown_rank else [int(d.size) for d in proto.dim]


def graph_shape(node: Any, index: int) -> tuple[list[int] | None, str]:
    """The shape the graph records for output ``index`` of ``node``, and where it was found:
    ``_output_shapes`` (written by ``as_graph_def(add_shapes=True)``, which SavedModel export
    does), else a placeholder's ``shape`` attr; (None, SHAPE_ABSENT) if neither says."""
    if node is not None:
        recorded = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else []
        if 0 <= index < len(recorded):
            return _shape(recorded[index]), SHAPE_FROM_OUTPUT_SHAPES
        if index == 0 and node.op.startswith("Placeholder") and "shape" in node.attr:
            return _shape(node.attr["shape"].shape), SHAPE_FROM_PLACEHOLDER
    return None, SHAPE_ABSENT


def _tensor_info(info: Any, nodes: dict[str, Any] | None = None) -> TensorInfo:
    encoding = info.WhichOneof("encoding") or "name"
    name = info.name if encoding == "name" else ""
    node_name, _, index = name.rpartition(":") if ":" in name else (name, "", "0")
    node = (nodes or {}).get(node_name) if name else None
    # An absent tensor_shape is unknown, not a scalar (an empty TensorShapeProto reads as ()).
    if info.HasField("tensor_shape"):
        shape, source = _shape(info.tensor_shape), SHAPE_FROM_SIGNATURE
    else:
        shape, source = graph_shape(node, int(index) if index.isdigit() else 0)
    return TensorInfo(
        name=name,
        dtype=_dtype_name(info.dtype),
        shape=shape,
        op=node.op if node is not None else "",
        encoding=encoding,
        shape_source=source,
    )
