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

STATUSES = ("pass", "fail", "error", "skip", "xfail", "xpass")
FAILING = frozenset({"fail", "error", "xpass"})


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
        }


def apply_expectation(cell: Cell, expectation: Expectation | None) -> Cell:
    if expectation is None:
        return cell
    if expectation.kind == "skip":
        cell.status, cell.message = "skip", expectation.reason
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
