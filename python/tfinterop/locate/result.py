"""What ``locate`` found, per located consumer: every compared tensor in topological order,
the first divergence, the isolated verdict of each suspect; its console summary and JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..fixtures import Tolerance

COMPUTES_DIFFERENTLY = "computes differently"
CARRIES_UPSTREAM = "carries an upstream difference"


@dataclass
class TensorComparison:
    tensor: str
    node: str
    op: str
    index: int
    """The node's position in topological order."""
    passed: bool
    max_abs: float | None = None
    max_rel: float | None = None
    problem: str = ""
    """What kept the values from being compared (shape, dtype, unreadable), if anything."""
    consumer_op: str = ""
    consumer_tensor: str = ""
    """The located consumer's own op and tensor compared with ``tensor``, when its tensors
    are not the graph's (a TFLite interpreter's, ``locate/tflite.py``); empty otherwise."""
    mapping: str = ""
    """How that tensor was mapped onto ``tensor`` (by name, by value, ambiguous...)."""


CONSUMER_FIELDS = ("consumer_op", "consumer_tensor", "mapping")
"""Fields set only when the consumer's tensors are mapped onto the graph's (left out of the
JSON otherwise, so a frozen-graph result reads as before)."""


def _fields(item: Any) -> dict[str, Any]:
    return {k: v for k, v in asdict(item).items() if k not in CONSUMER_FIELDS or v}


@dataclass
class Isolated:
    node: str
    op: str
    verdict: str
    """``computes differently``, ``carries an upstream difference``, or why it could not run."""
    max_abs: float | None = None
    max_rel: float | None = None
    fed: list[str] = field(default_factory=list)
    """The node's inputs fed with the reference's values."""
    input_files: dict[str, str] = field(default_factory=dict, repr=False)
    """Fed tensor -> the file of its reference value (``reduce`` builds its repro from them)."""
    reference_files: dict[str, str] = field(default_factory=dict, repr=False)
    """The node's output tensors -> the reference's values."""
    consumer_op: str = ""
    """The consumer's own op run alone, when it is not the graph's node (a TFLite op)."""


@dataclass
class ConsumerLocation:
    consumer: str
    status: str
    """``diverges``, ``agrees`` or ``error`` (the run failed: ``message`` says how)."""
    message: str = ""
    tensors: list[TensorComparison] = field(default_factory=list)
    isolated: list[Isolated] = field(default_factory=list)
    fetch_effect: str = ""
    """Whether the final outputs were the same with and without the extra fetches."""
    mapping: dict[str, Any] = field(default_factory=dict)
    """How the consumer's own tensors were mapped onto the graph's (a TFLite interpreter's):
    counts, the unmapped and ambiguous ones; empty when its tensors are the graph's."""
    notes: list[str] = field(default_factory=list)
    """Lines the console shows under the consumer's result (the mapping, the isolation)."""

    @property
    def first_divergence(self) -> TensorComparison | None:
        return next((t for t in self.tensors if not t.passed), None)

    @property
    def worst(self) -> TensorComparison | None:
        """The tensor with the largest relative error (what a passing cell reports); without
        any (integer tensors have none), the largest absolute one."""
        scored = [t for t in self.tensors if t.max_rel is not None and math.isfinite(t.max_rel)]
        if not scored:
            absolute = [t for t in self.tensors if t.max_abs is not None]
            return max(absolute, key=lambda t: t.max_abs or 0.0, default=None)
        return max(scored, key=lambda t: t.max_rel or 0.0, default=None)

    def as_dict(self) -> dict[str, Any]:
        first = self.first_divergence
        return {
            "consumer": self.consumer,
            "status": self.status,
            "message": self.message,
            "first_divergence": None
            if first is None
            else {
                "node": first.node,
                "op": first.op,
                "tensor": first.tensor,
                "max_abs": first.max_abs,
                "max_rel": first.max_rel,
                **{k: v for k, v in _fields(first).items() if k in CONSUMER_FIELDS},
            },
            "isolated": [_fields(i) for i in self.isolated],
            "fetch_effect": self.fetch_effect,
            **({"mapping": self.mapping} if self.mapping else {}),
            **({"notes": self.notes} if self.notes else {}),
            "tensors": [_fields(t) for t in self.tensors],
        }


@dataclass
class LocateResult:
    fixture: str
    format: str
    signature: str
    model: str
    reference: str
    tolerance: Tolerance
    fetched: int
    """Tensors fetched and compared."""
    left_out: int
    """Nodes whose tensors cannot be fetched (inside branches and loops)."""
    notes: list[str] = field(default_factory=list)
    locations: list[ConsumerLocation] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fixture": self.fixture,
            "format": self.format,
            "signature": self.signature,
            "model": self.model,
            "reference": self.reference,
            "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "fetched": self.fetched,
            "left_out": self.left_out,
            "notes": self.notes,
            "consumers": {loc.consumer: loc.as_dict() for loc in self.locations},
        }

    @property
    def failed(self) -> bool:
        return any(loc.status != "agrees" for loc in self.locations)


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_lines(result: LocateResult) -> list[str]:
    """The console summary: per consumer, the first divergence, its suspects, the error
    growth from the first diverging node to the graph's end."""
    cell = f"{result.fixture}/{result.format}/{result.signature}"
    lines = [
        f"locate {cell}: {result.fetched} tensors compared with {result.reference} "
        f"(atol={result.tolerance.atol:g}, rtol={result.tolerance.rtol:g}); "
        f"{result.left_out} nodes inside branches or loops not fetchable",
        *result.notes,
    ]
    for loc in result.locations:
        if loc.status == "error":
            lines.append(f"{loc.consumer}: ERROR {loc.message}")
            continue
        first = loc.first_divergence
        if first is None:
            worst = loc.worst
            where = (
                f"; worst {worst.tensor} ({worst.op}) max |diff| {_error(worst.max_abs)}, "
                f"max rel {_error(worst.max_rel)}"
                if worst
                else ""
            )
            lines.append(f"{loc.consumer}: every tensor agrees with {result.reference}{where}")
        else:
            diverging = [t for t in loc.tensors if not t.passed]
            last = loc.tensors[-1]
            mapped = (
                f"; {first.consumer_op} {_short(first.consumer_tensor)}, mapped {first.mapping}"
                if first.consumer_tensor
                else ""
            )
            lines.append(
                f"{loc.consumer}: first divergence at {first.node} ({first.op}, node "
                f"{first.index}{mapped}): {first.problem or f'max |diff| {_error(first.max_abs)}, max rel {_error(first.max_rel)}'}; "
                f"{len(diverging)} of {len(loc.tensors)} tensors diverge; at the last fetched "
                f"({last.node}) max rel {_error(last.max_rel)}"
            )
        lines += [f"  {note}" for note in loc.notes]
        for isolated in loc.isolated:
            alone = f"; {isolated.consumer_op} alone" if isolated.consumer_op else ""
            lines.append(
                f"  isolated {isolated.node} ({isolated.op}{alone}): {isolated.verdict}"
                + (
                    f" (max |diff| {_error(isolated.max_abs)} with the reference's inputs fed)"
                    if isolated.max_abs is not None
                    else ""
                )
            )
        if loc.fetch_effect:
            lines.append(f"  {loc.fetch_effect}")
    return lines
