"""JUnit XML rendering of the document: one testcase per cell, so any CI lists failures."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from .document import error_text, normalized, number, write_text


def _cell_seconds(row: dict[str, Any]) -> float:
    parts = [row.get("load_s"), row.get("first_run_s"), *(row.get("steady_s") or [])]
    return sum(x for x in map(number, parts) if x is not None and math.isfinite(x))


def render_junit(doc: dict[str, Any]) -> str:
    """One testcase per cell: classname ``fixture.format``, name ``consumer/signature``.

    fail and xpass are <failure>, error is <error>, skip, xfail and incompatible are <skipped> with the
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
        "skipped": str(counts["skip"] + counts["xfail"] + counts["incompatible"]),
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
        elif status in ("skip", "xfail", "incompatible"):
            ET.SubElement(case, "skipped", {"message": f"{status}: {message}"})
        elif status != "pass":
            ET.SubElement(
                case, "failure", {"message": f"unknown status {status!r}", "type": "unknown"}
            )
        if row.get("max_abs") is not None:
            out = ET.SubElement(case, "system-out")
            out.text = f"max |diff| {error_text(row.get('max_abs'))}, max rel {error_text(row.get('max_rel'))}"
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(doc: dict[str, Any], path: Path) -> None:
    write_text(path, render_junit(doc))
