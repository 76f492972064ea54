"""``run_check``: inspect, prepare the cases, run the reference beside the other consumers,
compare; and the rows that only a check has (``vs expected``, and rows of consumers that
ran while the reference failed)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import tensors
from ..consumers import REFERENCE, Consumer, first_with
from ..errors import UserError
from ..fixtures import Tolerance
from ..inspect import GRAPH_DEF, SAVED_MODEL, inspect_model
from ..manifest import Case, TensorEntry
from ..pipeline.cases import CaseRef, cell_expectation
from ..pipeline.cells import Cell, apply_expectation
from ..pipeline.compare import compare_job
from ..pipeline.run import ConsumerRun, run_consumers
from ..pipeline.settings import RunSettings
from .consensus import consensus_cells
from .inputs import load_npz
from .notes import check_keys, dim_warnings
from .options import CheckOptions, case_folder
from .prepare import PreparedCase, prepare, work_dir
from .reference import apply_reference, one_line, reference_cells, reference_run
from .result import CheckResult
from .specs import graph_specs, saved_model_specs

GENERIC_NAMES = frozenset(
    {"saved_model", "savedmodel", "model", "export", "frozen", "graph", "serving_default"}
)
NOTHING_TO_COMPARE = "ran, but there is nothing to compare with: "
"""How ``compare_job`` starts the message of a consumer that ran while the reference failed."""


def default_label(path: Path) -> str:
    """A model's name in the report: its directory or file name, with the parents' names in
    front while those are generic (TF Serving's version numbers, ``saved_model``,
    ``frozen/serving_default.pb``)."""
    path = path.resolve()
    if path.name in ("saved_model.pb", "saved_model.pbtxt"):
        path = path.parent
    parts = [path.name]
    while len(parts) < 3 and (Path(parts[0]).stem in GENERIC_NAMES or parts[0].isdigit()):
        path = path.parent
        if not path.name:
            break
        parts.insert(0, path.name)
    return "/".join(parts)


def run_check(
    options: CheckOptions,
    consumers: list[Consumer],
    settings: RunSettings,
    *,
    on_phase: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> CheckResult:
    """Inspect, prepare inputs, run the reference, run every consumer, compare."""
    inspection = inspect_model(options.path, options.build_dir)
    if inspection.missing_weights:  # every consumer would fail to load: say it once, now
        raise UserError(inspection.missing_weights)
    label = options.label or default_label(inspection.path)
    fmt = "saved_model" if inspection.format == SAVED_MODEL else "frozen"
    assert inspection.format in (SAVED_MODEL, GRAPH_DEF)
    specs = (
        saved_model_specs(inspection, options)
        if fmt == "saved_model"
        else graph_specs(inspection, options)
    )
    given = load_npz(options.inputs_file, "--inputs") if options.inputs_file else None
    expected = load_npz(options.expected_file, "--expected") if options.expected_file else None
    runnable = [c for c in consumers if c.supports(fmt)]
    if not runnable:
        names = ", ".join(c.name for c in consumers)
        raise UserError(f"none of the chosen consumers ({names}) loads the {fmt} format")
    work = work_dir(options, label)
    prepared: list[PreparedCase] = []
    problems: list[Cell] = []
    model = inspection.path.resolve()
    for spec in specs:
        try:
            prepared.append(prepare(spec, model, fmt, options, given, expected, work))
        except UserError as exc:
            if not options.all_signatures:
                raise
            problems += [
                Cell(label, fmt, spec.signature, c.name, "error", f"cannot check: {exc}")
                for c in runnable
            ]
    check_keys(given, expected, specs, fmt == "frozen")
    warnings = dim_warnings(specs, options, given, fmt == "frozen")
    for warning in warnings:
        if on_warning:
            on_warning(warning)
    if any(ch in str(model) + str(work) for ch in "\t\n\r"):
        raise UserError(f"{model}: paths with tabs or newlines cannot go into a plan")
    settings.runs_dir = work / "runs"
    refs = [_case_ref(item, options.tolerance, label) for item in prepared]
    reference = first_with(REFERENCE)
    if on_phase:
        on_phase(
            f"running {len(prepared)} case(s): the {reference.name} reference, then "
            f"comparing {', '.join(c.name for c in runnable)}"
        )
    others = [c for c in runnable if c.name != reference.name]
    with_row = len(others) < len(runnable)
    share = not any(item.state_writers for item in prepared)
    # The reference (and its row, one process) runs alongside the other consumers, all started
    # at once. The others' comparison needs the reference files and output dtypes: each of
    # their runs, once done, waits until this thread has applied the reference. (Running Rust
    # and C one after the other beside Python, so that three processes do not share two
    # cores, measured no faster: 1.63 vs 1.59 x saved_model_cli on MobileNetV3, 6 runs each.)
    applied = threading.Event()

    def after_reference(run: ConsumerRun) -> None:
        applied.wait()

    with ThreadPoolExecutor(max_workers=2) as pool:
        reference_future = pool.submit(
            reference_run, reference, prepared, refs, work, settings, options,
            rows=with_row, share=share,
        )  # fmt: skip
        others_future = (
            pool.submit(run_consumers, others, refs, settings, on_done=after_reference)
            if others
            else None
        )
        try:
            reference_result = reference_future.result()
            apply_reference(reference_result, prepared, refs)
        finally:
            applied.set()  # even on failure: the others' threads must not wait forever
        other_cells, consumer_info, runs = others_future.result() if others_future else ([], {}, {})
    cells: list[Cell] = []
    records = {name: run.jobs for name, run in runs.items()}
    if with_row:
        row_cells, row_info = reference_cells(reference_result, refs)
        cells += row_cells
        consumer_info = {reference.name: row_info, **consumer_info}
        if reference_result.run is not None:
            records[reference.name] = reference_result.run.jobs
    cells += other_cells
    cells = _without_reference(cells, refs, reference.name, with_row, expected is not None)
    # Each consumer's outputs are read from its plan's files, as interop reads them.
    planned = {n: {j.id: j for j in r.plan.jobs} for n, r in runs.items() if r.plan is not None}
    if with_row:
        planned[reference.name] = reference_result.planned
    order = [c.name for c in runnable]
    cells += consensus_cells(refs, records, order, options.tolerance, planned)
    for cell in cells:
        cell.message = one_line(cell.message)
    if expected is not None:
        missing = {c.name: settings.unavailable(c) for c in runnable}
        all_runs = dict(runs)
        if with_row:
            missing[reference.name] = reference_result.failure()
            if reference_result.run is not None:
                all_runs[reference.name] = reference_result.run
        for cell in _expected_cells(runnable, all_runs, prepared, label, work, refs, missing):
            cell.message = one_line(cell.message)
            cells.append(cell)
    return CheckResult(
        label=label,
        inspection=inspection,
        cases=prepared,
        cells=problems + cells,
        consumer_info=consumer_info,
        settings=settings,
        work=work,
        reference=reference.name,
        tolerance=options.tolerance,
        problems=problems,
        warnings=warnings,
        shared_load=share,
    )


def _case_ref(item: PreparedCase, tolerance: Tolerance, label: str) -> CaseRef:
    return CaseRef(
        label,
        item.case,
        Path("/"),
        lambda key, runtime: tolerance,
        lambda consumer, fmt, signature, runtime: None,
        item.requires,
        reference_problem=item.reference_problem,
    )


def _without_reference(
    cells: list[Cell], refs: list[CaseRef], reference: str, with_row: bool, expected: bool
) -> list[Cell]:
    """A consumer that ran while the reference failed is not in error: its row says it was
    compared by consensus (and --expected) instead. The failure stays visible: the
    ``reference`` consumer's row is an error, or, when that consumer is not a chosen one, a
    ``<reference> (reference)`` row."""
    problems = {(r.case.format, r.label): r.reference_problem for r in refs if r.reference_problem}
    instead = "the consensus rows" + (" and the 'vs expected' rows" if expected else "")
    out = []
    for cell in cells:
        problem = problems.get((cell.format, cell.signature))
        if (
            problem
            and cell.status == "error"
            and cell.consumer != reference
            and cell.message.startswith(NOTHING_TO_COMPARE)
        ):
            cell.status = "skip"
            cell.message = f"no Python reference ({problem}); its outputs are compared in {instead}"
        out.append(cell)
    if not with_row:
        for ref in refs:
            if ref.reference_problem:
                out.append(
                    Cell(
                        ref.fixture,
                        ref.case.format,
                        ref.label,
                        f"{reference} (reference)",
                        "error",
                        ref.reference_problem,
                    )
                )
    return out


def _expected_cells(
    consumers: list[Consumer],
    runs: dict[str, ConsumerRun],
    prepared: list[PreparedCase],
    label: str,
    work: Path,
    main_refs: list[CaseRef],
    missing: dict[str, str | None],
) -> list[Cell]:
    """Every consumer's outputs against ``--expected`` (the outputs it covers)."""
    cells = []
    for item, main_ref in zip(prepared, main_refs, strict=True):
        if not item.expected:
            continue
        outputs = []
        for entry in item.case.outputs:
            if entry.key not in item.expected:
                continue
            path = (
                work
                / "expected"
                / case_folder(item.case.signature)
                / f"{tensors.safe_file_name(entry.key)}.npy"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            dtype = tensors.write_tensor(path, item.expected[entry.key])
            outputs.append(
                TensorEntry(
                    entry.key, entry.tensor, dtype, list(item.expected[entry.key].shape), str(path)
                )
            )
        case = Case(**{**item.case.__dict__, "outputs": outputs})
        ref = CaseRef(
            f"{label} vs expected",
            case,
            Path("/"),
            main_ref.tolerance_for,
            main_ref.expectation_for,
            main_ref.requires,
        )
        for consumer in consumers:
            expectation = cell_expectation(consumer, ref)
            run = runs.get(consumer.name)
            record = run.jobs.get(main_ref.job_id) if run else None
            failure = missing.get(consumer.name)
            if run is not None and run.failure:
                failure = run.failure.describe()
            cell = compare_job(ref, consumer.name, record, failure)
            if expectation is not None and expectation.kind == "skip":
                cell = Cell(cell.fixture, cell.format, cell.signature, consumer.name, "skip")
            cells.append(apply_expectation(cell, expectation))
    return cells
