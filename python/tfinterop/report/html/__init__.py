"""The HTML report: one self-contained file (inline CSS, plots as data: URIs, no scripts).

``render(doc)`` takes the JSON document of ``report.document()`` (as written to disk: inf/NaN
as strings) and returns the page. Every model-, tensor- or message-derived string goes
through Jinja2's autoescaping; nothing is marked safe except the data: URIs we made.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import plots

TEMPLATE = "report.html.j2"
VALUE_CHARS = 80
"""Worst-element values (e.g. long strings) are cut to this many characters."""
SEVERITY = {"fail": 0, "error": 0, "xpass": 0, "xfail": 1, "incompatible": 1, "skip": 2, "pass": 3}
"""Order of the cell details: what needs a fix first; failing ones are also opened."""
OPENED = frozenset({"fail", "error", "xpass"})
_KNOWN_KEYS = {
    "report_version",
    "created",
    "environment",
    "summary",
    "comparison_rule",
    "rows",
}


def number(value: Any) -> float | None:
    """A float from the JSON (where inf/NaN are strings), or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt_error(value: Any) -> str:
    x = number(value)
    if x is None:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.3g}"


def fmt_seconds(value: Any) -> str:
    x = number(value)
    if x is None or math.isnan(x):
        return "–"
    return f"{x * 1000:.2f} ms" if x < 1 else f"{x:.2f} s"


def fmt_value(value: Any) -> str:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) for v in value)
    ):
        text = f"{value[0]:g}{value[1]:+g}j"  # complex, stored as [re, im]
    else:
        text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        rows: list[tuple[str, str]] = []
        for key, value in data.items():
            rows += _flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(data, list):
        return [(prefix, ", ".join(str(v) for v in data))]
    return [(prefix, "–" if data is None else str(data))]


def _facts(environment: dict[str, Any]) -> list[tuple[str, str]]:
    """The settings that change numbers or explain a failure, in reading order."""
    tf = environment.get("tensorflow") or {}
    toolchain = environment.get("toolchain") or {}
    consumer_env = environment.get("consumer_environment") or {}
    threads = environment.get("threads") or {}
    facts = [
        ("TensorFlow", f"{tf.get('version', '?')} ({tf.get('distribution', '?')})"),
        ("tensorflow crate", toolchain.get("tensorflow_crate") or "?"),
        ("C compiler", toolchain.get("c_compiler") or "?"),
        ("rustc", toolchain.get("rustc") or "?"),
        ("oneDNN (TF_ENABLE_ONEDNN_OPTS)", consumer_env.get("TF_ENABLE_ONEDNN_OPTS", "?")),
        (
            "threads (intra, inter; 0 = TF default)",
            f"{threads.get('intra_op', '?')}, {threads.get('inter_op', '?')}",
        ),
        ("CPUs", str(environment.get("cpus", "?"))),
        ("Python", str(environment.get("python", "?"))),
        ("platform", str(environment.get("platform", "?"))),
    ]
    for name, info in (environment.get("consumers") or {}).items():
        if isinstance(info, dict):
            binding = info.get("binding") or "?"
            tf_version = info.get("tf_version")
            sandboxed = info.get("sandboxed")  # absent in reports from before the sandbox
            where = "" if sandboxed is None else "; sandboxed" if sandboxed else "; not sandboxed"
            facts.append(
                (
                    f"consumer {name}",
                    binding + (f"; TF {tf_version}" if tf_version else "") + where,
                )
            )
    return facts


