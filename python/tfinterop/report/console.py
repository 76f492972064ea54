"""The console table (rich) of a run's rows, with repeated messages printed once."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..pipeline.cells import FAILING, STATUSES, Cell
from .document import cell_name, error_text, number

MAX_NAMED_CELLS = 4
"""Cells named on one console line of a repeated message; the rest are counted."""

STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "error": "bold red",
    "skip": "yellow",
    "xfail": "cyan",
    "incompatible": "blue",
    "xpass": "bold magenta",
}


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def render_table(cells: list[Cell], console: Console) -> None:
    render_rows([c.as_dict() for c in cells], console)


def render_rows(rows: list[dict[str, Any]], console: Console) -> None:
    """The console table from report rows (``Cell.as_dict()`` or a saved JSON document)."""
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
    for row in rows:
        status = str(row["status"])
        table.add_row(
            str(row["fixture"]),
            str(row["format"]),
            str(row["signature"]),
            str(row["consumer"]),
            Text(status.upper(), style=STATUS_STYLE.get(status, "")),
            error_text(row.get("max_abs")),
            error_text(row.get("max_rel")),
            _seconds(number(row.get("load_s"))),
            _seconds(number(row.get("steady_median_s"))),
        )
    console.print(table)
    # Cells sharing one message (a consumer that is not built, a fixture that failed to
    # export) are printed once, naming them all, so the cause is not buried in repeats.
    same_message: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["status"] == "pass" or not row.get("message"):
            continue
        same_message.setdefault((str(row["status"]), str(row["message"])), []).append(row)
    for (status, message), group in same_message.items():
        names = [cell_name(row) for row in group]
        if len(names) > MAX_NAMED_CELLS:
            names = [
                *names[: MAX_NAMED_CELLS - 1],
                f"{len(names) - MAX_NAMED_CELLS + 1} more cells",
            ]
        console.print(
            Text(f"{status.upper()} ", style=STATUS_STYLE.get(status, ""))
            + Text(f"{', '.join(names)}: ", style="bold")
            + Text(message)
        )
    counts = Counter(str(r["status"]) for r in rows)
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
    failing = sum(counts[s] for s in FAILING)
    console.print(
        Text(f"{len(rows)} cells: {summary}", style="bold red" if failing else "bold green")
    )
