"""Cases -> one consumer's plan file (docs/consumer-contract.md): its applicable jobs, each
output pointed at a file under the run directory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .. import tensors
from ..consumers import PHOTO_INPUT, PNG_INPUT, Consumer
from ..contract import plan as plan_format
from ..manifest import TensorEntry
from .cases import CaseRef, applicable, cell_expectation


def build_plan(
    consumer: Consumer,
    refs: Iterable[CaseRef],
    out_dir: Path,
    *,
    warmup: int,
    repeat: int,
    threads: tuple[int, int],
) -> plan_format.Plan:
    plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
    for ref in refs:
        if not applicable(consumer, ref):
            continue
        expectation = cell_expectation(consumer, ref)
        if expectation is not None and expectation.kind == "skip":
            continue
        # Names come from models (check: anyone's SavedModel): keep them inside out_dir.
        safe = tensors.safe_file_name
        job_dir = out_dir / safe(ref.fixture) / ref.case.format / safe(ref.label)
        job_dir.mkdir(parents=True, exist_ok=True)
        plan.jobs.append(
            plan_format.Job(
                id=ref.job_id,
                model=str(ref.directory / ref.case.model),
                format=ref.case.format,
                tags=ref.case.tags or ["serve"],
                signature=ref.case.signature,
                inputs=[_input(consumer, ref.directory, e) for e in ref.case.inputs],
                outputs=[
                    plan_format.PlanTensor(e.key, e.tensor, str(job_dir / Path(e.file).name))
                    for e in ref.case.outputs
                ],
                warmup=warmup,
                repeat=repeat,
            )
        )
    return plan


def _input(consumer: Consumer, directory: Path, entry: TensorEntry) -> plan_format.PlanTensor:
    """A consumer that decodes PNGs itself gets the image, one that preprocesses photos itself
    the photo; the others the array the reference was computed from (pillow's decoding, the
    fixture's preprocessing)."""
    for path, capability in ((entry.image, PNG_INPUT), (entry.photo, PHOTO_INPUT)):
        if path and consumer.supports(capability):
            return plan_format.PlanTensor(entry.key, entry.tensor, str(directory / path), True)
    return plan_format.PlanTensor(entry.key, entry.tensor, str(directory / entry.file))
