"""Inspection records and how they are computed: a SavedModel's MetaGraphs and signatures,
or a frozen GraphDef's likely inputs/outputs, with the ops the consumers' libtensorflow cannot
load or run and warnings about state, randomness, versions and missing weights."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..formats import FROZEN, SAVED_MODEL
from . import graphdef
from .compat import C_API, RuntimeCheck, model_graphs, predict
from .kernels import KernelProblem, Registry, check_ops, load_registry
from .savedmodel import SHAPE_FROM_SIGNATURE, SavedModelInfo, TensorInfo, read_saved_model

GRAPH_DEF = "graph_def"
FEEDABLE_INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
INIT_SIGNATURE_PREFIX = "__"
"""``__saved_model_init_op`` and friends: run at load, not callable signatures."""


@dataclass
class SignatureReport:
    key: str
    method_name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    state_writers: list[str] = field(default_factory=list)
    """Ops in the signature that write variables: running it changes the model's state."""
    random_ops: list[str] = field(default_factory=list)
    kernel_problems: list[str] = field(default_factory=list)
    """Ops of ``MetaGraphReport.kernel_problems`` this signature needs."""
    notes: list[str] = field(default_factory=list)

    @property
    def callable(self) -> bool:
        return not self.key.startswith(INIT_SIGNATURE_PREFIX)

    @property
    def stateful(self) -> bool:
        return bool(self.state_writers)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stateful"] = self.stateful
        return data


@dataclass
class MetaGraphReport:
    tags: list[str]
    tensorflow_version: str
    tensorflow_git_version: str
    object_graph_nodes: int
    signatures: list[SignatureReport]
    graph: graphdef.GraphAnalysis
    asset_files: list[str] = field(default_factory=list)
    kernel_problems: list[KernelProblem] = field(default_factory=list)

    @property
    def style(self) -> str:
        return "TF2 (object graph)" if self.object_graph_nodes else "TF1 (no object graph)"

    def signature(self, key: str) -> SignatureReport:
        for signature in self.signatures:
            if signature.key == key:
                return signature
        available = ", ".join(s.key for s in self.signatures if s.callable) or "none"
        raise UserError(f"signature {key!r} not found; available: {available}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "tags": self.tags,
            "tensorflow_version": self.tensorflow_version,
            "tensorflow_git_version": self.tensorflow_git_version,
            "style": self.style,
            "object_graph_nodes": self.object_graph_nodes,
            "asset_files": self.asset_files,
            "signatures": [s.as_dict() for s in self.signatures],
            "graph": _graph_summary_dict(self.graph),
            "kernel_problems": [p.as_dict() for p in self.kernel_problems],
        }


@dataclass
class KernelCheck:
    checked: bool
    library: str = ""
    tf_version: str = ""
    reason: str = ""
    """Why the check could not run (the registry's consumer is not built...)."""
    ops_checked: int = 0


@dataclass
class Inspection:
    path: Path
    format: str
    """``saved_model`` or ``graph_def``."""
    meta_graphs: list[MetaGraphReport] = field(default_factory=list)
    graph: graphdef.GraphAnalysis | None = None
    graph_problems: list[KernelProblem] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)
    variables: dict[str, int] = field(default_factory=dict)
    """SavedModel variable files -> size in bytes."""
    kernels: KernelCheck = field(default_factory=lambda: KernelCheck(False))
    warnings: list[str] = field(default_factory=list)
    missing_weights: str = ""
    """Why the SavedModel cannot be loaded at all: it has variables but no checkpoint."""
    runtimes: list[RuntimeCheck] = field(default_factory=list)
    """Predicted problems in other TensorFlow runtimes (``inspect --runtime``), one per runtime."""

    def meta_graph(self, tags: list[str] | None) -> MetaGraphReport:
        """The MetaGraph with exactly this tag set; default ``serve``, or the only one."""
        if tags is None:
            if len(self.meta_graphs) == 1:
                return self.meta_graphs[0]
            tags = ["serve"]
        for meta_graph in self.meta_graphs:
            if sorted(meta_graph.tags) == sorted(tags):
                return meta_graph
        available = "; ".join(",".join(m.tags) for m in self.meta_graphs) or "none"
        raise UserError(
            f"{self.path}: no MetaGraph with tag set {','.join(tags)!r}; "
            f"available tag sets: {available} (choose with --tags)"
        )

    @property
    def kernel_problems(self) -> list[KernelProblem]:
        if self.format == GRAPH_DEF:
            return self.graph_problems
        return [p for m in self.meta_graphs for p in m.kernel_problems]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "meta_graphs": [m.as_dict() for m in self.meta_graphs],
            "graph": self.graph.as_dict() if self.graph else None,
            "assets": self.assets,
            "variables": self.variables,
            "kernels": {
                **asdict(self.kernels),
                "problems": [p.as_dict() for p in self.kernel_problems],
            },
            "warnings": self.warnings,
            "missing_weights": self.missing_weights,
        } | ({"runtimes": [r.as_dict() for r in self.runtimes]} if self.runtimes else {})


