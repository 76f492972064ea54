"""Read a SavedModel's MetaGraphDefs and SignatureDefs (what ``saved_model_cli show`` prints).

Tensor names always come from here, never from layer names: in TF2 SavedModels the feed is
``serving_default_x:0`` and the fetch ``StatefulPartitionedCall:0`` (or ``..._N:0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


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


def _dtype_name(enum_value: int) -> str:
    import tensorflow as tf

    if enum_value == 0:  # DT_INVALID, e.g. the NoOp "output" of __saved_model_init_op
        return "invalid"
    try:
        dtype = tf.dtypes.as_dtype(enum_value)
    except TypeError:  # a DataType this TensorFlow does not know
        return f"unknown({enum_value})"
    return "string" if dtype == tf.string else dtype.name


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
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    if not pb.exists():
        if not path.exists():
            raise UserError(f"{path} does not exist")
        if (path / "saved_model.pbtxt").exists():
            from google.protobuf import text_format

            try:
                proto = text_format.Parse(
                    (path / "saved_model.pbtxt").read_text(), saved_model_pb2.SavedModel()
                )
            except (text_format.ParseError, UnicodeDecodeError) as exc:
                raise UserError(f"{path / 'saved_model.pbtxt'}: not a SavedModel ({exc})") from None
        else:
            raise UserError(
                f"{path} is not a SavedModel directory (no saved_model.pb){_version_dir_hint(path)}"
            )
    else:
        proto = saved_model_pb2.SavedModel()
        try:
            proto.ParseFromString(pb.read_bytes())
        except DecodeError as exc:
            raise UserError(f"{pb}: not a SavedModel protobuf ({exc})") from None
    meta_graphs = []
    for meta_graph in proto.meta_graphs:
        ops = {node.name: node.op for node in meta_graph.graph_def.node}
        signatures = {}
        for key, signature in meta_graph.signature_def.items():
            signatures[key] = SignatureInfo(
                key=key,
                method_name=signature.method_name,
                inputs={k: _tensor_info(v, ops) for k, v in signature.inputs.items()},
                outputs={k: _tensor_info(v, ops) for k, v in signature.outputs.items()},
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


def _tensor_info(info: Any, ops: dict[str, str] | None = None) -> TensorInfo:
    shape_proto = info.tensor_shape
    shape = None if shape_proto.unknown_rank else [d.size for d in shape_proto.dim]
    encoding = info.WhichOneof("encoding") or "name"
    name = info.name if encoding == "name" else ""
    op = (ops or {}).get(name.rpartition(":")[0] or name, "") if name else ""
    return TensorInfo(
        name=name, dtype=_dtype_name(info.dtype), shape=shape, op=op, encoding=encoding
    )
