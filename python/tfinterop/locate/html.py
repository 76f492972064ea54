"""``locate --html FILE``: one self-contained page (no external resources) showing, per
located consumer, the error (log10 of max rel) of every compared tensor along the
topological order, the first diverging node marked, and the isolated verdicts."""

from __future__ import annotations

import math
from html import escape

from .result import ConsumerLocation, LocateResult

FLOOR = -12.0
"""log10 of exactly equal tensors (drawn at the axis floor, not left out)."""


def _error_plot(location: ConsumerLocation, rtol: float) -> str | None:
    import matplotlib.pyplot as plt

    from ..report.html.plots import PLOT_STYLE, figure_uri

    points = [
        (t.index, FLOOR if not t.max_rel else max(FLOOR, math.log10(t.max_rel)), t.passed)
        for t in location.tensors
        if t.max_rel is not None and math.isfinite(t.max_rel)
    ]
    if not points:
        return None
    with plt.rc_context(PLOT_STYLE):
        figure, axes = plt.subplots(figsize=(7.5, 2.4))
        for passed, color in ((True, "#1f883d"), (False, "#cf222e")):
            xs = [x for x, _, ok in points if ok is passed]
            ys = [y for _, y, ok in points if ok is passed]
            axes.scatter(xs, ys, s=6, color=color, label="agrees" if passed else "diverges")
        if rtol > 0:
            axes.axhline(math.log10(rtol), color="#57606a", linestyle="--", linewidth=0.8)
        first = location.first_divergence
        if first is not None:
            axes.axvline(first.index, color="#cf222e", linewidth=0.8)
            axes.annotate(first.node, (first.index, FLOOR), fontsize=7, rotation=90,
                          va="bottom", ha="right")  # fmt: skip
        axes.set_xlabel("node (topological order)")
        axes.set_ylabel("log10 max rel")
        axes.legend(loc="upper left", fontsize=7, frameon=False)
        return figure_uri(figure)


def render_html(result: LocateResult) -> str:
    from .result import summary_lines

    cell = f"{result.fixture}/{result.format}/{result.signature}"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>tfinterop locate {escape(cell)}</title>",
        "<style>body{font-family:sans-serif;max-width:72rem;margin:1rem auto;padding:0 1rem}"
        "pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem}td,th{padding:.2rem .5rem;"
        "text-align:left}</style></head><body>",
        f"<h1>Where does it drift? {escape(cell)}</h1>",
        f"<pre>{escape(chr(10).join(summary_lines(result)))}</pre>",
    ]
    for location in result.locations:
        parts.append(f"<h2>{escape(location.consumer)}: {escape(location.status)}</h2>")
        plot = _error_plot(location, result.tolerance.rtol)
        if plot:
            parts.append(f"<img alt='error along the graph' src='{plot}'>")
        if location.isolated:
            parts.append("<table><tr><th>isolated node</th><th>op</th><th>verdict</th>"
                         "<th>max |diff|</th></tr>")  # fmt: skip
            for isolated in location.isolated:
                worst = "-" if isolated.max_abs is None else f"{isolated.max_abs:.3g}"
                op = isolated.op + (
                    f" ({isolated.consumer_op} alone)" if isolated.consumer_op else ""
                )
                parts.append(
                    f"<tr><td>{escape(isolated.node)}</td><td>{escape(op)}</td>"
                    f"<td>{escape(isolated.verdict)}</td><td>{worst}</td></tr>"
                )
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
