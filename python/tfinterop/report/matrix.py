"""The runtime matrix: rows fixture x format x signature, columns consumer per runtime.

Rendered from report rows (``Cell.as_dict()`` or a saved JSON document), so ``tfinterop
report --matrix RESULT.json`` shows it again. A cell is its status with the worst absolute
error against the pinned Python reference (``ok 0`` = bit-exact); every cell that is not a
pass is listed under the matrix with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version
from rich.console import Console
from rich.table import Table

from .console import STATUS_STYLE
from .document import number

REASON_CHARS = 240
WHERE_SHOWN = 4
SHORT = {
    "pass": "ok",
    "fail": "FAIL",
    "error": "ERROR",
    "skip": "skip",
    "xfail": "xfail",
    "incompatible": "incompatible",
    "xpass": "XPASS",
}


@dataclass
class Matrix:
    columns: list[str]
    """Consumers without a runtime first (the reference), then per runtime in version order."""
    rows: list[tuple[str, str, str]]
    cells: dict[tuple[tuple[str, str, str], str], dict[str, Any]] = field(default_factory=dict)

    def text(self, row: tuple[str, str, str], column: str) -> tuple[str, str]:
        """(cell text, status) of one matrix cell; ``""`` where the pair is no cell."""
        found = self.cells.get((row, column))
        if found is None:
            return "", ""
        status = str(found.get("status"))
        worst = number(found.get("max_abs"))
        label = SHORT.get(status, status)
        if status in ("pass", "fail", "xpass") and worst is not None:
            label += " 0" if worst == 0 else f" {worst:.1e}"
        return label, status

    def problems(self) -> list[str]:
        """One line per distinct reason of the cells that are not a pass (the same reason on
        several runtimes or consumers is one line naming them all)."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for row in self.rows:
            for column in self.columns:
                found = self.cells.get((row, column))
                if found is None or found.get("status") == "pass":
                    continue
                family = column.partition("@")[0]
                reason = " ".join(str(found.get("message") or "").split()).replace(column, family)
                if len(reason) > REASON_CHARS:
                    reason = reason[: REASON_CHARS - 1] + "…"
                where = grouped.setdefault((str(found.get("status")), reason), [])
                where.append(f"{'/'.join(row)} {column}")
        lines = []
        for (status, reason), where in grouped.items():
            shown = ", ".join(where[:WHERE_SHOWN])
            more = f" (+{len(where) - WHERE_SHOWN} more)" if len(where) > WHERE_SHOWN else ""
            lines.append(f"{status.upper()} {shown}{more}: {reason}")
        return lines


def _column_key(name: str) -> tuple[int, Version | str, str]:
    family, at, runtime = name.partition("@")
    if not at:
        return (0, "", family)
    try:
        return (1, Version(runtime), family)
    except InvalidVersion:
        return (2, runtime, family)


def build_matrix(rows: list[dict[str, Any]]) -> Matrix:
    keys = list(
        dict.fromkeys((str(r["fixture"]), str(r["format"]), str(r["signature"])) for r in rows)
    )
    columns = sorted({str(r["consumer"]) for r in rows}, key=_column_key)
    matrix = Matrix(columns, keys)
    for row in rows:
        key = (str(row["fixture"]), str(row["format"]), str(row["signature"]))
        matrix.cells[(key, str(row["consumer"]))] = row
    return matrix


def _runtime_groups(columns: list[str]) -> list[list[str]]:
    """Columns by runtime: the reference-like ones (no runtime) first, then one group each."""
    groups: dict[str, list[str]] = {}
    for column in columns:
        groups.setdefault(column.partition("@")[2], []).append(column)
    return list(groups.values())


def _width(matrix: Matrix, column: str) -> int:
    texts = [matrix.text(row, column)[0] for row in matrix.rows]
    return max([len(t) for t in texts] + [len(p) for p in column.split("@")]) + 3


def render_matrix(rows: list[dict[str, Any]], console: Console) -> None:
    """The matrix as console tables; runtimes that do not fit the console's width side by
    side go to the next table (the row labels and reference columns repeat), never cut."""
    matrix = build_matrix(rows)
    groups = _runtime_groups(matrix.columns)
    fixed = groups.pop(0) if groups and "@" not in groups[0][0] else []
    labels = [max(len(part) for part in parts) + 3 for parts in zip(*matrix.rows, strict=True)]
    room = console.width - sum(labels) - sum(_width(matrix, c) for c in fixed) - 4
    chunks: list[list[str]] = [[]]
    for group in groups:
        need = sum(_width(matrix, c) for c in group)
        if chunks[-1] and sum(_width(matrix, c) for c in chunks[-1]) + need > room:
            chunks.append([])
        chunks[-1] += group
    for index, chunk in enumerate(chunks, start=1):
        part = f" ({index}/{len(chunks)})" if len(chunks) > 1 else ""
        table = Table(title=f"runtime matrix{part}: worst |diff| vs the pinned Python reference")
        for heading in ("fixture", "format", "signature"):
            table.add_column(heading, no_wrap=True)
        for column in [*fixed, *chunk]:
            family, _, runtime = column.partition("@")
            table.add_column(f"{family}\n{runtime}" if runtime else family, no_wrap=True)
        for row in matrix.rows:
            rendered = []
            for column in [*fixed, *chunk]:
                text, status = matrix.text(row, column)
                style = STATUS_STYLE.get(status, "")
                rendered.append(f"[{style}]{text}[/]" if style and text else text)
            table.add_row(*row, *rendered)
        console.print(table)
    for line in matrix.problems():
        console.print(line, markup=False, highlight=False)


def matrix_markdown(rows: list[dict[str, Any]]) -> str:
    matrix = build_matrix(rows)
    head = ["fixture / format / signature", *matrix.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in matrix.rows:
        texts = [matrix.text(row, column)[0] for column in matrix.columns]
        lines.append("| " + " | ".join(["/".join(row), *texts]) + " |")
    problems = matrix.problems()
    if problems:
        lines += ["", *(f"- {line}" for line in problems)]
    return "\n".join(lines) + "\n"
