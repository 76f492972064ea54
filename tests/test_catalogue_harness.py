"""Harness features the catalogue needs: image records, tflite jobs, scoped requirements and
per-format tolerances, tag-set labels, the tflite consumer's contract behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfinterop.consumers import ALL_CONSUMERS, PNG_INPUT, by_name
from tfinterop.contract import plan
from tfinterop.fixtures import Tolerance, fixture, require, xfail
from tfinterop.manifest import Case, Manifest, TensorEntry
from tfinterop.pipeline.cases import cases_from_manifest, cell_expectation
from tfinterop.pipeline.plan import build_plan


def test_image_record_round_trips_and_is_an_input() -> None:
    text = (
        "tfinterop-plan\t1\njob\tj\nmodel\tm\nformat\tsaved_model\n"
        "image\timage\tserving_default_image:0\t/x/a.png\ninput\tk\t-\tk.npy\n"
        "output\ty\t-\ty.npy\nend\n"
    )
    parsed = plan.parse(text)
    job = parsed.jobs[0]
    assert job.problem is None
    assert [(i.key, i.image) for i in job.inputs] == [("image", True), ("k", False)]
    assert plan.render(parsed).splitlines()[6] == "image\timage\tserving_default_image:0\t/x/a.png"
    assert plan.parse(plan.render(parsed)) == parsed


def test_tflite_jobs_take_no_tags_or_signature() -> None:
    body = "job\tj\nmodel\tm.tflite\nformat\ttflite\n{extra}output\ty\t-\ty.npy\nend\n"
    ok = plan.parse("tfinterop-plan\t1\n" + body.format(extra=""))
    assert ok.jobs[0].problem is None and ok.jobs[0].format == "tflite"
    bad = plan.parse("tfinterop-plan\t1\n" + body.format(extra="signature\ts\n"))
    assert "not tflite" in (bad.jobs[0].problem or "")
    rendered = plan.render(ok)
    assert "signature" not in rendered and "tags" not in rendered


def _manifest(tmp_path: Path, cases: list[Case]) -> Manifest:
    return Manifest(
        fixture="probe", cache_key="k", tf_version="2.21.0", keras_version="3", seed=1,
        environment={}, tolerance={"atol": 0, "rtol": 0}, output_tolerances={}, cases=cases,
        artifacts={}, export_seconds=0.0, directory=tmp_path,
    )  # fmt: skip


def _entry(key: str, image: str = "") -> TensorEntry:
    return TensorEntry(key, f"{key}:0", "float32", [1], f"inputs/s/{key}.npy", image=image)


@fixture(
    "probe",
    seed=1,
    tolerance=Tolerance(atol=0.0, rtol=0.0),
    tolerances={
        "y": Tolerance(atol=1e-3),
        "tflite:*": Tolerance(atol=1e-5),
        "tflite:y": Tolerance(atol=1e-2),
    },
    requires=[require("non_utf8_strings", "examples are binary", signature="regress*")],
    expect=[xfail("declared", consumer="c", format="saved_model", signature="predict@serve,gpu")],
)
def probe(ctx):  # never built: only its declarations are used
    raise AssertionError


def test_tolerances_most_specific_first() -> None:
    assert probe.tolerance_for("y", "tflite").atol == 1e-2
    assert probe.tolerance_for("z", "tflite").atol == 1e-5
    assert probe.tolerance_for("y", "frozen").atol == 1e-3
    assert probe.tolerance_for("z", "frozen").atol == 0.0
    assert probe.tolerance_for("y").atol == 1e-3


def test_scoped_requirements_and_tag_set_labels(tmp_path: Path) -> None:
    cases = [
        Case("saved_model", sig, "saved_model", [_entry("x")], [_entry("y")], tags=tags)
        for sig in ("predict", "regress")
        for tags in (["serve"], ["serve", "gpu"])
    ]
    refs = cases_from_manifest(probe, _manifest(tmp_path, cases))
    assert [r.label for r in refs] == [
        "predict", "predict@serve,gpu", "regress", "regress@serve,gpu",
    ]  # fmt: skip
    assert len({r.job_id for r in refs}) == 4
    rust, c = by_name(["rust", "c"])
    reasons = {r.label: cell_expectation(rust, r) for r in refs}
    assert reasons["predict"] is None and reasons["predict@serve,gpu"] is None
    for label in ("regress", "regress@serve,gpu"):
        assert reasons[label].kind == "xfail"  # type: ignore[union-attr]
        assert "lacks non_utf8_strings: examples are binary" in reasons[label].reason  # type: ignore[union-attr]
    assert cell_expectation(c, refs[2]) is None  # c has non_utf8_strings
    declared = cell_expectation(c, refs[1])
    assert declared is not None and declared.reason == "declared"
    assert cell_expectation(c, refs[0]) is None


def test_build_plan_sends_images_only_to_png_consumers(tmp_path: Path) -> None:
    case = Case(
        "saved_model", "rgb", "saved_model",
        [_entry("image", image="inputs/rgb/image.png")], [_entry("y")], tags=["serve"],
    )  # fmt: skip
    refs = cases_from_manifest(probe, _manifest(tmp_path, [case]))
    sent = {}
    for consumer in ALL_CONSUMERS:
        if not consumer.supports("saved_model"):
            continue
        job = build_plan(
            consumer, refs, tmp_path / consumer.name, warmup=0, repeat=1, threads=(0, 0)
        ).jobs[0]
        sent[consumer.name] = (job.inputs[0].image, Path(job.inputs[0].file).suffix)
        assert sent[consumer.name] == (
            (True, ".png") if consumer.supports(PNG_INPUT) else (False, ".npy")
        ), consumer.name
    assert sent["c"] == (False, ".npy") and sent["rust"] == (True, ".png")


def test_tflite_consumer_reports_version_and_job_errors(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "tfinterop.consumers.runners.tflite_runner"]
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=120)
    record = json.loads(version.stdout)
    assert record["name"] == "tflite" and record["contract"] == 1 and record["binding"]
    np.save(tmp_path / "x.npy", np.zeros(3, np.float32))
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    text = (
        "tfinterop-plan\t1\n"
        f"job\tmissing\nmodel\t{tmp_path / 'none.tflite'}\nformat\ttflite\n"
        f"input\tx\t-\t{tmp_path / 'x.npy'}\noutput\ty\t-\t{tmp_path / 'y.npy'}\nend\n"
        f"job\tgarbage\nmodel\t{tmp_path / 'bad.tflite'}\nformat\ttflite\n"
        f"output\ty\t-\t{tmp_path / 'y2.npy'}\nend\n"
        f"job\tfrozen\nmodel\t{tmp_path / 'm.pb'}\nformat\tfrozen\n"
        f"output\ty\t-\t{tmp_path / 'y3.npy'}\nend\n"
    )
    (tmp_path / "plan.tsv").write_text(text)
    done = subprocess.run(
        [*command, "--plan", str(tmp_path / "plan.tsv"), "--results", str(tmp_path / "r.jsonl")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    jobs = {
        r["id"]: r
        for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())
        if r["record"] == "job"
    }
    assert {j["status"] for j in jobs.values()} == {"error"}
    assert {j["stage"] for j in jobs.values()} == {"load"}
    assert "loads tflite models, not frozen" in jobs["frozen"]["error"]


@pytest.mark.parametrize("name", ["", "_hidden", "a/b", "x" * 70])
def test_new_fixture_refuses_bad_names(name: str, tmp_path: Path) -> None:
    from tfinterop.errors import UserError
    from tfinterop.scaffold import new_fixture

    with pytest.raises(UserError):
        new_fixture(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_new_fixture_does_not_overwrite(tmp_path: Path) -> None:
    from tfinterop.errors import UserError
    from tfinterop.scaffold import new_fixture

    path = new_fixture("mine", tmp_path)
    text = path.read_text()
    path.write_text(text + "# edited\n")
    with pytest.raises(UserError, match="already exists"):
        new_fixture("mine", tmp_path)
    assert path.read_text().endswith("# edited\n")
    assert new_fixture("mine", tmp_path, force=True).read_text() == text
