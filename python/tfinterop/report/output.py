"""The HTML page entry point and ``write_reports``: every requested rendering to its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .document import normalized, write_json, write_text
from .junit import write_junit
from .markdown import write_markdown


def render_html(doc: dict[str, Any]) -> str:
    from .html import render

    return render(normalized(doc))


def write_html(doc: dict[str, Any], path: Path) -> None:
    write_text(path, render_html(doc))


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
