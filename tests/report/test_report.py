"""Report renderings from one JSON document: HTML (plots, escaping), JUnit XML, Markdown;
the histogram/top-k fields of the comparison; progress output; `tfinterop report`."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tfinterop import cli, report
from tfinterop.cli.progress import LineReporter, live_wanted, make_reporter
from tfinterop.compare import compare, error_histogram, top_k_agreement
from tfinterop.fixtures import Tolerance
from tfinterop.pipeline.cells import Cell
from tfinterop.pipeline.events import StartOnly

TOLERANCE = Tolerance(atol=1e-5, rtol=1e-5)
ENVIRONMENT = {
    "tensorflow": {"version": "2.21.0", "distribution": "tensorflow-cpu"},
    "toolchain": {"c_compiler": "cc 12", "rustc": "rustc 1.95.0", "tensorflow_crate": "0.17.0"},
    "consumer_environment": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "threads": {"intra_op": 0, "inter_op": 0},
}
# --- comparison fields the report plots -------------------------------------------------------


def test_histogram_counts_every_element_once_in_its_log10_bin() -> None:
    diff = np.array([0.0, 0.0, 1e-3, 1.5e-3, 1e-7, np.inf, np.nan])
    histogram = error_histogram(diff)
    assert histogram.exact == 2 and histogram.non_finite == 2
    assert sum(histogram.counts) + histogram.exact + histogram.non_finite == diff.size
    edges = histogram.edges_log10
    for value in (1e-3, 1.5e-3, 1e-7):
        bin_ = next(
            i for i in range(len(histogram.counts)) if edges[i] <= np.log10(value) < edges[i + 1]
        )
        assert histogram.counts[bin_] >= 1
    assert edges[0] <= -7 < edges[1]  # starts at the smallest error's bin, not at 1e-20


def test_comparison_stores_histogram_and_top_k_for_classifier_outputs() -> None:
    expected = np.eye(4, 6, dtype=np.float32) * 5 + np.arange(6, dtype=np.float32) * 0.1
    actual = expected.copy()
    actual[1, 0] = 100.0  # row 1's argmax moves: top-1 agreement 3/4
    result = compare("logits", actual, expected, TOLERANCE)
    assert result.top_k is not None and result.top_k.agreement["top1"] == 0.75
    assert result.top_k.agreement["top5"] == 0.75  # class 0 enters row 1's top-5 too
    assert result.histogram is not None and sum(result.histogram.counts) == 1
    data = result.as_dict()
    assert data["histogram"]["counts"] == result.histogram.counts
    assert data["top_k"]["agreement"] == {"top1": 0.75, "top5": 0.75}


def test_top_k_only_for_two_dimensional_scores() -> None:
    assert top_k_agreement(np.zeros(5), np.zeros(5)) is None
    assert top_k_agreement(np.zeros((3, 1)), np.zeros((3, 1))) is None
    only_top1 = top_k_agreement(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert only_top1 is not None and only_top1.agreement == {"top1": 0.0}
    ints = compare("n", np.array([1, 2]), np.array([1, 3]), TOLERANCE)
    assert ints.top_k is None and ints.histogram is not None and ints.histogram.exact == 1


# --- HTML ---------------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        for name in ("src", "href", "action", "poster", "data"):
            if attributes.get(name):
                self.urls.append(str(attributes[name]))


def test_html_is_self_contained_and_shows_the_failing_cell(
    tmp_path: Path, failing_document
) -> None:
    doc = failing_document
    path = tmp_path / "report.html"
    report.write_html(doc, path)
    page = _Page()
    page.feed(path.read_text())
    assert page.urls, "the page has images and links"
    assert all(u.startswith(("data:image/", "#")) for u in page.urls), page.urls
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe", "object")]
    failing = [a for t, a in page.tags if t == "td" and a.get("data-status") == "fail"]
    assert len(failing) == 1
    detail_id = failing[0]["id"].removeprefix("m-")  # type: ignore[union-attr]
    detail = [a for t, a in page.tags if t == "details" and a.get("id") == detail_id]
    assert detail and "open" in detail[0]
    histograms = [a for t, a in page.tags if t == "img" and "histogram" in (a.get("class") or "")]
    assert any(
        "classifier / frozen / serving_default / c" in (a.get("alt") or "") for a in histograms
    )
    latency = [a for t, a in page.tags if t == "img" and "latency" in (a.get("class") or "")]
    assert len(latency) == 1  # one chart per fixture with timings (the xfail row has none)
    text = path.read_text()
    top1 = doc["rows"][2]["outputs"][0]["top_k"]["agreement"]["top1"]
    for shown in ("(2, 5)", f"top1: <b>{100 * top1:.1f}%</b>", "2.21.0", "0.17.0", "cc 12"):
        assert shown in text, shown


def test_html_escapes_model_and_message_strings(tmp_path: Path, failing_document) -> None:
    doc = failing_document
    doc["rows"][0]["fixture"] = "<script>alert(1)</script>"
    doc["rows"][0]["message"] = '"><img src=x onerror=alert(2)>'
    doc["rows"][2]["outputs"][0]["key"] = "<b>key</b>"
    html = report.render_html(doc)
    assert "<script>" not in html and "<img src=x" not in html and "<b>key</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html


def test_html_renders_the_same_from_the_saved_json(tmp_path: Path, failing_document) -> None:
    doc = failing_document
    report.write_json(tmp_path / "result.json", doc)
    assert report.render_html(report.load_document(tmp_path / "result.json")) == report.render_html(
        doc
    )


# --- JUnit and Markdown ------------------------------------------------------------------------


def test_junit_has_one_case_per_cell_with_failures_and_skips(
    tmp_path: Path, failing_document
) -> None:
    doc = failing_document
    doc["rows"].append({**doc["rows"][0], "status": "xpass", "message": "stale declaration"})
    doc["rows"].append({**doc["rows"][0], "status": "error", "message": "crashed \x1b[31m\x00"})
    report.write_junit(doc, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(doc["rows"]) == int(root.get("tests", "0"))
    by_status = {}
    for case, row in zip(cases, doc["rows"], strict=True):
        assert case.get("classname") == f"{row['fixture']}.{row['format']}"
        assert case.get("name") == f"{row['consumer']}/{row['signature']}"
        by_status.setdefault(row["status"], []).append(case)
    (failed,) = [c for c in by_status["fail"] if c.find("failure") is not None]
    assert "1/80 elements differ" in failed.find("failure").get("message")  # type: ignore[union-attr]
    assert by_status["xpass"][0].find("failure").get("type") == "xpass"  # type: ignore[union-attr]
    assert "crashed \\x1b[31m\\x00" in by_status["error"][0].find("error").text  # type: ignore[union-attr,operator]
    assert by_status["xfail"][0].find("skipped").get("message").startswith("xfail: expected")  # type: ignore[union-attr]
    assert root.get("failures") == "2" and root.get("errors") == "1" and root.get("skipped") == "1"
    assert all(c.find("failure") is None for c in by_status["pass"])


def test_markdown_has_counts_matrix_and_failure_messages(failing_document) -> None:
    doc = failing_document
    doc["rows"][0]["fixture"] = "a|b"
    doc["rows"][1]["message"] = "has ``` a fence"
    doc["rows"][1]["status"] = "error"
    doc["summary"] = {**doc["summary"], "pass": 4, "error": 1}
    text = report.render_markdown(doc)
    assert text.startswith("## tfinterop ❌ 7 cells: 4 pass, 1 fail, 1 error, 1 xfail")
    assert "| fixture | format | signature | python | rust | c |" in text
    assert "| a\\|b | frozen |" in text
    assert "❌ fail (0.001)" in text
    assert "````text\nhas ``` a fence\n````" in text
    failure = doc["rows"][2]["message"]
    assert failure.startswith("output logits: 1/80") and failure in text
    assert "expected failure: the crate cannot carry" in text


# --- not-applicable pairs ---------------------------------------------------------------------

DECLARED_SKIP = "declared: c skips this on purpose"


def planned_cells(tmp_path: Path) -> list[Cell]:
    """The pipeline's own cell planning for one fixture in all three formats, every real
    consumer, and one declared skip (c on saved_model). Every consumer is unavailable (a
    failed build), so nothing runs: the applicable pairs are errors, the declared one a skip."""
    from tfinterop.consumers import by_name
    from tfinterop.fixtures import Expectation
    from tfinterop.manifest import Case, TensorEntry
    from tfinterop.pipeline.cases import CaseRef
    from tfinterop.pipeline.run import run_consumers
    from tfinterop.pipeline.settings import RunSettings

    def expectation_for(
        consumer: str, fmt: str, signature: str, runtime: str | None
    ) -> Expectation | None:
        declared = (consumer, fmt) == ("c", "saved_model")
        return Expectation("skip", DECLARED_SKIP) if declared else None

    entry = TensorEntry("x", "x:0", "float32", [2], "inputs/x.npy")
    refs = [
        CaseRef(
            "classifier",
            Case(fmt, "serving_default", f"model.{fmt}", [entry], [entry]),
            tmp_path,
            lambda key, runtime: TOLERANCE,
            expectation_for,
            {},
        )
        for fmt in ("frozen", "saved_model", "tflite")
    ]
    chosen = by_name(["python", "rust", "c", "tflite"])  # one of each kind, fixed columns
    failed = {c.name: "`cc` exited with status 1" for c in chosen}
    settings = RunSettings(build_dir=tmp_path, build_failures=failed)
    cells, _, _ = run_consumers(chosen, refs, settings)
    return cells


def test_not_applicable_pairs_are_no_cells_in_any_report(tmp_path: Path) -> None:
    """A consumer that does not load a format has no cell there: not a SKIP, not counted,
    not listed; console, JSON, JUnit, Markdown and HTML all say 7 cells, 1 (declared) skip."""
    cells = planned_cells(tmp_path)
    pairs = {(c.consumer, c.format) for c in cells}
    assert pairs == {
        *((name, fmt) for name in ("python", "rust", "c") for fmt in ("frozen", "saved_model")),
        ("tflite", "tflite"),
    }
    assert len(cells) == len(pairs) == 7
    skips = [c for c in cells if c.status == "skip"]
    assert [(c.consumer, c.format, c.message) for c in skips] == [
        ("c", "saved_model", DECLARED_SKIP)
    ]

    console = Console(file=io.StringIO(), width=200)
    report.render_table(cells, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.count("SKIP") == 2  # the table row and its reason line
    assert f"SKIP classifier / c / saved_model / serving_default: {DECLARED_SKIP}" in text
    assert text.rstrip().endswith("7 cells: 6 error, 1 skip")

    doc = report.document(cells, ENVIRONMENT)
    assert doc["summary"]["total"] == 7 and doc["summary"]["skip"] == 1
    assert len(doc["rows"]) == 7

    root = ET.fromstring(report.render_junit(doc))
    assert (root.get("tests"), root.get("skipped"), root.get("errors")) == ("7", "1", "6")
    skipped = root.findall(".//skipped")
    assert [s.get("message") for s in skipped] == [f"skip: {DECLARED_SKIP}"]

    markdown = report.render_markdown(doc)
    assert markdown.startswith("## tfinterop ❌ 7 cells: 6 error, 1 skip")
    assert markdown.count("⏭️ skip") == 1
    # The tflite row is empty under python, rust and c; the others empty under tflite.
    assert "| classifier | tflite | serving_default |  |  |  | 💥 error |" in markdown
    assert (
        "| classifier | frozen | serving_default | 💥 error | 💥 error | 💥 error |  |" in markdown
    )

    page = _Page()
    page.feed(report.render_html(doc))
    matrix = [a for t, a in page.tags if t == "td" and "data-status" in a]
    statuses = Counter(a["data-status"] for a in matrix)
    assert statuses == {"error": 6, "skip": 1, "none": 5}, statuses
    empty = [a for a in matrix if a["data-status"] == "none"]
    assert all("does not load the" in (a.get("title") or "") for a in empty)
    listed = Counter(a.get("data-status") for t, a in page.tags if t == "details" and a.get("id"))
    assert listed == {"error": 6, "skip": 1}, listed


# --- CLI ----------------------------------------------------------------------------------------


def test_report_command_rerenders_a_saved_result(tmp_path: Path, capsys, failing_document) -> None:
    report.write_json(tmp_path / "result.json", failing_document)
    outputs = [tmp_path / n for n in ("r.html", "r.xml", "r.md")]
    status = cli.main(
        [
            "report",
            str(tmp_path / "result.json"),
            "--html",
            str(outputs[0]),
            "--junit",
            str(outputs[1]),
            "--markdown",
            str(outputs[2]),
        ]
    )
    assert status == 0
    assert all(p.stat().st_size > 0 for p in outputs)
    out = capsys.readouterr().out
    assert "FAIL classifier / c / frozen / serving_default: output logits: 1/80" in out
    assert "7 cells: 5 pass, 1 fail, 1 xfail" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("{not json", "not a tfinterop JSON report"),
        (json.dumps({"report_version": 99, "rows": []}), "report_version 99"),
    ],
)
def test_report_command_rejects_bad_input_in_one_line(tmp_path, capsys, content, expected) -> None:
    path = tmp_path / "result.json"
    if content is not None:
        path.write_text(content)
    assert cli.main(["report", str(path), "--html", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.html").exists()


def test_interop_accepts_the_report_options() -> None:
    args = cli.make_parser().parse_args(
        [
            "interop",
            "--html",
            "a.html",
            "--junit",
            "a.xml",
            "--markdown",
            "a.md",
            "--json",
            "a.json",
        ]
    )
    assert (args.html, args.junit, args.markdown, args.json) == tuple(
        map(Path, ("a.html", "a.xml", "a.md", "a.json"))
    )


# --- progress -----------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_only_on_a_terminal_outside_ci(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert live_wanted(_Tty()) and not live_wanted(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not live_wanted(_Tty())
    assert isinstance(make_reporter(Console(file=_Tty(), force_terminal=True)), LineReporter)


def test_line_progress_logs_starts_finishes_and_summary() -> None:
    stream = io.StringIO()
    reporter = LineReporter(stream)
    with reporter.stage("export", 3) as stage:
        announce = StartOnly(stage)
        announce("linear", cached=True)
        announce("mobilenet_v3")
        announce("strings")
        announce.finish()
        stage.summary = "2 exported, 1 cached"
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[export 1/3] linear: cached"
    assert lines[1] == "[export 2/3] mobilenet_v3 ..."
    assert re.fullmatch(r"\[export 2/3\] mobilenet_v3 \(\d+ ms\)", lines[2])
    assert lines[3] == "[export 3/3] strings ..."
    assert re.fullmatch(r"\[export 3/3\] strings \(\d+ ms\)", lines[4])
    assert re.fullmatch(r"\[export\] 2 exported, 1 cached in \d+ ms", lines[5])
