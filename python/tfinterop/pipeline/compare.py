"""The compare step: a consumer's job record and output files against the case's reference,
under the fixture's tolerances, as a ``Cell``. ``read_output`` is the one reader of a
consumer's output files: it enforces the contract (plan file, declared dtype) first."""

from __future__ import annotations

import os

import numpy as np

from .. import tensors
from ..compare import compare
from ..contract import plan as plan_format
from ..contract.records import JobRecord, OutputRecord
from .cases import CaseRef
from .cells import Cell


def compare_job(
    ref: CaseRef,
    consumer: str,
    record: JobRecord | None,
    failure: str | None,
    planned: plan_format.Job | None = None,
    runtime: str | None = None,
) -> Cell:
    """The cell of one job. ``planned`` is the job as the consumer got it: its outputs must be
    the plan's files (else whatever file the record names is compared, even the reference).
    ``runtime`` is the TensorFlow the consumer ran on (None: the pinned one), for the
    fixture's per-runtime tolerances.
    A record or file that breaks the contract makes an ``error`` cell naming the rule."""
    cell = Cell(ref.fixture, ref.case.format, ref.label, consumer, "error")
    if record is None:
        cell.message = failure or "consumer reported nothing for this job"
        return cell
    cell.load_s = record.load_s
    cell.first_run_s = record.first_run_s
    cell.steady_s = list(record.steady_s)
    if not record.ok:
        cell.message = record.failure_text()
        cell.stage = record.stage
        return cell
    if ref.reference_problem:
        cell.message = f"ran, but there is nothing to compare with: {ref.reference_problem}"
        return cell
    written = {o.key: o for o in record.outputs}
    planned_files = {o.key: o.file for o in planned.outputs} if planned else {}
    messages = []
    broken = False
    for expected_entry in ref.case.outputs:
        tolerance = ref.tolerance_for(expected_entry.key, runtime)
        expected = tensors.read_tensor(ref.directory / expected_entry.file, expected_entry.dtype)
        produced = written.get(expected_entry.key)
        if produced is None:
            messages.append(f"output {expected_entry.key}: not written by the consumer")
            continue
        actual = read_output(produced, expected_entry.dtype, planned_files.get(expected_entry.key))
        if isinstance(actual, str):
            broken = True
            messages.append(f"output {expected_entry.key}: {consumer} broke the contract: {actual}")
            continue
        result = compare(expected_entry.key, actual, expected, tolerance)
        cell.outputs.append(result)
        if not result.passed:
            messages.append(result.summary())
    cell.max_abs = max((o.max_abs for o in cell.outputs if o.max_abs is not None), default=None)
    cell.max_rel = max((o.max_rel for o in cell.outputs if o.max_rel is not None), default=None)
    cell.status = "error" if broken else "fail" if messages else "pass"
    cell.message = " || ".join(messages)
    return cell


def read_output(produced: OutputRecord, dtype: str, planned_file: str | None) -> np.ndarray | str:
    """The output as the contract defines it: the plan's file read as the reference's
    ``dtype``. Returns the rule the record or file broke instead, when one did."""
    named = produced.file
    declared = produced.dtype
    if planned_file is not None and (
        not isinstance(named, str) or os.path.normpath(named) != os.path.normpath(planned_file)
    ):
        return (
            f"the result record names {named!r}, but the plan asked for {planned_file!r} "
            "(each output goes to its plan file)"
        )
    path = planned_file if planned_file is not None else named
    if not isinstance(path, str) or not path:
        return f"the result record names no output file ({named!r})"
    if declared != dtype:
        return (
            f"the result record declares dtype {declared}, but the graph's output is {dtype} "
            "(outputs are written in the dtype fetched)"
        )
    try:
        actual = tensors.read_tensor(path, dtype)
        held = tensors.dtype_name(actual)
    except Exception as exc:  # any garbage output file is this cell's error, not a crash
        return f"the output file is unreadable ({exc})"
    if held != declared:
        return f"the result record declares dtype {declared}, but the file holds {held} ({path})"
    return actual
