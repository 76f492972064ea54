"""Markdown rendering of the document (a GitHub job summary): counts, the matrix, problems."""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any

from ..pipeline.cells import DECLARED, FAILING, STATUSES
from .document import cell_name, error_text, normalized, write_text

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
    "incompatible": "🚫",
    "xpass": "❗",
}


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
                error = error_text(row.get("max_abs"))
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
                f"{_md_cell(cell_name(row))}",
                "",
                _fenced(message),
                "",
            ]
        if len(failures) > MARKDOWN_PROBLEMS_SHOWN:
            lines += [
                f"… and {len(failures) - MARKDOWN_PROBLEMS_SHOWN} more (see the HTML/JUnit report)",
                "",
            ]
    declared = [r for r in rows if r.get("status") in DECLARED]
    if declared:
        lines += [
            "<details><summary>Skipped, expected failures and incompatible runtimes</summary>",
            "",
        ]
        for row in declared[:MARKDOWN_PROBLEMS_SHOWN]:
            reason = str(row.get("message") or "")[:MARKDOWN_REASON_CHARS]
            lines.append(f"- {row.get('status')} {_md_cell(cell_name(row))}: {_md_cell(reason)}")
        if len(declared) > MARKDOWN_PROBLEMS_SHOWN:
            lines.append(f"- … and {len(declared) - MARKDOWN_PROBLEMS_SHOWN} more")
        lines += ["", "</details>", ""]
    return "\n".join(lines)


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    write_text(path, render_markdown(doc))
