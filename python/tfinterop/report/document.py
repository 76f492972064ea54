"""The JSON report document: built from cells, written and read back, and normalised to
what a reader of the file sees; plus the row helpers every rendering of it shares."""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..pipeline.cells import FAILING, STATUSES, Cell, CellOutcome

REPORT_VERSION = 1
# XML 1.0 cannot carry most control characters (a consumer's stderr tail may hold ANSI codes).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def summary(cells: Sequence[CellOutcome]) -> dict[str, Any]:
    """Counts per status, the total and the verdict (no failing status)."""
    counts = Counter(c.status for c in cells)
    return {
        **{s: counts[s] for s in STATUSES},
        "total": len(cells),
        "ok": not any(counts[s] for s in FAILING),
    }


def document(
    cells: list[Cell], environment: dict[str, Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "report_version": REPORT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment,
        "summary": summary(cells),
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


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def normalized(doc: dict[str, Any]) -> dict[str, Any]:
    """The document exactly as a reader of the JSON file sees it (inf/NaN as strings,
    control characters escaped): fresh runs and re-renders take one code path."""
    text = json.dumps(_strict_json(doc), default=str, allow_nan=False)
    return _clean(json.loads(text))


def load_document(path: Path) -> dict[str, Any]:
    """A saved ``--json`` report; a user error (one line) when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such file (write one with `tfinterop interop --json FILE`)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a tfinterop JSON report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise UserError(f"{path}: not a tfinterop JSON report (no `rows` list)")
    version = data.get("report_version")
    if version != REPORT_VERSION:
        raise UserError(
            f"{path}: report_version {version!r}; this tfinterop reads version {REPORT_VERSION}"
        )
    return data


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def number(value: Any) -> float | None:
    """Floats as written to JSON, where inf/NaN are strings."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def error_text(value: float | str | None) -> str:
    value = number(value)
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:.2g}"


def cell_name(row: dict[str, Any]) -> str:
    return f"{row['fixture']} / {row['consumer']} / {row['format']} / {row['signature']}"