def _output_view(output: dict[str, Any], status: str, cell_title: str) -> dict[str, Any]:
    tolerance = output.get("tolerance") or {}
    atol = number(tolerance.get("atol")) or 0.0
    histogram = output.get("histogram")
    top_k = output.get("top_k")
    return {
        "key": output.get("key", "?"),
        "passed": bool(output.get("passed")),
        "dtype": output.get("actual_dtype"),
        "expected_dtype": output.get("expected_dtype"),
        "shape": output.get("actual_shape"),
        "expected_shape": output.get("expected_shape"),
        "atol": tolerance.get("atol"),
        "rtol": tolerance.get("rtol"),
        "problems": output.get("problems") or [],
        "total": output.get("total") or 0,
        "mismatches": output.get("mismatches") or 0,
        "max_abs": fmt_error(output.get("max_abs")),
        "max_rel": fmt_error(output.get("max_rel")),
        "min_atol": fmt_error(output.get("min_atol")),
        "min_rtol": fmt_error(output.get("min_rtol")),
        "worst": [
            {
                "index": "(" + ", ".join(str(i) for i in w.get("index") or []) + ")",
                "actual": fmt_value(w.get("actual_text", w.get("actual"))),
                "expected": fmt_value(w.get("expected_text", w.get("expected"))),
                "abs_error": fmt_error(w.get("abs_error")),
            }
            for w in output.get("worst") or []
        ],
        "top_k": (
            {
                "rows": top_k.get("rows"),
                "classes": top_k.get("classes"),
                "agreement": [
                    (k, f"{100 * (number(v) or 0):.1f}%")
                    for k, v in (top_k.get("agreement") or {}).items()
                ],
            }
            if isinstance(top_k, dict)
            else None
        ),
        "histogram": (
            plots.histogram_uri(histogram, atol, status, f"{cell_title}: {output.get('key')}")
            if isinstance(histogram, dict)
            else None
        ),
        "exact_everywhere": isinstance(histogram, dict)
        and not histogram.get("counts")
        and not histogram.get("non_finite"),
    }


def _cell_view(index: int, row: dict[str, Any]) -> dict[str, Any]:
    title = f"{row.get('fixture')} / {row.get('format')} / {row.get('signature')} / {row.get('consumer')}"
    status = str(row.get("status", "error"))
    outputs = [_output_view(o, status, title) for o in row.get("outputs") or []]
    mismatches = sum(o["mismatches"] for o in outputs)
    return {
        "id": f"cell-{index}",
        "title": title,
        "fixture": row.get("fixture"),
        "format": row.get("format"),
        "signature": row.get("signature"),
        "consumer": row.get("consumer"),
        "status": status,
        "message": row.get("message") or "",
        "max_abs": fmt_error(row.get("max_abs")),
        "max_rel": fmt_error(row.get("max_rel")),
        "measured": row.get("max_abs") is not None,
        "mismatches": mismatches,
        "load": fmt_seconds(row.get("load_s")),
        "first_run": fmt_seconds(row.get("first_run_s")),
        "steady": fmt_seconds(row.get("steady_median_s")),
        "steady_runs": len(row.get("steady_s") or []),
        "timed": row.get("load_s") is not None or bool(row.get("steady_s")),
        "outputs": outputs,
    }


def _view(doc: dict[str, Any]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = doc.get("rows") or []
    cells = [_cell_view(i, row) for i, row in enumerate(rows)]
    consumers = list(dict.fromkeys(str(c["consumer"]) for c in cells))
    matrix: dict[tuple[str, str, str], dict[str, Any]] = {}
    for cell in cells:
        key = (str(cell["fixture"]), str(cell["format"]), str(cell["signature"]))
        matrix.setdefault(key, {})[str(cell["consumer"])] = cell
    fixtures = list(dict.fromkeys(str(r.get("fixture")) for r in rows))
    latency = []
    for fixture in fixtures:
        uri = plots.latency_uri(fixture, [r for r in rows if str(r.get("fixture")) == fixture])
        if uri:
            latency.append({"fixture": fixture, "uri": uri})
    summary = doc.get("summary") or {}
    environment = doc.get("environment") or {}
    return {
        "created": doc.get("created", "?"),
        "summary": summary,
        "counts": [(s, summary.get(s, 0)) for s in plots.STATUS_COLOR if summary.get(s)],
        "ok": bool(summary.get("ok")),
        "rule": doc.get("comparison_rule", ""),
        "consumers": consumers,
        "matrix": [
            {"fixture": f, "format": fm, "signature": s, "cells": [by.get(c) for c in consumers]}
            for (f, fm, s), by in sorted(matrix.items(), key=lambda item: item[0])
        ],
        "cells": sorted(cells, key=lambda c: SEVERITY.get(c["status"], 0)),
        "latency": latency,
        "facts": _facts(environment),
        "environment": _flatten(environment),
        "run": _flatten({k: v for k, v in doc.items() if k not in _KNOWN_KEYS}),
        "statuses": plots.STATUS_COLOR,
        "opened": OPENED,
    }


def render(doc: dict[str, Any]) -> str:
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template(TEMPLATE).render(**_view(doc))
