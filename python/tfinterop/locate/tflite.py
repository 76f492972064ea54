"""``locate --format tflite``: where a TFLite conversion's numbers first leave TensorFlow's.

The interpreter's tensors are not the graph's, so they are mapped first. The located
consumer (capability ``fetches_tflite_tensors``) runs the cell's ``.tflite`` with every
intermediate tensor kept and writes each tensor an op produces (outputs ``#N``, the
interpreter's tensor N); the reference runs the frozen graph the exporter wrote for the same
signature and fetches the TF tensors those could be:

1. *by name*: the converter names a fused op's output after the TF nodes it fused, joined by
   ``;`` (``…/batchnorm/add_1;…/conv_1/convolution;…``; a trailing number is MLIR's
   uniquifier). Of the named nodes with the tensor's shape and dtype, the last in the
   graph's topological order is the one whose output the fused op produces;
2. *checked by value*: the chosen tensor must agree with the interpreter's within
   ``VERIFY_GAP`` (``_gap``: the worst difference over the tensor's scale, and the median
   element's relative difference; kernel drift is ~1e-6, the wrong member of a fused group,
   e.g. a convolution before its bias, is off by far more). When it does not, another
   named node, then a node at most ``NEAR_HOPS`` downstream of one (a bias the name left
   out), that agrees is taken instead; when none agrees, the last named node is kept and
   the mapping is marked unconfirmed. Several candidates agreeing with different values make
   it ambiguous;
3. the signature's outputs map to the frozen graph's outputs of the same key.

Each mapped tensor is then compared under the tolerance, in the graph's topological order.
*Isolated*: the interpreter cannot be fed an intermediate tensor (``invoke()`` recomputes
it), so each suspect TFLite op is cut out into a model of that op alone (its constant
inputs kept, the others the model's inputs), run by the consumer with the reference's values
of the TF tensors its inputs map to.
"""

from __future__ import annotations

import copy
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..compare import compare
from ..consumers import Consumer
from ..contract import plan as plan_format
from ..contract.records import JobRecord, OutputRecord
from ..errors import UserError
from ..formats import TFLITE
from ..manifest import Case, Manifest
from ..pipeline.cases import signature_label
from ..pipeline.compare import read_output
from ..pipeline.run import ConsumerRun, run_consumer
from ..tensors import safe_file_name
from .graph import GraphTensors, read_graph
from .locate import LocateSettings, _job, run_everyone
from .result import (
    CARRIES_UPSTREAM,
    COMPUTES_DIFFERENTLY,
    ConsumerLocation,
    Isolated,
    LocateResult,
    TensorComparison,
)

VERIFY_GAP = 1e-3
"""A mapping is confirmed when its ``_gap`` is at most this."""
NEAR_HOPS = 2
"""How far downstream of a named node a value match is looked for."""
ALL_JOB, OUTPUTS_JOB = "all", "outputs"
SUBGRAPH_OPS = frozenset({"WHILE", "IF", "CALL_ONCE", "CALL"})
"""Ops that run other subgraphs: not cut out alone."""


@dataclass
class TFLiteTensor:
    index: int
    name: str
    dtype: str
    shape: list[int]
    """The shape signature (-1: any size)."""
    op: str = ""
    """The op producing it (empty for inputs and constants)."""
    op_index: int = -1


@dataclass
class TFLiteModel:
    path: Path
    tensors: list[TFLiteTensor]
    ops: list[tuple[str, list[int], list[int]]]
    """(op name, input tensor indices, output tensor indices) in execution order."""
    inputs: list[int]
    constants: set[int]
    signature_inputs: dict[str, int]
    signature_outputs: dict[str, int]
    raw: Any = field(repr=False, default=None)
    """The flatbuffer's object tree (``schema_py_generated.ModelT``)."""

    @property
    def produced(self) -> list[TFLiteTensor]:
        """Every tensor an op of the main subgraph produces, in execution order."""
        return [self.tensors[i] for _, _, outputs in self.ops for i in outputs if i >= 0]


