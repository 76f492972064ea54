"""The plan file of the consumer contract (docs/consumer-contract.md): writer and parser.

The harness writes plans; the Python consumer parses them with the same rules the C and
Rust consumers implement, so all three agree on one format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..formats import ALL, SAVED_MODEL

HEADER = "tfinterop-plan\t1"
FORMATS = ALL
"""Formats a plan may name; a consumer only gets jobs in formats it declares."""


class PlanError(UserError):
    pass


@dataclass
class PlanTensor:
    key: str
    tensor: str
    file: str
    image: bool = False
    """Inputs only: ``file`` is a PNG the consumer decodes (record ``image``, see images.py)."""


@dataclass
class Job:
    id: str
    model: str = ""
    format: str = ""
    tags: list[str] = field(default_factory=lambda: ["serve"])
    signature: str = "serving_default"
    inputs: list[PlanTensor] = field(default_factory=list)
    outputs: list[PlanTensor] = field(default_factory=list)
    warmup: int = 0
    repeat: int = 1
    problem: str | None = field(default=None, compare=False)
    """Set by the parser when well-formed records do not make a valid job (stage ``plan``)."""


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    intra_op_threads: int = 0
    inter_op_threads: int = 0


def _check_field(value: str, what: str) -> str:
    if not value or "\t" in value or "\n" in value or "\r" in value:
        raise PlanError(f"{what} {value!r} cannot be empty or contain a tab or newline")
    return value


def render(plan: Plan) -> str:
    lines = [HEADER]
    if plan.intra_op_threads or plan.inter_op_threads:
        lines.append(f"threads\t{plan.intra_op_threads}\t{plan.inter_op_threads}")
    for job in plan.jobs:
        lines.append(f"job\t{_check_field(job.id, 'job id')}")
        lines.append(f"model\t{_check_field(job.model, 'model path')}")
        lines.append(f"format\t{job.format}")
        if job.format == SAVED_MODEL:
            lines.append(f"tags\t{_check_field(','.join(job.tags), 'tag set')}")
            lines.append(f"signature\t{_check_field(job.signature, 'signature')}")
        for kind, entries in (("input", job.inputs), ("output", job.outputs)):
            for entry in entries:
                record = "image" if entry.image else kind
                lines.append(
                    f"{record}\t{_check_field(entry.key, kind + ' key')}\t"
                    f"{_check_field(entry.tensor, kind + ' tensor')}\t{_check_field(entry.file, kind + ' file')}"
                )
        lines.append(f"warmup\t{job.warmup}")
        lines.append(f"repeat\t{job.repeat}")
        lines.append("end")
    return "\n".join(lines) + "\n"


def write(plan: Plan, path: Path) -> None:
    path.write_text(render(plan), encoding="utf-8")


def _count(value: str, line_no: int, minimum: int) -> int:
    if not value.isdigit() or len(value) > 9 or int(value) < minimum:
        raise PlanError(f"plan line {line_no}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def parse(text: str) -> Plan:
    """Strict parser: unknown records, missing fields and duplicate ids are errors."""
    lines = text.split("\n")
    if not lines or lines[0] != HEADER:
        raise PlanError("plan must start with the line 'tfinterop-plan<TAB>1'")
    plan = Plan()
    job: Job | None = None
    seen: set[str] = set()
    ids: set[str] = set()

    def job_problem(message: str) -> None:
        if job is not None and job.problem is None:
            job.problem = message

    for line_no, line in enumerate(lines[1:], start=2):
        if not line or line.startswith("#"):
            continue
        record, *fields = line.split("\t")
        expected = {
            "threads": 2, "job": 1, "model": 1, "format": 1, "tags": 1, "signature": 1,
            "input": 3, "image": 3, "output": 3, "warmup": 1, "repeat": 1, "end": 0,
        }.get(record)  # fmt: skip
        if expected is None:
            raise PlanError(f"plan line {line_no}: unknown record {record!r}")
        if len(fields) != expected or any(not f for f in fields):
            raise PlanError(f"plan line {line_no}: {record} takes {expected} non-empty field(s)")
        if record == "threads":
            if job is not None or plan.jobs or "threads" in ids:
                raise PlanError(
                    f"plan line {line_no}: threads must come once, before the first job"
                )
            ids.add("threads")
            plan.intra_op_threads = _count(fields[0], line_no, 0)
            plan.inter_op_threads = _count(fields[1], line_no, 0)
            continue
        if record == "job":
            if job is not None:
                raise PlanError(f"plan line {line_no}: job {job.id!r} is not closed with 'end'")
            if "job:" + fields[0] in ids:
                raise PlanError(f"plan line {line_no}: duplicate job id {fields[0]!r}")
            ids.add("job:" + fields[0])
            job, seen = Job(id=fields[0]), set()
            continue
        if job is None:
            raise PlanError(f"plan line {line_no}: {record} outside a job")
        if record in ("model", "format", "tags", "signature", "warmup", "repeat"):
            if record in seen:
                job_problem(f"plan line {line_no}: {record} given twice in job {job.id!r}")
            seen.add(record)
        if record == "model":
            job.model = fields[0]
        elif record == "format":
            if fields[0] not in FORMATS:
                raise PlanError(
                    f"plan line {line_no}: format must be {' or '.join(FORMATS)}, got {fields[0]!r}"
                )
            job.format = fields[0]
        elif record == "tags":
            job.tags = fields[0].split(",")
            if any(not tag for tag in job.tags):
                raise PlanError(f"plan line {line_no}: empty tag in tag set {fields[0]!r}")
        elif record == "signature":
            job.signature = fields[0]
        elif record in ("input", "image", "output"):
            entries = job.outputs if record == "output" else job.inputs
            if any(entry.key == fields[0] for entry in entries):
                job_problem(f"plan line {line_no}: {record} {fields[0]!r} given twice")
            entries.append(PlanTensor(fields[0], fields[1], fields[2], image=record == "image"))
        elif record == "warmup":
            job.warmup = _count(fields[0], line_no, 0)
        elif record == "repeat":
            job.repeat = _count(fields[0], line_no, 1)
        elif record == "end":
            if not job.model or not job.format or not job.outputs:
                job_problem(
                    f"plan line {line_no}: job {job.id!r} needs model, format and an output"
                )
            elif job.format != SAVED_MODEL and seen & {"tags", "signature"}:
                job_problem(
                    f"plan line {line_no}: tags/signature are for saved_model jobs, "
                    f"not {job.format}"
                )
            plan.jobs.append(job)
            job = None
    if job is not None:
        raise PlanError(f"plan ends inside job {job.id!r} (missing 'end')")
    return plan
