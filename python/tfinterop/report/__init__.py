"""Report stage: console table (rich), the JSON document, and renderings of that document.

``document()`` is the one source: the HTML page (``write_html``), JUnit XML (``write_junit``)
and Markdown summary (``write_markdown``) are all rendered from it, so ``tfinterop report
RESULT.json`` re-renders any of them from a saved run.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..pipeline.cells import FAILING, STATUSES, Cell

MAX_NAMED_CELLS = 4
"""Cells named on one console line of a repeated message; the rest are counted."""

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


def _error(value: float | str | None) -> str:
    value = _number(value)
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:.2g}"


def _number(value: Any) -> float | None:
    """Floats as written to JSON, where inf/NaN are strings."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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
            _error(row.get("max_abs")),
            _error(row.get("max_rel")),
            _seconds(_number(row.get("load_s"))),
            _seconds(_number(row.get("steady_median_s"))),
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
        names = [_cell_name(row) for row in group]
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


def _cell_name(row: dict[str, Any]) -> str:
    return f"{row['fixture']} / {row['consumer']} / {row['format']} / {row['signature']}"


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


# --- renderings of the document -------------------------------------------------------------

# XML 1.0 cannot carry most control characters (a consumer's stderr tail may hold ANSI codes).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
MARKDOWN_MESSAGE_CHARS = 4000
MARKDOWN_PROBLEMS_SHOWN = 50
MARKDOWN_REASON_CHARS = 300
"""GitHub caps a job summary at 1 MiB: long runs list the first problems, then point on."""
STATUS_MARK = {
    "pass": "✅",
    "fail": "❌",
    "error": "💥",
    "skip": "⏭️",
    "xfail": "⚠️",
    "xpass": "❗",
}


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


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def render_html(doc: dict[str, Any]) -> str:
    from .html import render

    return render(normalized(doc))


def write_html(doc: dict[str, Any], path: Path) -> None:
    _write_text(path, render_html(doc))


def _cell_seconds(row: dict[str, Any]) -> float:
    parts = [row.get("load_s"), row.get("first_run_s"), *(row.get("steady_s") or [])]
    return sum(x for x in map(_number, parts) if x is not None and math.isfinite(x))


def render_junit(doc: dict[str, Any]) -> str:
    """One testcase per cell: classname ``fixture.format``, name ``consumer/signature``.

    fail and xpass are <failure>, error is <error>, skip and xfail are <skipped> with the
    reason, so any CI lists the failures natively."""
    doc = normalized(doc)
    rows = doc.get("rows") or []
    counts = Counter(r.get("status") for r in rows)
    total_time = sum(_cell_seconds(r) for r in rows)
    attributes = {
        "name": "tfinterop",
        "tests": str(len(rows)),
        "failures": str(counts["fail"] + counts["xpass"]),
        "errors": str(counts["error"]),
        "skipped": str(counts["skip"] + counts["xfail"]),
        "time": f"{total_time:.3f}",
    }
    suites = ET.Element("testsuites", attributes)
    suite = ET.SubElement(suites, "testsuite", {**attributes, "timestamp": doc.get("created", "")})
    properties = ET.SubElement(suite, "properties")
    environment = doc.get("environment") or {}
    for name, value in (
        ("tensorflow", (environment.get("tensorflow") or {}).get("version")),
        ("tensorflow_crate", (environment.get("toolchain") or {}).get("tensorflow_crate")),
        (
            "TF_ENABLE_ONEDNN_OPTS",
            (environment.get("consumer_environment") or {}).get("TF_ENABLE_ONEDNN_OPTS"),
        ),
    ):
        if value is not None:
            ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    for row in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"{row.get('fixture')}.{row.get('format')}",
                "name": f"{row.get('consumer')}/{row.get('signature')}",
                "time": f"{_cell_seconds(row):.3f}",
            },
        )
        status, message = row.get("status"), str(row.get("message") or "")
        first_line = message.split(" || ")[0][:500]
        if status in ("fail", "xpass"):
            failure = ET.SubElement(case, "failure", {"message": first_line, "type": status})
            failure.text = message
        elif status == "error":
            error = ET.SubElement(case, "error", {"message": first_line, "type": "error"})
            error.text = message
        elif status in ("skip", "xfail"):
            ET.SubElement(case, "skipped", {"message": f"{status}: {message}"})
        elif status != "pass":
            ET.SubElement(
                case, "failure", {"message": f"unknown status {status!r}", "type": "unknown"}
            )
        if row.get("max_abs") is not None:
            out = ET.SubElement(case, "system-out")
            out.text = (
                f"max |diff| {_error(row.get('max_abs'))}, max rel {_error(row.get('max_rel'))}"
            )
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(doc: dict[str, Any], path: Path) -> None:
    _write_text(path, render_junit(doc))


