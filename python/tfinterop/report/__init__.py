"""Report stage: console table (rich), the JSON document, and renderings of that document.

``document()`` is the one source: the HTML page (``write_html``), JUnit XML (``write_junit``)
and Markdown summary (``write_markdown``) are all rendered from it, so ``tfinterop report
RESULT.json`` re-renders any of them from a saved run.

Modules: ``document`` (build, write, load, normalise), ``console``, ``junit``, ``markdown``,
``html/`` (the page), ``output`` (``write_reports``: each requested rendering to its file),
``merge`` (the saved results of a sharded run as one document: ``tfinterop report --merge``).
"""

from __future__ import annotations

from .console import MAX_NAMED_CELLS, STATUS_STYLE, render_rows, render_table
from .document import REPORT_VERSION, document, load_document, normalized, write_json
from .junit import render_junit, write_junit
from .markdown import STATUS_MARK, render_markdown, write_markdown
from .output import render_html, write_html, write_reports

__all__ = [
    "MAX_NAMED_CELLS",
    "REPORT_VERSION",
    "STATUS_MARK",
    "STATUS_STYLE",
    "document",
    "load_document",
    "normalized",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_rows",
    "render_table",
    "write_html",
    "write_json",
    "write_junit",
    "write_markdown",
    "write_reports",
]