@dataclass
class Mapping:
    tflite: TFLiteTensor
    tensor: str | None
    """The TF tensor it maps to (None: unmapped)."""
    how: str
    gap: float | None = None
    """max |tflite - tf| / max |tf| of the chosen tensor."""
    alternatives: list[str] = field(default_factory=list)
    """Other TF tensors agreeing by value with different values (an ambiguous mapping)."""

    @property
    def confirmed(self) -> bool:
        return self.gap is not None and self.gap <= VERIFY_GAP


def read_tflite(path: Path) -> TFLiteModel:
    """The main subgraph's tensors and ops, read from the flatbuffer (UserError if not one)."""
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        raw = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    except Exception as exc:
        raise UserError(f"cannot read {path} as a TFLite flatbuffer: {exc}") from None
    graph = raw.subgraphs[0]

    def text(value: Any) -> str:
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")

    tensors = []
    for index, tensor in enumerate(graph.tensors):
        shape = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
        dtype = (flatbuffer_utils.type_to_name(tensor.type) or "?").lower()
        tensors.append(
            TFLiteTensor(
                index,
                text(tensor.name),
                dtype,
                [int(d) for d in (shape if shape is not None else [])],
            )
        )
    constants = set()
    for index, tensor in enumerate(graph.tensors):
        buffer = raw.buffers[tensor.buffer] if 0 < tensor.buffer < len(raw.buffers) else None
        if buffer is not None and (
            (buffer.data is not None and len(buffer.data)) or (buffer.size or 0) > 0
        ):
            constants.add(index)
    ops = []
    for op_index, op in enumerate(graph.operators or []):
        name = flatbuffer_utils.opcode_to_name(raw, op.opcodeIndex) or "?"
        if name == "CUSTOM":
            name = f"CUSTOM:{text(raw.operatorCodes[op.opcodeIndex].customCode)}"
        inputs = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outputs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        ops.append((name, inputs, outputs))
        for i in outputs:
            if i >= 0:
                tensors[i].op, tensors[i].op_index = name, op_index
    signature_inputs: dict[str, int] = {}
    signature_outputs: dict[str, int] = {}
    for signature in raw.signatureDefs or []:
        if signature.subgraphIndex == 0:
            signature_inputs = {text(m.name): int(m.tensorIndex) for m in signature.inputs or []}
            signature_outputs = {text(m.name): int(m.tensorIndex) for m in signature.outputs or []}
    return TFLiteModel(
        path, tensors, ops, [int(i) for i in graph.inputs], constants, signature_inputs,
        signature_outputs, raw,
    )  # fmt: skip


def _named_nodes(name: str, fetchable: set[str]) -> list[str]:
    """The TF nodes a TFLite tensor's name names, in the order it names them."""
    found: list[str] = []
    for part in (p.strip() for p in name.split(";")):
        for option in (part, part.rpartition(":")[0], re.sub(r"\d+$", "", part)):
            if option and option in fetchable:
                if option not in found:
                    found.append(option)
                break
    return found


def _candidates(
    model: TFLiteModel, graph: GraphTensors, output_keys: dict[str, str]
) -> dict[int, tuple[list[str], list[str]]]:
    """TFLite tensor -> (TF tensors it is named after, TF tensors just downstream of those),
    of the same dtype; a signature output's first list is the frozen output of its key."""
    fetchable = {node.name for node in graph.nodes}
    users: dict[str, list[str]] = {}
    for node in graph.nodes:
        for fed in node.inputs:
            users.setdefault(fed.rpartition(":")[0], []).append(node.name)

    def tensors_of(nodes: list[str], dtype: str) -> list[str]:
        return [t for n in nodes for t, d in graph.by_name[n].outputs if d == dtype]

    by_output = {index: output_keys[key] for key, index in model.signature_outputs.items()
                 if key in output_keys}  # fmt: skip
    found: dict[int, tuple[list[str], list[str]]] = {}
    for tensor in model.produced:
        if tensor.index in by_output:
            found[tensor.index] = ([by_output[tensor.index]], [])
            continue
        named = _named_nodes(tensor.name, fetchable)
        near: list[str] = []
        queue = deque((n, 0) for n in named)
        while queue:
            name, hops = queue.popleft()
            if hops == NEAR_HOPS:
                continue
            for user in users.get(name, []):
                if user not in named and user not in near:
                    near.append(user)
                    queue.append((user, hops + 1))
        found[tensor.index] = (tensors_of(named, tensor.dtype), tensors_of(near, tensor.dtype))
    return found


