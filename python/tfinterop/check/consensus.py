"""Consensus rows: where there is no reference, the consumers that ran are compared with
each other, pair by pair. Their outputs are read by ``pipeline.compare.read_output``, so a
consumer breaking the contract shows the same message as in ``interop``."""

from __future__ import annotations

import itertools

from ..compare import compare
from ..contract import plan as plan_format
from ..contract.records import JobRecord
from ..fixtures import Tolerance
from ..pipeline.cases import CaseRef
from ..pipeline.cells import Cell
from ..pipeline.compare import read_output


def consensus_cell(
    ref: CaseRef,
    first: tuple[str, JobRecord],
    second: tuple[str, JobRecord],
    tolerance: Tolerance,
    planned: dict[str, dict[str, str]] | None = None,
) -> Cell:
    """``second``'s outputs against ``first``'s, under the check's tolerance. ``planned``:
    consumer -> output key -> its plan file, where the plan is known."""
    (a, record_a), (b, record_b) = first, second
    cell = Cell(f"{ref.fixture} consensus", ref.case.format, ref.label, f"{a} vs {b}", "fail")
    written = [{o.key: o for o in record.outputs} for record in (record_a, record_b)]
    files = [(planned or {}).get(name, {}) for name in (a, b)]
    messages = []
    broken = False
    for entry in ref.case.outputs:
        output_a, output_b = (w.get(entry.key) for w in written)
        if output_a is None or output_b is None:
            who = a if output_a is None else b
            messages.append(f"output {entry.key}: not written by {who}")
            continue
        # The declared dtype; a graph's may be unknown ("") until the reference ran, and
        # there is none: then the first consumer's declares it, and the second must agree.
        dtype = entry.dtype or (output_a.dtype if isinstance(output_a.dtype, str) else "")
        values = []
        for name, produced, plan_files in ((a, output_a, files[0]), (b, output_b, files[1])):
            value = read_output(produced, dtype, plan_files.get(entry.key))
            if isinstance(value, str):
                broken = True
                messages.append(f"output {entry.key}: {name} broke the contract: {value}")
            else:
                values.append(value)
        if len(values) < 2:
            continue
        result = compare(entry.key, values[1], values[0], tolerance)
        cell.outputs.append(result)
        if not result.passed:
            messages.append(result.summary())
    errors = [o.max_abs for o in cell.outputs if o.max_abs is not None]
    cell.max_abs = max(errors, default=None)
    cell.max_rel = max((o.max_rel for o in cell.outputs if o.max_rel is not None), default=None)
    cell.status = "error" if broken else "fail" if messages else "pass"
    if messages:
        cell.message = f"no Python reference: {b} vs {a}: " + " || ".join(messages)
    else:
        worst = "equal" if not cell.max_abs else f"worst |diff| {cell.max_abs:.3g}"
        cell.message = (
            f"no Python reference: {a} and {b} agree ({worst}; atol={tolerance.atol:g}, "
            f"rtol={tolerance.rtol:g})"
        )
    return cell


def consensus_cells(
    refs: list[CaseRef],
    records: dict[str, dict[str, JobRecord]],
    order: list[str],
    tolerance: Tolerance,
    planned: dict[str, dict[str, plan_format.Job]] | None = None,
) -> list[Cell]:
    """Where there is no reference, every pair of consumers that ran compared with each
    other: one row per pair, naming it, with its worst difference. ``planned``: consumer ->
    job id -> the job as that consumer got it (its outputs must be the plan's files)."""
    cells = []
    for ref in refs:
        if not ref.reference_problem:
            continue
        ran = [(name, records[name].get(ref.job_id)) for name in order if name in records]
        ok = [(name, r) for name, r in ran if r is not None and r.ok]
        files = {
            name: {o.key: o.file for o in jobs[ref.job_id].outputs}
            for name, jobs in (planned or {}).items()
            if ref.job_id in jobs
        }
        for first, second in itertools.combinations(ok, 2):
            cells.append(consensus_cell(ref, first, second, tolerance, files))
    return cells
