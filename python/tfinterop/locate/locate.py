"""The runs and comparisons of ``locate`` (frozen graphs; a SavedModel cell is located on the
frozen graph the exporter wrote for the same signature).

1. One plan per consumer: the case's outputs plus every fetchable tensor, and a second job
   with the case's outputs alone (were the final outputs the same with the extra fetches?
   fetching intermediates may change what TensorFlow fuses).
2. The reference and each located consumer run it; each tensor is compared in topological
   order under the tolerance. On a graph with more tensors than ``max_nodes``, an evenly
   spread subset runs first, then every node between the last agreeing and the first
   diverging one.
3. The first ``isolate`` diverging nodes run again in the located consumer, their inputs fed
   with the reference's values.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..compare import compare
from ..consumers import Consumer
from ..contract import plan as plan_format
from ..contract.records import JobRecord, OutputRecord
from ..errors import UserError
from ..fixtures import Tolerance
from ..pipeline.cases import CaseRef
from ..pipeline.compare import read_output
from ..pipeline.run import ConsumerRun, run_consumer
from ..pipeline.settings import RunSettings
from ..tensors import safe_file_name
from .graph import GraphTensors, Node, read_graph, spread
from .result import (
    CARRIES_UPSTREAM,
    COMPUTES_DIFFERENTLY,
    ConsumerLocation,
    Isolated,
    LocateResult,
    TensorComparison,
)

ALL_JOB, OUTPUTS_JOB = "all", "outputs"


@dataclass
class LocateSettings:
    run: RunSettings
    ref: CaseRef
    """The cell's case, in the frozen format."""
    reference: Consumer
    consumers: list[Consumer]
    tolerance: Tolerance
    work_dir: Path
    max_nodes: int = 2000
    isolate: int = 3
    consumer_environment: dict[str, str] = field(default_factory=dict)
    """Set for the located consumers only (e.g. oneDNN on against a reference with it off)."""
    cell_format: str = ""
    """The format asked for (``saved_model`` is located on its frozen graph), for the report."""
    nodes: list[str] = field(default_factory=list)
    """Nodes to isolate besides the first diverging ones (``--node``)."""


@dataclass
class _Fetch:
    """One fetching run's outcome: the tensors it compared, by consumer."""

    runs: dict[str, ConsumerRun]
    planned: dict[str, dict[str, str]]
    """Consumer -> tensor -> the file its plan named."""
    reference_outputs: dict[str, OutputRecord] = field(default_factory=dict)
    """Tensor -> the reference's record of it (over every fetching run)."""


def _plan(
    settings: LocateSettings, tensors: list[str], out: Path
) -> tuple[plan_format.Plan, dict[str, str]]:
    case, directory = settings.ref.case, settings.ref.directory
    inputs = [plan_format.PlanTensor(e.key, e.tensor, str(directory / e.file)) for e in case.inputs]
    outputs = [
        plan_format.PlanTensor(
            e.key, e.tensor, str(out / "outputs" / safe_file_name(f"{e.key}.npy"))
        )
        for e in case.outputs
    ]
    files = {t: str(out / ALL_JOB / f"t{i:05d}.npy") for i, t in enumerate(tensors)}
    fetched = [plan_format.PlanTensor(f"t{i:05d}", t, files[t]) for i, t in enumerate(tensors)]
    (out / ALL_JOB).mkdir(parents=True, exist_ok=True)
    (out / "outputs").mkdir(parents=True, exist_ok=True)
    all_outputs = [
        plan_format.PlanTensor(o.key, o.tensor, str(out / ALL_JOB / Path(o.file).name))
        for o in outputs
    ] + fetched
    threads = settings.run.threads
    plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
    model = str(directory / case.model)
    for job_id, job_outputs in ((ALL_JOB, all_outputs), (OUTPUTS_JOB, outputs)):
        plan.jobs.append(
            plan_format.Job(job_id, model, case.format, inputs=inputs, outputs=job_outputs)
        )
    return plan, files