def _md_cell(text: Any) -> str:
    """Table-safe: HTML-escaped (GitHub renders inline HTML), pipes and newlines neutralised."""
    return escape(str(text)).replace("|", "\\|").replace("\n", " ")


def _fenced(text: str) -> str:
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}text\n{text}\n{fence}"


def render_markdown(doc: dict[str, Any]) -> str:
    """Counts, the fixture × format × consumer matrix, then every problem with its message."""
    doc = normalized(doc)
    rows = doc.get("rows") or []
    summary = doc.get("summary") or {}
    counts = ", ".join(f"{summary.get(s, 0)} {s}" for s in STATUSES if summary.get(s))
    ok = bool(summary.get("ok"))
    environment = doc.get("environment") or {}
    tf = (environment.get("tensorflow") or {}).get("version", "?")
    crate = (environment.get("toolchain") or {}).get("tensorflow_crate", "?")
    onednn = (environment.get("consumer_environment") or {}).get("TF_ENABLE_ONEDNN_OPTS", "?")
    threads = environment.get("threads") or {}
    lines = [
        f"## tfinterop {'✅' if ok else '❌'} {len(rows)} cells: {counts or 'none'}",
        "",
        f"TensorFlow {_md_cell(tf)} · tensorflow crate {_md_cell(crate)} · "
        f"oneDNN {_md_cell(onednn)} · threads {_md_cell(threads.get('intra_op', '?'))},"
        f"{_md_cell(threads.get('inter_op', '?'))} · {_md_cell(doc.get('created', ''))}",
        "",
    ]
    consumers = list(dict.fromkeys(str(r.get("consumer")) for r in rows))
    matrix: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        key = (str(row.get("fixture")), str(row.get("format")), str(row.get("signature")))
        matrix.setdefault(key, {})[str(row.get("consumer"))] = row
    if rows:
        lines.append(
            "| fixture | format | signature | " + " | ".join(map(_md_cell, consumers)) + " |"
        )
        lines.append("|---|---|---|" + "---|" * len(consumers))
        for (fixture, fmt, signature), by_consumer in sorted(matrix.items()):
            cells = []
            for consumer in consumers:
                row = by_consumer.get(consumer)
                if row is None:
                    cells.append("")
                    continue
                status = str(row.get("status"))
                error = _error(row.get("max_abs"))
                cells.append(
                    f"{STATUS_MARK.get(status, '')} {_md_cell(status)}"
                    + (f" ({error})" if row.get("max_abs") is not None else "")
                )
            lines.append(
                f"| {_md_cell(fixture)} | {_md_cell(fmt)} | {_md_cell(signature)} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    failures = [r for r in rows if r.get("status") in FAILING]
    if failures:
        lines += ["### Failures", ""]
        for row in failures[:MARKDOWN_PROBLEMS_SHOWN]:
            status = str(row.get("status"))
            message = str(row.get("message") or "(no message)")
            if len(message) > MARKDOWN_MESSAGE_CHARS:
                message = message[:MARKDOWN_MESSAGE_CHARS] + " … (cut; see the HTML/JSON report)"
            lines += [
                f"**{STATUS_MARK.get(status, '')} {_md_cell(status.upper())}** "
                f"{_md_cell(_cell_name(row))}",
                "",
                _fenced(message),
                "",
            ]
        if len(failures) > MARKDOWN_PROBLEMS_SHOWN:
            lines += [
                f"… and {len(failures) - MARKDOWN_PROBLEMS_SHOWN} more (see the HTML/JUnit report)",
                "",
            ]
    declared = [r for r in rows if r.get("status") in ("skip", "xfail")]
    if declared:
        lines += ["<details><summary>Skipped and expected failures</summary>", ""]
        for row in declared[:MARKDOWN_PROBLEMS_SHOWN]:
            reason = str(row.get("message") or "")[:MARKDOWN_REASON_CHARS]
            lines.append(f"- {row.get('status')} {_md_cell(_cell_name(row))}: {_md_cell(reason)}")
        if len(declared) > MARKDOWN_PROBLEMS_SHOWN:
            lines.append(f"- … and {len(declared) - MARKDOWN_PROBLEMS_SHOWN} more")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    _write_text(path, render_markdown(doc))


def write_reports(
    doc: dict[str, Any],
    *,
    json_path: Path | None = None,
    html: Path | None = None,
    junit: Path | None = None,
    markdown: Path | None = None,
) -> list[Path]:
    """Write every requested rendering of ``doc``; returns the paths written."""
    written = []
    for path, writer in (
        (json_path, lambda d, p: write_json(p, d)),
        (html, write_html),
        (junit, write_junit),
        (markdown, write_markdown),
    ):
        if path is not None:
            writer(doc, path)
            written.append(path)
    return written