def _graph_summary_dict(analysis: graphdef.GraphAnalysis) -> dict[str, Any]:
    """A MetaGraph's graph without the graph-only guesses (signatures name the tensors)."""
    data = analysis.as_dict()
    # JSON field names of GraphAnalysis.as_dict (``frozen`` is its yes/no, not a format).
    for key in ("inputs", "optional_inputs", "outputs", "frozen", "import_error"):
        data.pop(key, None)
    return data


def model_format(path: Path) -> tuple[str, Path]:
    """(format, path): a SavedModel directory, or a GraphDef file (.pb binary, .pbtxt text)."""
    if path.is_file() and path.name in ("saved_model.pb", "saved_model.pbtxt"):
        return SAVED_MODEL, path.parent
    if path.is_dir():
        return SAVED_MODEL, path  # read_saved_model explains what is missing
    if path.is_file():
        return GRAPH_DEF, path
    raise UserError(f"{path} does not exist")


def _registry(build_dir: Path | None) -> tuple[Registry | None, KernelCheck]:
    if build_dir is None:
        return None, KernelCheck(False, reason="not asked for")
    try:
        registry = load_registry(build_dir)
    except UserError as exc:
        return None, KernelCheck(False, reason=str(exc))
    return registry, KernelCheck(True, library=registry.source, tf_version=registry.tf_version)


_VERSION_DEFINE = re.compile(r"^#define\s+(TF_GRAPH_DEF_VERSION(?:_MIN_PRODUCER)?)\s+(\d+)", re.M)


@cache
def graph_def_versions() -> tuple[int, int]:
    """(oldest producer accepted, current) GraphDef versions of the wheel's libtensorflow,
    from its ``tensorflow/core/public/version.h`` (the header the consumers compile against),
    else from ``tf.version`` (importing TensorFlow)."""
    from ..tfenv import find_tensorflow

    try:
        header = Path(find_tensorflow().include_dir) / "tensorflow/core/public/version.h"
        defines = dict(_VERSION_DEFINE.findall(header.read_text(encoding="utf-8")))
        return (
            int(defines["TF_GRAPH_DEF_VERSION_MIN_PRODUCER"]),
            int(defines["TF_GRAPH_DEF_VERSION"]),
        )
    except (UserError, OSError, KeyError, ValueError):
        import tensorflow as tf

        return tf.version.GRAPH_DEF_VERSION_MIN_PRODUCER, tf.version.GRAPH_DEF_VERSION