def _gap(actual: np.ndarray, expected: np.ndarray) -> float:
    """How far two tensors are from being the same one: the larger of max |actual - expected|
    over max |expected| (an offset or scale error) and the median element's relative
    difference (a wrong member of a fused group on a tensor with a wide range, where the
    first is small); inf when they cannot be (shape, dtype, NaN, inf placement)."""
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return float("inf")
    if expected.dtype.kind not in "fc":
        return 0.0 if np.array_equal(actual, expected) else float("inf")
    a, e = actual.astype(np.complex128), expected.astype(np.complex128)
    if not np.array_equal(np.isnan(a), np.isnan(e)):
        return float("inf")
    finite = np.isfinite(a) & np.isfinite(e)
    if not np.array_equal(a[~finite], e[~finite], equal_nan=True):
        return float("inf")
    if not finite.any():
        return 0.0
    diff, magnitude = np.abs(a[finite] - e[finite]), np.abs(e[finite])
    worst, scale = float(np.max(diff)), float(np.max(magnitude))
    if scale == 0:
        return 0.0 if worst == 0 else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(diff == 0, 0.0, diff / magnitude)  # x/0 -> inf: x is not 0
    return max(worst / scale, float(np.median(relative)))


class _Values:
    """Reads a run's written tensors on demand (not all held: a model's intermediates can
    take gigabytes)."""

    def __init__(self, run: ConsumerRun, record: JobRecord, key_of: dict[str, str]) -> None:
        self.records = {o.key: o for o in record.outputs}
        self.planned = (
            {o.key: o.file for o in run.plan.jobs[0].outputs} if run.plan is not None else {}
        )
        self.key_of = key_of
        """What the caller names a tensor -> its key in the plan."""

    def file(self, name: str) -> str | None:
        return self.planned.get(self.key_of.get(name, ""))

    def read(self, name: str, dtype: str) -> np.ndarray | str:
        key = self.key_of.get(name)
        produced: OutputRecord | None = self.records.get(key) if key else None
        if produced is None:
            return "not written"
        return read_output(produced, dtype, self.planned.get(key or ""))


