"""Plots for the HTML report, drawn with matplotlib (Agg) and returned as SVG data: URIs.

Everything is drawn from the JSON document (histogram counts, timings), never from tensors,
so a saved report can be re-rendered anywhere.
"""

from __future__ import annotations

import base64
import io
import math
import statistics
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter
from matplotlib.typing import RcKeyType

STATUS_COLOR = {
    "pass": "#1f883d",
    "fail": "#cf222e",
    "error": "#82071e",
    "skip": "#8c959f",
    "xfail": "#bf8700",
    "incompatible": "#0550ae",
    "xpass": "#8250df",
}
CONSUMER_COLORS = ("#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#57606a")
# Text stays text (not glyph paths): smaller files, selectable labels. No fonts are embedded
# or fetched; the browser uses its own sans-serif.
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "tfinterop",  # deterministic ids: same JSON, same HTML
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def histogram_uri(
    histogram: dict[str, Any], atol: float, status: str, title: str = ""
) -> str | None:
    """Bar chart of elements per log10 |a-b| bin; the fixture's atol as a dashed line.

    Exactly equal and non-finite elements have no place on a log axis: they are counted in
    the caption instead. None when every element is exactly equal (nothing to plot)."""
    counts: Sequence[int] = histogram.get("counts") or []
    non_finite = int(histogram.get("non_finite") or 0)
    if not counts and not non_finite:
        return None
    start = float(histogram.get("log10_start") or 0.0)
    step = float(histogram.get("step") or 0.25)
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(4.6, 2.2))
        lefts = [start + i * step for i in range(len(counts))]
        color = STATUS_COLOR.get(status, "#57606a")
        axes.bar(lefts, counts, width=step, align="edge", color=color, edgecolor="white")
        if atol > 0:
            axes.axvline(math.log10(atol), color="#24292f", linestyle="--", linewidth=1)
            axes.annotate(
                "atol",
                (math.log10(atol), 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -10),
                textcoords="offset points",
            )
        if lefts:
            low = min(lefts[0], math.log10(atol) if atol > 0 else lefts[0]) - step
            high = max(lefts[-1] + step, math.log10(atol) if atol > 0 else lefts[-1]) + step
            axes.set_xlim(low, high)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("log10 |actual − expected|")
        axes.set_ylabel("elements")
        caption = [f"exactly equal: {int(histogram.get('exact') or 0)}"]
        if non_finite:
            caption.append(f"non-finite |diff| (NaN/inf mismatch): {non_finite}")
        axes.set_title(title + ("\n" if title else "") + "; ".join(caption), fontsize=8)
        return _data_uri(figure)


def latency_uri(fixture: str, rows: list[dict[str, Any]]) -> str | None:
    """Per fixture: load time and steady-state run time (median, min–max whiskers) per
    consumer, grouped by format/signature; log scale when values span more than
    LOG_SCALE_SPAN (a SavedModel loads in seconds, a frozen graph in milliseconds)."""
    timed = [r for r in rows if r.get("load_s") is not None or r.get("steady_s")]
    if not timed:
        return None
    groups = list(dict.fromkeys(f"{r['format']}/{r['signature']}" for r in timed))
    consumers = list(dict.fromkeys(r["consumer"] for r in timed))
    width = 0.8 / max(1, len(consumers))
    with plt.rc_context(_RC):
        figure, (load_axes, steady_axes) = plt.subplots(
            1, 2, figsize=(max(6.0, 2.4 * len(groups) + 2.0), 2.6), layout="constrained"
        )
        spans: dict[Any, list[float]] = {load_axes: [], steady_axes: []}
        for index, consumer in enumerate(consumers):
            color = CONSUMER_COLORS[index % len(CONSUMER_COLORS)]
            offsets, loads, medians, lows, highs = [], [], [], [], []
            for group_index, group in enumerate(groups):
                row = next(
                    (
                        r
                        for r in timed
                        if r["consumer"] == consumer and f"{r['format']}/{r['signature']}" == group
                    ),
                    None,
                )
                if row is None:
                    continue
                steady = [float(s) * 1000 for s in row.get("steady_s") or []]
                offsets.append(group_index + (index - (len(consumers) - 1) / 2) * width)
                loads.append(_positive_ms(row.get("load_s")))
                median = statistics.median(steady) if steady else math.nan
                medians.append(_positive(median))
                lows.append(max(0.0, medians[-1] - _positive(min(steady, default=math.nan))))
                highs.append(max(0.0, _positive(max(steady, default=math.nan)) - medians[-1]))
            spans[load_axes] += loads
            spans[steady_axes] += medians
            load_axes.bar(offsets, loads, width=width, color=color, label=consumer)
            steady_axes.bar(
                offsets, medians, width=width, color=color, yerr=[lows, highs], capsize=2
            )
        for axes, label in ((load_axes, "load (ms)"), (steady_axes, "steady run, median (ms)")):
            shown = [v for v in spans[axes] if v > 0]
            if shown and max(shown) / min(shown) > LOG_SCALE_SPAN:
                axes.set_yscale("log")
                axes.yaxis.set_minor_formatter(NullFormatter())  # 2x10^-1, 3x10^-1... clutter
                axes.set_ylabel(label + ", log")
            else:
                axes.set_ylim(bottom=0)
                axes.set_ylabel(label)
            axes.set_xticks(range(len(groups)), groups, rotation=15, ha="right")
        load_axes.legend(fontsize=7, frameon=False)
        figure.suptitle(fixture, fontsize=9)
        return _data_uri(figure)


LOG_SCALE_SPAN = 30.0
_FLOOR_MS = 1e-3  # a 0.0 ms timing still gets a visible sliver on the log axis


def _positive(value: float) -> float:
    return value if value > _FLOOR_MS else (_FLOOR_MS if not math.isnan(value) else 0.0)


def _positive_ms(seconds: Any) -> float:
    return 0.0 if seconds is None else _positive(float(seconds) * 1000)


PLOT_STYLE = _RC
"""The report's matplotlib settings (deterministic SVG, text as text), for other pages."""


def figure_uri(figure: Figure) -> str:
    """An SVG ``data:`` URI of ``figure`` (closed afterwards), drawn as the report's plots."""
    return _data_uri(figure)