def _version_problems(graph_def: Any, what: str) -> list[str]:
    """GraphDef versions this TensorFlow refuses to load (too old a producer, too new)."""
    min_producer, current = graph_def_versions()
    versions = graph_def.versions
    problems = []
    if versions.producer and versions.producer < min_producer:
        problems.append(
            f"{what}: GraphDef producer version {versions.producer} is older than this "
            f"TensorFlow accepts ({min_producer}): loading will fail"
        )
    if versions.min_consumer > current:
        problems.append(
            f"{what}: needs GraphDef version >= {versions.min_consumer}, this TensorFlow has "
            f"{current}: loading will fail"
        )
    if current in versions.bad_consumers:
        problems.append(f"{what}: marks GraphDef version {current} as bad")
    return problems


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _input_notes(key: str, info: TensorInfo) -> list[str]:
    notes = []
    if info.encoding != "name":
        notes.append(
            f"input {key!r} is a {info.encoding} tensor: the consumers feed dense tensors by name"
        )
    elif info.op == "PlaceholderWithDefault":
        notes.append(
            f"input {key!r} ({info.name}) is a PlaceholderWithDefault: feeding it is optional"
        )
    elif info.op and info.op not in FEEDABLE_INPUT_OPS:
        notes.append(
            f"input {key!r} ({info.name}) is produced by {_article(info.op)} {info.op} op, "
            "not a placeholder: "
            "feeding it overrides the computed value (TF1 signatures do this); "
            "Session-based consumers can feed any tensor"
        )
    elif not info.op:
        notes.append(f"input {key!r}: tensor {info.name} is not in the graph")
    return notes


def _signature_report(
    key: str, signature: Any, graph_def: Any, problems: dict[str, KernelProblem]
) -> SignatureReport:
    report = SignatureReport(key, signature.method_name, signature.inputs, signature.outputs)
    fetches = [t.name for t in signature.outputs.values() if t.name]
    feeds = [t.name for t in signature.inputs.values() if t.name]
    uses = graphdef.reachable_ops(graph_def, fetches, feeds)
    report.state_writers = graphdef.state_writers(uses)
    report.random_ops = graphdef.random_ops(uses)
    report.kernel_problems = sorted(op for op in uses if op in problems)
    if report.callable:
        for input_key, info in sorted(signature.inputs.items()):
            report.notes += _input_notes(input_key, info)
        for kind, infos in (("input", signature.inputs), ("output", signature.outputs)):
            for tensor_key, info in sorted(infos.items()):
                report.notes += _shape_notes(kind, tensor_key, info)
    return report


def _shape_notes(kind: str, key: str, info: TensorInfo) -> list[str]:
    """A TensorInfo without ``tensor_shape`` (TF 1.0-era exporters) has an unknown shape."""
    if info.shape_source == SHAPE_FROM_SIGNATURE:
        return []
    if info.shape is None:
        return [
            f"{kind} {key!r}: the signature records no shape and the graph none either: "
            "unknown rank" + (" (check needs --shape or --inputs)" if kind == "input" else "")
        ]
    return [
        f"{kind} {key!r}: the signature records no shape; shape {format_shape(info.shape)} "
        f"is the graph's ({info.shape_source})"
    ]


def _signature_order(key: str) -> tuple[int, str]:
    return (0 if key == "serving_default" else 2 if key.startswith("__") else 1, key)


def inspect_saved_model(path: Path, registry: Registry | None) -> Inspection:
    info: SavedModelInfo = read_saved_model(path)
    inspection = Inspection(path=path, format=SAVED_MODEL, assets=info.assets)
    variables_dir = path / "variables"
    if variables_dir.is_dir():
        inspection.variables = {
            str(p.relative_to(path)): p.stat().st_size
            for p in sorted(variables_dir.iterdir())
            if p.is_file()
        }
    if not info.meta_graphs:
        raise UserError(f"{path}/saved_model.pb holds no MetaGraph")
    for meta in info.meta_graphs:
        graph_def = meta.proto.graph_def
        analysis = graphdef.analyze(graph_def, registry, infer=False)
        where = "MetaGraph " + ",".join(meta.tags)
        problems = (
            check_ops({op: set(w) for op, w in analysis.ops_used.items()}, registry)
            if registry
            else []
        )
        by_op = {p.op: p for p in problems}
        report = MetaGraphReport(
            tags=meta.tags,
            tensorflow_version=meta.tensorflow_version,
            tensorflow_git_version=meta.tensorflow_git_version,
            object_graph_nodes=meta.object_graph_nodes,
            signatures=[
                _signature_report(key, meta.signatures[key], graph_def, by_op)
                for key in sorted(meta.signatures, key=_signature_order)
            ],
            graph=analysis,
            asset_files=meta.asset_files,
            kernel_problems=problems,
        )
        inspection.meta_graphs.append(report)
        inspection.warnings += _version_problems(graph_def, where)
        index = path / "variables" / "variables.index"
        if analysis.variable_ops and not index.is_file() and not inspection.missing_weights:
            names = ", ".join(analysis.variable_ops[:3])
            inspection.missing_weights = (
                f"{path} has variables ({names}) but no variables/variables.index: its "
                "weights are missing, so no consumer can load it; copy the whole SavedModel "
                "directory (saved_model.pb together with variables/)"
            )
            inspection.warnings.append(inspection.missing_weights)
        for signature in report.signatures:
            if not signature.callable:
                continue
            if signature.stateful:
                inspection.warnings.append(
                    f"{where}: signature {signature.key!r} writes variables "
                    f"({', '.join(signature.state_writers)}): every run changes the model's state"
                )
            if signature.random_ops:
                inspection.warnings.append(
                    f"{where}: signature {signature.key!r} uses random ops "
                    f"({', '.join(signature.random_ops)}): outputs can differ between runs"
                )
        if registry:
            inspection.kernels.ops_checked += len(analysis.ops_used)
    return inspection