def run_everyone(
    settings: LocateSettings, tag: str, plan_for: Callable[[int, Path], plan_format.Plan]
) -> list[ConsumerRun]:
    """The reference (position 0) and every located consumer, in parallel, each on
    ``plan_for(position, its work directory)``; the located ones get the consumer-only
    environment (``--onednn``)."""
    everyone = [settings.reference, *settings.consumers]

    def run(item: tuple[int, Consumer]) -> ConsumerRun:
        position, consumer = item
        # The reference may also be located (another environment): separate directories.
        label = "reference" if position == 0 else f"{position}-{consumer.name}"
        work = settings.work_dir / tag / safe_file_name(label)
        extra = {} if position == 0 else settings.consumer_environment
        return run_consumer(
            consumer, plan_for(position, work), work, settings.run.build_dir,
            timeout_s=settings.run.timeout_s, environment={**settings.run.environment, **extra},
        )  # fmt: skip

    with ThreadPoolExecutor(max_workers=max(1, settings.run.jobs)) as pool:
        return list(pool.map(run, enumerate(everyone)))


def _run_all(settings: LocateSettings, tensors: list[str], tag: str) -> _Fetch:
    """The reference and every located consumer on the fetching plan, in parallel."""
    runs = run_everyone(settings, tag, lambda _, work: _plan(settings, tensors, work)[0])
    keyed = {"reference": runs[0], **{str(i + 1): r for i, r in enumerate(runs[1:])}}
    planned = {
        key: {o.tensor: o.file for o in run.plan.jobs[0].outputs} if run.plan else {}
        for key, run in keyed.items()
    }
    reference, _ = _job(runs[0], ALL_JOB)
    outputs = {o.tensor: o for o in reference.outputs} if reference else {}
    return _Fetch(keyed, planned, outputs)


def reference_values(
    settings: LocateSettings, tensors: list[str], tag: str
) -> tuple[dict[str, str], str]:
    """The reference's values of ``tensors`` on the case's inputs, in one run: tensor -> the
    file holding it (those it wrote), and why the run failed ("" when it did not)."""
    fetch = _run_all(replace(settings, consumers=[]), tensors, tag)
    record, failure = _job(fetch.runs["reference"], ALL_JOB)
    if record is None:
        return {}, failure
    written = {o.tensor for o in record.outputs}
    return {t: f for t, f in fetch.planned["reference"].items() if t in written}, ""


def _job(run: ConsumerRun, job_id: str) -> tuple[JobRecord | None, str]:
    record = run.jobs.get(job_id)
    if record is not None and record.ok:
        return record, ""
    if record is not None:
        return None, record.failure_text()
    return None, run.problem() or f"{run.consumer} reported nothing for job {job_id!r}"


def _compare_tensors(
    graph: GraphTensors, tensors: list[str], fetch: _Fetch, key: str, tolerance: Tolerance,
) -> list[TensorComparison]:  # fmt: skip
    reference, _ = _job(fetch.runs["reference"], ALL_JOB)
    located, _ = _job(fetch.runs[key], ALL_JOB)
    assert reference is not None and located is not None
    dtypes = {name: dtype for node in graph.nodes for name, dtype in node.outputs}
    written = [{o.tensor: o for o in record.outputs} for record in (reference, located)]
    found = []
    for tensor in tensors:
        node = graph.by_name[tensor.rpartition(":")[0]]
        comparison = TensorComparison(tensor, node.name, node.op, node.index, False)
        values = []
        for side, records, files in (
            ("reference", written[0], fetch.planned["reference"]),
            (key, written[1], fetch.planned[key]),
        ):
            produced = records.get(tensor)
            value = (
                "not written"
                if produced is None
                else read_output(produced, dtypes[tensor], files.get(tensor))
            )
            if isinstance(value, str):
                who = "the reference" if side == "reference" else "the consumer"
                comparison.problem = f"{who}'s value is unusable: {value}"
                break
            values.append(value)
        if len(values) == 2:
            result = compare(tensor, values[1], values[0], tolerance, diagnose=False)
            comparison.passed = result.passed
            comparison.max_abs, comparison.max_rel = result.max_abs, result.max_rel
            if not result.passed and result.max_abs is None:
                comparison.problem = result.summary().split(": ", 1)[-1][:200]
        found.append(comparison)
    return found


