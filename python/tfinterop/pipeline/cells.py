"""The report's unit: one ``Cell`` per fixture x format x signature x consumer, with its
status, errors and timings, and how declared expectations turn statuses into skip/xfail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..compare import OutputComparison
from ..consumers import Consumer
from ..fixtures import BrokenFixture, Expectation

STATUSES = ("pass", "fail", "error", "skip", "xfail", "incompatible", "xpass")
FAILING = frozenset({"fail", "error", "xpass"})
DECLARED = frozenset({"skip", "xfail", "incompatible"})
"""Not run or failing as stated beforehand (``incompatible``: the runtime prediction said the
model cannot load there, and it did not): not a failure, always shown with its reason."""


@dataclass
class CellOutcome:
    """What one consumer did on one fixture x format x signature (the report's row key)."""

    fixture: str
    format: str
    signature: str
    consumer: str
    status: str
    message: str = ""


@dataclass
class Cell(CellOutcome):
    max_abs: float | None = None
    max_rel: float | None = None
    load_s: float | None = None
    first_run_s: float | None = None
    steady_s: list[float] = field(default_factory=list)
    outputs: list[OutputComparison] = field(default_factory=list)
    stage: str | None = None
    """The consumer's error stage (``load``, ``run``, ...) when the job failed."""

    @property
    def steady_median_s(self) -> float | None:
        return float(np.median(self.steady_s)) if self.steady_s else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fixture": self.fixture,
            "format": self.format,
            "signature": self.signature,
            "consumer": self.consumer,
            "status": self.status,
            "message": self.message,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "load_s": self.load_s,
            "first_run_s": self.first_run_s,
            "steady_median_s": self.steady_median_s,
            "steady_s": self.steady_s,
            "outputs": [o.as_dict() for o in self.outputs],
            "stage": self.stage,
        }


def apply_expectation(cell: Cell, expectation: Expectation | None) -> Cell:
    if expectation is None:
        return cell
    if expectation.kind == "skip":
        cell.status, cell.message = "skip", expectation.reason
    elif expectation.kind == "incompatible":
        if cell.status == "error" and cell.stage == (expectation.stage or "load"):
            cell.status = "incompatible"
            cell.message = f"predicted: {expectation.reason} — observed: {cell.message}"
        elif cell.status in ("pass", "fail"):
            cell.status = "xpass"  # the predictor is wrong: it must be fixed, not absorbed
            cell.message = f"predicted not to load ({expectation.reason}) but it loaded and ran" + (
                f": {cell.message}" if cell.message else ""
            )
        else:
            cell.message = (
                f"predicted not to load ({expectation.reason}), but failed otherwise: "
                f"{cell.message}"
            )
    elif cell.status == "pass":
        cell.status = "xpass"
        cell.message = f"expected to fail ({expectation.reason}) but passed: remove the declaration"
    else:
        cell.message = f"expected failure: {expectation.reason} — observed: {cell.message}"
        cell.status = "xfail"
    return cell


def error_cells(
    name: str, consumers: list[Consumer], message: str, formats: Iterable[str] = ("*",)
) -> list[Cell]:
    return [Cell(name, fmt, "*", c.name, "error", message) for fmt in formats for c in consumers]


def broken_fixture_cells(broken: BrokenFixture, consumers: list[Consumer]) -> list[Cell]:
    return error_cells(broken.name, consumers, f"fixture failed to load: {broken.error}")


def failed(cells: Iterable[CellOutcome]) -> bool:
    return any(c.status in FAILING for c in cells)