def _map(
    model: TFLiteModel, graph: GraphTensors, candidates: dict[int, tuple[list[str], list[str]]],
    reference: _Values, located: _Values, output_keys: dict[str, str],
) -> list[Mapping]:  # fmt: skip
    dtypes = {name: dtype for node in graph.nodes for name, dtype in node.outputs}
    signature = {index: key for key, index in model.signature_outputs.items()}
    mappings = []
    for tensor in model.produced:
        named, near = candidates[tensor.index]
        value = located.read(f"#{tensor.index}", tensor.dtype)
        if isinstance(value, str):
            mappings.append(Mapping(tensor, None, f"its value is unusable: {value}"))
            continue
        gaps: dict[str, float] = {}
        values: dict[str, np.ndarray] = {}
        for name in named + near:
            wanted = reference.read(name, dtypes.get(name, tensor.dtype))
            if not isinstance(wanted, str) and wanted.shape == value.shape:
                gaps[name], values[name] = _gap(value, wanted), wanted
        if tensor.index in signature and named:
            key = signature[tensor.index]
            mappings.append(
                Mapping(tensor, named[0], f"signature output {key!r}", gaps.get(named[0]))
            )
            continue
        order = {name: graph.by_name[name.rpartition(":")[0]].index for name in gaps}
        shaped = sorted((n for n in named if n in gaps), key=order.__getitem__)
        agreeing = sorted((n for n in gaps if gaps[n] <= VERIFY_GAP), key=order.__getitem__)
        if shaped and gaps[shaped[-1]] <= VERIFY_GAP:
            chosen = shaped[-1]
            how = "by name" + (f" (last of {len(shaped)} fused ops)" if len(shaped) > 1 else "")
        elif any(n in agreeing for n in shaped):
            chosen, how = [n for n in agreeing if n in shaped][-1], "by name, by value"
        elif agreeing:
            chosen, how = agreeing[-1], "by value, downstream of a named node"
        elif shaped:
            chosen = shaped[-1]
            how = f"by name, unconfirmed by value (value gap {gaps[chosen]:.3g})"
        else:
            why = (
                f"no TF node named in it has shape {list(value.shape)} and dtype {tensor.dtype}"
                if named or near
                else "its name names no fetchable TF node"
            )
            mappings.append(Mapping(tensor, None, why))
            continue
        differing = [
            n for n in agreeing
            if n != chosen and not np.array_equal(values[n], values[chosen], equal_nan=True)
        ]  # fmt: skip
        if differing:
            how += f", ambiguous ({len(differing)} other candidates agree)"
        mappings.append(Mapping(tensor, chosen, how, gaps[chosen], differing))
    return mappings


def _mapping_summary(consumer: str, mappings: list[Mapping]) -> tuple[dict[str, Any], str]:
    mapped = [m for m in mappings if m.tensor is not None]
    unmapped = [m for m in mappings if m.tensor is None]
    ambiguous = [m for m in mapped if m.alternatives]
    unconfirmed = [m for m in mapped if not m.confirmed]
    ways = Counter(m.how.split(" (")[0].split(", ambiguous")[0] for m in mapped)
    data = {
        "tensors": len(mappings),
        "mapped": len(mapped),
        "unmapped": [
            {"index": m.tflite.index, "name": m.tflite.name, "op": m.tflite.op, "why": m.how}
            for m in unmapped
        ],
        "ambiguous": [
            {"index": m.tflite.index, "tensor": m.tensor, "others": m.alternatives}
            for m in ambiguous
        ],
        "unconfirmed": [
            {"index": m.tflite.index, "tensor": m.tensor, "gap": m.gap} for m in unconfirmed
        ],
        "how": dict(ways),
        "verify_gap": VERIFY_GAP,
    }
    line = (
        f"{consumer}: {len(mapped)} of {len(mappings)} interpreter tensors produced by ops "
        f"mapped to TF tensors ({', '.join(f'{n} {w}' for w, n in ways.most_common())}); "
        f"{len(ambiguous)} ambiguous, {len(unconfirmed)} not confirmed by value, "
        f"{len(unmapped)} unmapped"
        + (
            ": "
            + ", ".join(f"{m.tflite.op} #{m.tflite.index} ({m.how})" for m in unmapped[:3])
            + (" …" if len(unmapped) > 3 else "")
            if unmapped
            else ""
        )
    )
    return data, line


def _fetch_effect(run: ConsumerRun) -> str:
    """Whether the signature's outputs were the same with every tensor kept and without."""
    with_all, _ = _job(run, ALL_JOB)
    alone, _ = _job(run, OUTPUTS_JOB)
    if with_all is None or alone is None or run.plan is None:
        return ""
    differing = []
    for output in run.plan.jobs[1].outputs:
        first = next((o for o in with_all.outputs if o.key == output.key), None)
        second = next((o for o in alone.outputs if o.key == output.key), None)
        if first is None or second is None or not isinstance(first.dtype, str):
            continue
        a, b = read_output(first, first.dtype, None), read_output(second, first.dtype, None)
        if isinstance(a, str) or isinstance(b, str):
            continue
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            differing.append(output.key)
    if differing:
        return (
            f"{run.consumer}: the final outputs {', '.join(differing)} differ with every tensor "
            "kept (the interpreter delegates and fuses differently); the located divergence "
            "may be that mode's own"
        )
    return f"{run.consumer}: final outputs identical with and without every tensor kept"