def _fetch_effect(run: ConsumerRun) -> str:
    """Whether the case's outputs came out the same with and without the extra fetches."""
    import numpy as np

    with_all, _ = _job(run, ALL_JOB)
    alone, _ = _job(run, OUTPUTS_JOB)
    if with_all is None or alone is None or run.plan is None:
        return ""
    names = {o.key for o in run.plan.jobs[1].outputs}
    by_key = [{o.key: o for o in r.outputs if o.key in names} for r in (with_all, alone)]
    differing = []
    for key in sorted(names):
        a, b = by_key[0].get(key), by_key[1].get(key)
        if a is None or b is None or not isinstance(a.dtype, str):
            continue
        first, second = read_output(a, a.dtype, None), read_output(b, a.dtype, None)
        if isinstance(first, str) or isinstance(second, str):
            continue
        nan_aware = first.dtype.kind in "fc"  # strings and ints have no NaN to equate
        if first.shape != second.shape or not np.array_equal(first, second, equal_nan=nan_aware):
            if first.shape == second.shape and first.dtype.kind in "fciu":
                gap = float(np.nanmax(np.abs(first.astype(np.complex128) - second)))
                differing.append(f"{key} (max |diff| {gap:.3g})")
            else:
                differing.append(key)
    if differing:
        return (
            f"{run.consumer}: the final outputs {', '.join(differing)} differ with the extra "
            "fetches (fetching intermediates changed what TensorFlow computes); the located "
            "divergence may be the fetches' own"
        )
    return f"{run.consumer}: final outputs identical with and without the extra fetches"


def _isolate(
    settings: LocateSettings, graph: GraphTensors, suspects: list[Node], consumer: Consumer,
    position: int, fetch: _Fetch, tensors_fetched: set[str],
) -> list[Isolated]:  # fmt: skip
    """Each suspect run alone in ``consumer`` with the reference's values of its inputs fed."""
    reference_files = fetch.planned["reference"]
    case_inputs = {e.tensor: settings.ref.directory / e.file for e in settings.ref.case.inputs}
    threads = settings.run.threads
    plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
    found: dict[str, Isolated] = {}
    work = settings.work_dir / "isolated" / f"{position}-{safe_file_name(consumer.name)}"
    for number, node in enumerate(suspects):
        fed, problem = [], ""
        for tensor in node.inputs:
            producer = graph.by_name.get(tensor.rpartition(":")[0])
            if producer is not None and producer.op == "Const":
                continue  # part of the graph: nothing to feed
            if tensor in case_inputs:
                fed.append(plan_format.PlanTensor(tensor, tensor, str(case_inputs[tensor])))
            elif tensor in tensors_fetched:
                fed.append(plan_format.PlanTensor(tensor, tensor, reference_files[tensor]))
            else:
                problem = f"could not be isolated: input {tensor} was not fetched"
                break
        found[node.name] = Isolated(
            node.name, node.op, problem, fed=[f.tensor for f in fed],
            input_files={f.tensor: f.file for f in fed},
            reference_files={name: reference_files[name] for name, _ in node.outputs if name in reference_files},
        )  # fmt: skip
        if problem:
            continue
        (work / str(number)).mkdir(parents=True, exist_ok=True)
        plan.jobs.append(
            plan_format.Job(
                f"isolate/{number}", str(settings.ref.directory / settings.ref.case.model),
                settings.ref.case.format, inputs=fed,
                outputs=[
                    plan_format.PlanTensor(f"o{i}", name, str(work / str(number) / f"o{i}.npy"))
                    for i, (name, _) in enumerate(node.outputs)
                ],
            )
        )  # fmt: skip
    if plan.jobs:
        run = run_consumer(
            consumer, plan, work, settings.run.build_dir, timeout_s=settings.run.timeout_s,
            environment={**settings.run.environment, **settings.consumer_environment},
        )  # fmt: skip
        expected = fetch.reference_outputs
        for job in plan.jobs:
            node = suspects[int(job.id.split("/")[1])]
            isolated = found[node.name]
            record, failure = _job(run, job.id)
            if record is None:
                isolated.verdict = f"could not be isolated: {failure}"
                continue
            worst_abs, worst_rel, passed = None, None, True
            for planned_output, produced in zip(job.outputs, record.outputs, strict=False):
                reference_output = expected.get(planned_output.tensor)
                dtype = produced.dtype if isinstance(produced.dtype, str) else ""
                actual = read_output(produced, dtype, planned_output.file)
                wanted = (
                    read_output(reference_output, dtype, reference_files.get(planned_output.tensor))
                    if reference_output is not None
                    else "the reference did not fetch it"
                )
                if isinstance(actual, str) or isinstance(wanted, str):
                    isolated.verdict = (
                        f"could not be isolated: {actual if isinstance(actual, str) else wanted}"
                    )
                    break
                result = compare(
                    planned_output.tensor, actual, wanted, settings.tolerance, diagnose=False
                )
                passed = passed and result.passed
                if result.max_abs is not None:
                    worst_abs = max(worst_abs or 0.0, result.max_abs)
                if result.max_rel is not None:
                    worst_rel = max(worst_rel or 0.0, result.max_rel)
            else:
                isolated.verdict = COMPUTES_DIFFERENTLY if not passed else CARRIES_UPSTREAM
                isolated.max_abs, isolated.max_rel = worst_abs, worst_rel
    return [found[node.name] for node in suspects]


