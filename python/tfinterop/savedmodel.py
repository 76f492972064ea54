"""Read a SavedModel's MetaGraphDefs and SignatureDefs (what ``saved_model_cli show`` prints).

Tensor names always come from here, never from layer names: in TF2 SavedModels the feed is
``serving_default_x:0`` and the fetch ``StatefulPartitionedCall:0`` (or ``..._N:0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError


@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: list[int] | None
    """None for unknown rank; -1 for unknown dimensions."""


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
    dtype = tf.dtypes.as_dtype(enum_value)
    return "string" if dtype == tf.string else dtype.name


def read_saved_model(path: Path) -> SavedModelInfo:
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    if not pb.exists():
        if (path / "saved_model.pbtxt").exists():
            from google.protobuf import text_format

            proto = text_format.Parse(
                (path / "saved_model.pbtxt").read_text(), saved_model_pb2.SavedModel()
            )
        else:
            raise UserError(f"{path} is not a SavedModel directory (no saved_model.pb)")
    else:
        proto = saved_model_pb2.SavedModel()
        try:
            proto.ParseFromString(pb.read_bytes())
        except DecodeError as exc:
            raise UserError(f"{pb}: not a SavedModel protobuf ({exc})") from None
    meta_graphs = []
    for meta_graph in proto.meta_graphs:
        signatures = {}
        for key, signature in meta_graph.signature_def.items():
            signatures[key] = SignatureInfo(
                key=key,
                method_name=signature.method_name,
                inputs={k: _tensor_info(v) for k, v in signature.inputs.items()},
                outputs={k: _tensor_info(v) for k, v in signature.outputs.items()},
            )
        meta_graphs.append(
            MetaGraphInfo(
                tags=list(meta_graph.meta_info_def.tags),
                tensorflow_version=meta_graph.meta_info_def.tensorflow_version,
                signatures=signatures,
            )
        )
    assets_dir = path / "assets"
    assets = (
        sorted(str(p.relative_to(path)) for p in assets_dir.rglob("*") if p.is_file())
        if assets_dir.is_dir()
        else []
    )
    return SavedModelInfo(path=path, meta_graphs=meta_graphs, assets=assets)


def _tensor_info(info: object) -> TensorInfo:
    shape_proto = info.tensor_shape  # type: ignore[attr-defined]
    shape = None if shape_proto.unknown_rank else [d.size for d in shape_proto.dim]
    return TensorInfo(name=info.name, dtype=_dtype_name(info.dtype), shape=shape)  # type: ignore[attr-defined]
