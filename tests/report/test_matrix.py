"""The runtime matrix rendering: every cell shown (split into tables, never cut), each reason
that is not a pass listed once with where it happened."""

from __future__ import annotations

import io

from rich.console import Console

from tfinterop.pipeline.cells import Cell
from tfinterop.report.matrix import build_matrix, matrix_markdown, render_matrix

RUNTIMES = ("2.12.0", "2.15.1", "2.18.1", "2.21.0")


def rows() -> list[dict]:
    cells = []
    for runtime in RUNTIMES:
        for family in ("c", "rust", "rust-0.21"):
            drift = 7.17e-7 if runtime != "2.21.0" else 0.0
            cell = Cell("control_flow", "frozen", "branch_b", f"{family}@{runtime}", "pass")
            cell.max_abs = drift
            cells.append(cell)
            status = "incompatible" if runtime == "2.12.0" else "pass"
            message = "predicted: op DecodeWebP not registered" if status != "pass" else ""
            cells.append(
                Cell("new_op", "frozen", "decode_webp", f"{family}@{runtime}", status, message)
            )
    reference = Cell("control_flow", "frozen", "branch_b", "python", "pass")
    reference.max_abs = 0.0
    return [reference.as_dict(), *(c.as_dict() for c in cells)]


def test_columns_are_the_reference_then_runtimes_in_version_order() -> None:
    matrix = build_matrix(list(reversed(rows())))
    assert matrix.columns[0] == "python"
    assert [c.partition("@")[2] for c in matrix.columns[1:]] == [
        v for v in RUNTIMES for _ in range(3)
    ]
    assert matrix.text(("control_flow", "frozen", "branch_b"), "c@2.12.0") == ("ok 7.2e-07", "pass")
    assert matrix.text(("control_flow", "frozen", "branch_b"), "c@2.21.0") == ("ok 0", "pass")
    assert matrix.text(("new_op", "frozen", "decode_webp"), "python") == ("", "")  # no cell


def test_a_narrow_console_gets_several_tables_with_every_cell() -> None:
    console = Console(file=io.StringIO(), width=120, soft_wrap=True)  # as the CLI's
    render_matrix(rows(), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "runtime matrix (1/" in text and "…" not in text.split("INCOMPATIBLE")[0]
    assert text.count("incompatible") == 3  # c, rust, rust-0.21 on 2.12.0, each shown once
    for runtime in RUNTIMES:
        assert runtime in text
    # One line for the reason, naming every place it happened.
    (line,) = [line for line in text.splitlines() if line.startswith("INCOMPATIBLE")]
    assert "c@2.12.0" in line and "rust-0.21@2.12.0" in line
    wide = Console(file=io.StringIO(), width=400)
    render_matrix(rows(), wide)
    assert "(1/" not in wide.file.getvalue()  # type: ignore[attr-defined]


def test_markdown_matrix_has_a_column_per_consumer_and_runtime() -> None:
    text = matrix_markdown(rows())
    header = text.splitlines()[0]
    assert header.count("|") == 2 + 1 + 3 * len(RUNTIMES)
    assert "| new_op/frozen/decode_webp |  | incompatible |" in text