def locate(settings: LocateSettings) -> LocateResult:
    model = settings.ref.directory / settings.ref.case.model
    graph = read_graph(model)
    result = LocateResult(
        settings.ref.fixture, settings.cell_format or settings.ref.case.format,
        settings.ref.label, str(model), settings.reference.name, settings.tolerance,
        0, len(graph.left_out),
    )  # fmt: skip
    if settings.cell_format and settings.cell_format != settings.ref.case.format:
        result.notes.append(
            f"the {settings.cell_format} cell is located on the frozen graph of the same "
            "signature (the same concrete function, variables folded)"
        )
    fetchable = {node.name for node in graph.nodes}
    for name in settings.nodes:
        if name not in fetchable:
            near = difflib.get_close_matches(name, sorted(fetchable), n=3, cutoff=0.4)
            if name in graph.by_name:
                why = graph.left_out.get(name, "its outputs cannot be fetched")
            else:
                why = "not a node of the graph"
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise UserError(f"--node {name}: {why}{hint}")
    chosen = spread(graph.nodes, settings.max_nodes)
    if len(chosen) < len(graph.nodes):
        result.notes.append(
            f"{len(graph.nodes)} fetchable nodes: first {len(chosen)} evenly spread, then every "
            "node between the last agreeing and the first diverging one (--max-nodes)"
        )
    tensors = [name for node in chosen for name, _ in node.outputs]
    fetch = _run_all(settings, tensors, "fetch")
    reference, failure = _job(fetch.runs["reference"], ALL_JOB)
    if reference is None:
        result.locations = [
            ConsumerLocation(
                c.name, "error", f"the reference {settings.reference.name} failed: {failure}"
            )
            for c in settings.consumers
        ]
        return result
    for position, consumer in enumerate(settings.consumers, start=1):
        key = str(position)
        record, failure = _job(fetch.runs[key], ALL_JOB)
        if record is None:
            result.locations.append(ConsumerLocation(consumer.name, "error", failure))
            continue
        compared = _compare_tensors(graph, tensors, fetch, key, settings.tolerance)
        fetched = set(tensors)
        first = next((t for t in compared if not t.passed), None)
        if first is not None and len(chosen) < len(graph.nodes):
            # Refine: every node between the last agreeing sample and the first diverging one.
            before = max(
                (t.index for t in compared if t.passed and t.index < first.index), default=-1
            )
            between = [n for n in graph.nodes if before < n.index <= first.index]
            refined = [name for node in between[: settings.max_nodes] for name, _ in node.outputs]
            refine = _run_all(settings, refined, f"refine-{position}")
            if _job(refine.runs[key], ALL_JOB)[0] and _job(refine.runs["reference"], ALL_JOB)[0]:
                extra = _compare_tensors(graph, refined, refine, key, settings.tolerance)
                known = {t.tensor for t in compared}
                compared = sorted(
                    compared + [t for t in extra if t.tensor not in known],
                    key=lambda t: (t.index, t.tensor),
                )
                fetch = _merge(fetch, refine)
                fetched |= set(refined)
        location = ConsumerLocation(consumer.name, "agrees", tensors=compared)
        location.fetch_effect = _fetch_effect(fetch.runs[key])
        diverging_nodes: list[Node] = []
        for comparison in compared:
            if not comparison.passed and graph.by_name[comparison.node] not in diverging_nodes:
                diverging_nodes.append(graph.by_name[comparison.node])
        if diverging_nodes:
            location.status = "diverges"
        suspects = diverging_nodes[: settings.isolate]
        suspects += [
            graph.by_name[name] for name in settings.nodes if graph.by_name[name] not in suspects
        ]
        if suspects:
            location.isolated = _isolate(
                settings, graph, suspects, consumer, position, fetch, fetched
            )
        result.locations.append(location)
    result.fetched = len({t.tensor for loc in result.locations for t in loc.tensors}) or len(
        tensors
    )
    return result


def _merge(first: _Fetch, second: _Fetch) -> _Fetch:
    """A refining run's files added to the first run's (the isolated runs feed from both)."""
    planned = {
        key: {**first.planned.get(key, {}), **files} for key, files in second.planned.items()
    }
    return _Fetch(first.runs, {**first.planned, **planned})
