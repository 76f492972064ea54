"""Report stage: console table (rich) and a JSON document other tools can read."""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .pipeline import FAILING, STATUSES, Cell

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold red",
    "skip": "yellow",
    "xfail": "cyan",
    "xpass": "bold magenta",
}
REPORT_VERSION = 1


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _error(value: float | None) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:.2g}"


def render_table(cells: list[Cell], console: Console) -> None:
    table = Table(title="tfinterop: consumer outputs vs Python reference", show_lines=False)
    for column, justify in (
        ("fixture", "left"),
        ("format", "left"),
        ("signature", "left"),
        ("consumer", "left"),
        ("status", "left"),
        ("max abs", "right"),
        ("max rel", "right"),
        ("load", "right"),
        ("steady", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=column != "fixture")  # type: ignore[arg-type]
    for cell in cells:
        table.add_row(
            cell.fixture,
            cell.format,
            cell.signature,
            cell.consumer,
            Text(cell.status.upper(), style=STATUS_STYLE.get(cell.status, "")),
            _error(cell.max_abs),
            _error(cell.max_rel),
            _seconds(cell.load_s),
            _seconds(cell.steady_median_s),
        )
    console.print(table)
    problems = [c for c in cells if c.status != "pass" and c.message]
    for cell in problems:
        style = STATUS_STYLE.get(cell.status, "")
        console.print(
            Text(f"{cell.status.upper()} ", style=style)
            + Text(
                f"{cell.fixture} / {cell.consumer} / {cell.format} / {cell.signature}: ",
                style="bold",
            )
            + Text(cell.message)
        )
    counts = Counter(c.status for c in cells)
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    failing = sum(counts[s] for s in FAILING)
    console.print(
        Text(f"{len(cells)} cells: {summary}", style="bold red" if failing else "bold green")
    )


def document(
    cells: list[Cell], environment: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    counts = Counter(c.status for c in cells)
    return {
        "report_version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment,
        "summary": {
            **{s: counts[s] for s in STATUSES},
            "total": len(cells),
            "ok": not any(counts[s] for s in FAILING),
        },
        "comparison_rule": "|actual - expected| <= atol + rtol * |expected| (numpy isclose); "
        "NaN positions must match; integers, bools and strings exactly equal; shapes and dtypes exactly equal",
        "rows": [c.as_dict() for c in cells],
        **(extra or {}),
    }


def _strict_json(value: Any) -> Any:
    """JSON has no inf/NaN: write them as strings so every parser reads the report."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(
        json.dumps(_strict_json(data), indent=2, default=str, allow_nan=False) + "\n"
    )
    os.replace(temporary, path)