def _one_op_model(model: TFLiteModel, op_index: int, fed: list[int]) -> bytes:
    """A model of one op of the main subgraph: its constant inputs kept, ``fed`` its inputs
    (signature ``isolate``: inputs ``i0..``, outputs ``o0..``)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    raw = model.raw
    graph = raw.subgraphs[0]
    op = graph.operators[op_index]
    outputs = [int(i) for i in op.outputs if i >= 0]
    used = [int(i) for i in op.inputs if i >= 0] + outputs
    used += [int(i) for i in (op.intermediates if op.intermediates is not None else [])]
    keep = list(dict.fromkeys(used))
    remap = {old: new for new, old in enumerate(keep)}
    buffers = [schema.BufferT()]
    tensors = []
    for old in keep:
        tensor = copy.copy(graph.tensors[old])
        if old in model.constants:
            buffers.append(raw.buffers[tensor.buffer])
            tensor.buffer = len(buffers) - 1
        else:
            tensor.buffer = 0
        tensors.append(tensor)
    alone = copy.copy(op)
    alone.inputs = [remap[int(i)] if i >= 0 else -1 for i in op.inputs]
    alone.outputs = [remap[i] for i in outputs]
    if op.intermediates is not None:
        alone.intermediates = [remap[int(i)] for i in op.intermediates]
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.operators = tensors, [alone]
    subgraph.inputs = [remap[i] for i in fed]
    subgraph.outputs = [remap[i] for i in outputs]
    subgraph.name = "isolate"

    def names(prefix: str, indices: list[int]) -> list[Any]:
        maps = []
        for number, index in enumerate(indices):
            item = schema.TensorMapT()
            item.name, item.tensorIndex = f"{prefix}{number}", remap[index]
            maps.append(item)
        return maps

    signature = schema.SignatureDefT()
    signature.inputs, signature.outputs = names("i", fed), names("o", outputs)
    signature.signatureKey, signature.subgraphIndex = "isolate", 0
    single = schema.ModelT()
    single.version, single.operatorCodes, single.description = (
        raw.version, raw.operatorCodes, raw.description
    )  # fmt: skip
    single.subgraphs, single.buffers, single.signatureDefs = [subgraph], buffers, [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(single))


def _plan_tensor_name(name: str) -> str:
    """A TFLite tensor name as a plan TENSOR field (``-``: the consumer uses the key)."""
    return name if name and not any(c in name for c in "\t\n\r") else "-"


def _isolate(
    settings: LocateSettings, case: Case, model: TFLiteModel, graph: GraphTensors,
    suspects: list[Mapping], by_index: dict[int, Mapping], reference: _Values,
    consumer: Consumer, position: int,
) -> tuple[list[Isolated], list[str]]:  # fmt: skip
    """Each suspect's TFLite op alone, its non-constant inputs fed with the reference's
    values of the TF tensors they map to (the signature's inputs with the cell's own files).
    Also returns notes (inputs fed through mappings that values did not confirm)."""
    dtypes = {name: dtype for node in graph.nodes for name, dtype in node.outputs}
    case_inputs = {
        model.signature_inputs[e.key]: str(settings.ref.directory / e.file)
        for e in case.inputs
        if e.key in model.signature_inputs
    }
    threads = settings.run.threads
    plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
    work = settings.work_dir / "isolated" / f"{position}-{safe_file_name(consumer.name)}"
    found: list[Isolated] = []
    notes: list[str] = []
    jobs: dict[str, tuple[Isolated, Mapping, plan_format.PlanTensor]] = {}
    for number, mapping in enumerate(suspects):
        assert mapping.tensor is not None
        node = graph.by_name[mapping.tensor.rpartition(":")[0]]
        op_name, inputs, outputs = model.ops[mapping.tflite.op_index]
        isolated = Isolated(node.name, node.op, "", consumer_op=op_name)
        found.append(isolated)
        fed: list[plan_format.PlanTensor] = []
        problems, unconfirmed = [], []
        if op_name in SUBGRAPH_OPS or op_name.startswith("STABLEHLO_"):
            problems.append(f"{op_name} runs other subgraphs; it cannot be cut out alone")
        variable = [i for i in dict.fromkeys(inputs) if i >= 0 and i not in model.constants]
        for index in variable:
            source = by_index.get(index)
            if index in case_inputs:
                file = case_inputs[index]
            elif source is not None and source.tensor and reference.file(source.tensor):
                file = str(reference.file(source.tensor))
                isolated.fed.append(source.tensor)
                isolated.input_files[source.tensor] = file
                if not source.confirmed:
                    unconfirmed.append(source.tensor)
            else:
                name = model.tensors[index].name
                problems.append(f"input #{index} {name!r} is not mapped to a TF tensor")
                continue
            fed.append(plan_format.PlanTensor(
                f"i{len(fed)}", _plan_tensor_name(model.tensors[index].name), file
            ))  # fmt: skip
        if problems:
            isolated.verdict = f"could not be isolated: {'; '.join(problems)}"
            continue
        if unconfirmed:
            notes.append(
                f"isolated {node.name}: fed through mappings not confirmed by value "
                f"({', '.join(unconfirmed)})"
            )
        directory = work / str(number)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            alone = _one_op_model(model, mapping.tflite.op_index, variable)
        except Exception as exc:  # a schema this TensorFlow cannot write back
            isolated.verdict = f"could not be isolated: the one-op model cannot be written ({exc})"
            continue
        (directory / "op.tflite").write_bytes(alone)
        produced = [i for i in outputs if i >= 0]
        job_outputs = [
            plan_format.PlanTensor(
                f"o{k}", _plan_tensor_name(model.tensors[i].name), str(directory / f"o{k}.npy")
            )
            for k, i in enumerate(produced)
        ]
        job = plan_format.Job(f"isolate/{number}", str(directory / "op.tflite"), TFLITE,
                              inputs=fed, outputs=job_outputs)  # fmt: skip
        plan.jobs.append(job)
        jobs[job.id] = (isolated, mapping, job_outputs[produced.index(mapping.tflite.index)])
    if not plan.jobs:
        return found, notes
    run = run_consumer(
        consumer, plan, work, settings.run.build_dir, timeout_s=settings.run.timeout_s,
        environment={**settings.run.environment, **settings.consumer_environment},
    )  # fmt: skip
    for job_id, (isolated, mapping, planned) in jobs.items():
        assert mapping.tensor is not None
        record, failure = _job(run, job_id)
        if record is None:
            isolated.verdict = f"could not be isolated: {failure}"
            continue
        written = next((o for o in record.outputs if o.key == planned.key), None)
        dtype = dtypes.get(mapping.tensor, mapping.tflite.dtype)
        actual = "not written" if written is None else read_output(written, dtype, planned.file)
        wanted = reference.read(mapping.tensor, dtype)
        if isinstance(actual, str) or isinstance(wanted, str):
            problem = actual if isinstance(actual, str) else wanted
            isolated.verdict = f"could not be isolated: {problem}"
            continue
        outcome = compare(mapping.tensor, actual, wanted, settings.tolerance, diagnose=False)
        isolated.verdict = CARRIES_UPSTREAM if outcome.passed else COMPUTES_DIFFERENTLY
        isolated.max_abs, isolated.max_rel = outcome.max_abs, outcome.max_rel
        isolated.reference_files[mapping.tensor] = str(reference.file(mapping.tensor))
    return found, notes


def tflite_case(settings: LocateSettings) -> Case:
    """The tflite case of the same signature in the export that wrote ``settings.ref``."""
    frozen = settings.ref.case
    for case in Manifest.load(settings.ref.directory).cases:
        if case.format == TFLITE and case.signature == frozen.signature:
            return case
    raise UserError(f"{settings.ref.fixture} exports no tflite model of {frozen.signature}")


def locate_tflite(settings: LocateSettings, case: Case | None = None) -> LocateResult:
    """Locate ``case`` (a tflite case, default: the one of ``settings.ref``'s signature)
    against the reference on ``settings.ref``, the frozen
    graph of the same signature; ``settings.consumers`` declare ``fetches_tflite_tensors``."""
    frozen = settings.ref.directory / settings.ref.case.model
    graph = read_graph(frozen)
    cell = case or tflite_case(settings)
    directory = settings.ref.directory
    model = read_tflite(directory / cell.model)
    result = LocateResult(
        settings.ref.fixture, TFLITE, signature_label(cell), str(directory / cell.model),
        settings.reference.name, settings.tolerance, 0, len(graph.left_out),
    )  # fmt: skip
    result.notes.append(
        f"the interpreter's tensors are mapped onto {frozen.name}, the frozen graph the exporter "
        "wrote for the same signature (by the TF node names the converter joins with ';', by "
        f"shape, checked by value within {VERIFY_GAP:g}); "
        f"{settings.reference.name} runs that graph"
    )
    output_keys = {e.key: e.tensor for e in settings.ref.case.outputs}
    candidates = _candidates(model, graph, output_keys)
    order = {name: node.index for node in graph.nodes for name, _ in node.outputs}
    wanted = sorted(
        {t for named, near in candidates.values() for t in named + near if t in order},
        key=lambda t: (order[t], t),
    )
    threads = settings.run.threads

    def reference_plan(out: Path) -> plan_format.Plan:
        frozen_case = settings.ref.case
        (out / ALL_JOB).mkdir(parents=True, exist_ok=True)
        outputs = [
            plan_format.PlanTensor(f"t{i:05d}", t, str(out / ALL_JOB / f"t{i:05d}.npy"))
            for i, t in enumerate(wanted)
        ]
        plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
        plan.jobs.append(plan_format.Job(
            ALL_JOB, str(directory / frozen_case.model), frozen_case.format,
            inputs=[plan_format.PlanTensor(e.key, e.tensor, str(directory / e.file))
                    for e in frozen_case.inputs],
            outputs=outputs,
        ))  # fmt: skip
        return plan

    def dump_plan(out: Path) -> plan_format.Plan:
        inputs = [plan_format.PlanTensor(e.key, e.tensor, str(directory / e.file))
                  for e in cell.inputs]  # fmt: skip
        plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
        for job_id in (ALL_JOB, OUTPUTS_JOB):
            (out / job_id).mkdir(parents=True, exist_ok=True)
            outputs = [
                plan_format.PlanTensor(e.key, e.tensor,
                                       str(out / job_id / safe_file_name(f"{e.key}.npy")))
                for e in cell.outputs
            ]  # fmt: skip
            if job_id == ALL_JOB:
                outputs += [
                    plan_format.PlanTensor(f"#{t.index}", f"#{t.index}",
                                           str(out / job_id / f"t{t.index:05d}.npy"))
                    for t in model.produced
                ]  # fmt: skip
            plan.jobs.append(plan_format.Job(job_id, str(directory / cell.model), TFLITE,
                                             inputs=inputs, outputs=outputs))  # fmt: skip
        return plan

    runs = run_everyone(
        settings,
        "fetch",
        lambda position, work: reference_plan(work) if position == 0 else dump_plan(work),
    )
    record, failure = _job(runs[0], ALL_JOB)
    if record is None:
        result.locations = [
            ConsumerLocation(c.name, "error", f"the reference {settings.reference.name} failed: {failure}")
            for c in settings.consumers
        ]  # fmt: skip
        return result
    reference = _Values(runs[0], record, {t: f"t{i:05d}" for i, t in enumerate(wanted)})
    dtypes = {name: dtype for node in graph.nodes for name, dtype in node.outputs}
    for position, (consumer, consumer_run) in enumerate(
        zip(settings.consumers, runs[1:], strict=True), start=1
    ):
        dumped, failure = _job(consumer_run, ALL_JOB)
        if dumped is None:
            result.locations.append(ConsumerLocation(consumer.name, "error", failure))
            continue
        located = _Values(
            consumer_run, dumped, {f"#{t.index}": f"#{t.index}" for t in model.produced}
        )
        mappings = _map(model, graph, candidates, reference, located, output_keys)
        location = ConsumerLocation(consumer.name, "agrees")
        location.mapping, line = _mapping_summary(consumer.name, mappings)
        location.notes.append(line)
        location.fetch_effect = _fetch_effect(consumer_run)
        compared: list[tuple[TensorComparison, Mapping]] = []
        for mapping in mappings:
            if mapping.tensor is None:
                continue
            node = graph.by_name[mapping.tensor.rpartition(":")[0]]
            comparison = TensorComparison(
                mapping.tensor, node.name, node.op, node.index, False,
                consumer_op=mapping.tflite.op,
                consumer_tensor=f"#{mapping.tflite.index} {mapping.tflite.name}",
                mapping=mapping.how,
            )  # fmt: skip
            dtype = dtypes.get(mapping.tensor, mapping.tflite.dtype)
            actual = located.read(f"#{mapping.tflite.index}", mapping.tflite.dtype)
            expected = reference.read(mapping.tensor, dtype)
            if isinstance(actual, str) or isinstance(expected, str):
                who = "the consumer" if isinstance(actual, str) else "the reference"
                comparison.problem = (
                    f"{who}'s value is unusable: {actual if isinstance(actual, str) else expected}"
                )
            else:
                outcome = compare(
                    mapping.tensor, actual, expected, settings.tolerance, diagnose=False
                )
                comparison.passed = outcome.passed
                comparison.max_abs, comparison.max_rel = outcome.max_abs, outcome.max_rel
                if not outcome.passed and outcome.max_abs is None:
                    comparison.problem = outcome.summary().split(": ", 1)[-1][:200]
            compared.append((comparison, mapping))
        compared.sort(key=lambda pair: (pair[0].index, pair[0].tensor))
        location.tensors = [c for c, _ in compared]
        diverging = [m for c, m in compared if not c.passed]
        if diverging:
            location.status = "diverges"
        suspects = list({m.tflite.op_index: m for m in diverging[: settings.isolate]}.values())
        mapped_nodes = {m.tensor.rpartition(":")[0]: m for _, m in compared if m.tensor}
        for name in settings.nodes:
            if name not in mapped_nodes:
                raise UserError(
                    f"--node {name}: no interpreter tensor of {model.path.name} maps to it "
                    f"(mapped nodes: {', '.join(sorted(mapped_nodes)[:5])}, …)"
                )
            if mapped_nodes[name] not in suspects:
                suspects.append(mapped_nodes[name])
        if suspects:
            by_index = {m.tflite.index: m for m in mappings}
            location.isolated, notes = _isolate(
                settings, cell, model, graph, suspects, by_index, reference, consumer, position
            )
            location.notes += [
                "isolated: each suspect TFLite op cut out into a model of that op alone, fed "
                "with the reference's values of the TF tensors its inputs map to",
                *notes,
            ]
        result.locations.append(location)
    result.fetched = max((len(loc.tensors) for loc in result.locations), default=0)
    return result