def inspect_graph_def(path: Path, registry: Registry | None) -> Inspection:
    graph_def = graphdef.load_graph_def(path)
    analysis = graphdef.analyze(graph_def, registry)
    inspection = Inspection(path=path, format=GRAPH_DEF, graph=analysis)
    if registry:
        inspection.graph_problems = check_ops(
            {op: set(w) for op, w in analysis.ops_used.items()}, registry
        )
        inspection.kernels.ops_checked = len(analysis.ops_used)
    warnings = inspection.warnings
    if not analysis.frozen:
        held = [i.name for i in analysis.inputs if i.dtype == "resource"]
        what = ", ".join(analysis.variable_ops[:5] + held[:5])
        warnings.append(
            f"the graph is not frozen: it holds variable ops/handles ({what}); their weights are "
            "not in the file, so running it fails or reads uninitialised variables. Freeze it "
            "(convert_variables_to_constants_v2) or ship a SavedModel"
        )
    if analysis.import_error:
        warnings.append(f"TensorFlow cannot import the graph: {analysis.import_error}")
    if not analysis.inputs:
        warnings.append(
            "no Placeholder inputs: the graph computes from constants, or is fed at other "
            "tensors (any tensor can be fed: give --input NAME to `check`)"
        )
    if analysis.random_ops:
        warnings.append(
            f"random ops ({', '.join(analysis.random_ops)}): outputs can differ between runs"
        )
    if analysis.state_writers:
        warnings.append(
            f"ops that write variables ({', '.join(analysis.state_writers)}): running the graph "
            "may change its state"
        )
    warnings += _version_problems(graph_def, "graph")
    return inspection


def inspect_model(
    path: Path,
    build_dir: Path | None,
    runtimes: Sequence[Registry] = (),
    *,
    loader: str = C_API,
) -> Inspection:
    """Inspect a SavedModel directory or GraphDef file. ``build_dir`` locates the consumer
    asked for the kernel check (None: skip the check). ``runtimes``: registries of other
    TensorFlow runtimes to predict loading/running in (``compat.predict``; the consumers'
    own registry, when loaded, is the producer's)."""
    kind, path = model_format(path)
    registry, kernels = _registry(build_dir)
    if kind == SAVED_MODEL:
        inspection = inspect_saved_model(path, registry)
    else:
        inspection = inspect_graph_def(path, registry)
    inspection.kernels = KernelCheck(
        kernels.checked,
        kernels.library,
        kernels.tf_version,
        kernels.reason,
        inspection.kernels.ops_checked,
    )
    if runtimes:
        model = model_graphs(path, SAVED_MODEL if kind == SAVED_MODEL else FROZEN)
        inspection.runtimes = [
            RuntimeCheck(
                target.tf_version, target.source, predict(model, target, registry, loader=loader)
            )
            for target in runtimes
        ]
    return inspection


def format_shape(shape: list[int] | None) -> str:
    if shape is None:
        return "unknown rank"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
