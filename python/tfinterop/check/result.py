"""What a check found: ``CheckResult``, the cases as run with their cells, and its JSON form
(the ``check`` section of the report)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..fixtures import Tolerance
from ..inspect import Inspection
from ..pipeline.cells import Cell
from ..pipeline.settings import RunSettings
from .options import DEFAULT_TOLERANCE
from .prepare import PreparedCase


@dataclass
class CheckResult:
    label: str
    inspection: Inspection
    cases: list[PreparedCase]
    cells: list[Cell]
    consumer_info: dict[str, dict[str, Any]]
    settings: RunSettings
    work: Path
    reference: str
    """The reference consumer's name (the registry's ``REFERENCE`` consumer)."""
    tolerance: Tolerance = DEFAULT_TOLERANCE
    problems: list[Cell] = field(default_factory=list)
    """Cases that could not be prepared (all-signatures mode): one error row each."""
    warnings: list[str] = field(default_factory=list)
    """Options that did nothing (``--dim`` on an input without unknown dimensions)."""
    shared_load: bool = False
    """The reference and the reference consumer's row ran on one load (no signature writes
    state)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.inspection.path),
            "format": self.inspection.format,
            "label": self.label,
            "work_dir": str(self.work),
            "reference": (
                f"outputs of the {self.reference} consumer's own first run; rows "
                "'<model> vs expected' compare with --expected; without a reference, rows "
                "'<model> consensus' compare the consumers with each other"
            ),
            "warnings": self.warnings,
            "shared_load": self.shared_load,
            "cases": [
                {
                    "signature": p.case.signature,
                    "tags": p.case.tags,
                    "stateful": bool(p.state_writers),
                    "state_writers": p.state_writers,
                    "inputs": {
                        e.key: {"tensor": e.tensor, "dtype": e.dtype, "shape": e.shape}
                        for e in p.case.inputs
                    },
                    "outputs": {
                        e.key: {"tensor": e.tensor, "dtype": e.dtype, "shape": e.shape}
                        for e in p.case.outputs
                    },
                    "input_source": p.generated,
                    "reference_problem": p.reference_problem,
                    "python_load": p.python_load,
                    "requires": p.requires,
                    "notes": p.notes,
                }
                for p in self.cases
            ],
            "kernel_problems": [p.as_dict() for p in self.inspection.kernel_problems],
        }
