"""Error paths of the run and compare stages, with consumers that misbehave on purpose."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tfinterop import tensors
from tfinterop.consumers import FROZEN, SAVED_MODEL, Consumer
from tfinterop.contract.records import JobRecord, parse_line
from tfinterop.fixtures import Tolerance
from tfinterop.manifest import Case, TensorEntry
from tfinterop.pipeline.cases import CaseRef, cases_from_manifest
from tfinterop.pipeline.compare import compare_job
from tfinterop.pipeline.run import run_consumers
from tfinterop.pipeline.settings import RunSettings

FAKE = Path(__file__).resolve().parents[1].joinpath("fake_consumer.py")


def run_fake(
    fake_consumer, mode: str, project_fixtures, manifests, tmp_path: Path, timeout_s: float = 120.0
):
    consumer = fake_consumer(f"fake-{mode}", frozenset({FROZEN, SAVED_MODEL}), mode)
    # linear's tflite case too: the fake (like the Python consumer it wraps) does not load
    # tflite, so that pair is no cell at all (not a skip) and no job in its plan.
    refs = cases_from_manifest(project_fixtures["linear"], manifests["linear"])
    assert "tflite" in {ref.case.format for ref in refs}
    settings = RunSettings(build_dir=tmp_path, timeout_s=timeout_s, repeat=1, warmup=0)
    cells, _, _ = run_consumers([consumer], refs, settings)
    assert [c.format for c in cells] == ["frozen", "saved_model"]
    return cells


def test_perturbed_output_is_a_failure_with_the_numbers(
    project_fixtures, manifests, tmp_path, fake_consumer
):
    cells = run_fake(fake_consumer, "perturb", project_fixtures, manifests, tmp_path)
    for cell in cells:
        assert cell.status == "fail"
        assert cell.message.startswith("output y: 1/64 elements differ beyond atol=0 rtol=0")
        assert "at (3,)" in cell.message and "would pass with atol>=" in cell.message
        assert cell.max_abs == pytest.approx(1e-3, rel=0.1)


@pytest.mark.parametrize(
    ("mode", "status", "expected"),
    [
        # Writing float64 for a float32 graph output breaks the contract: an error, not a fail.
        ("wrong_dtype", "error", "declares dtype float64, but the graph's output is float32"),
        ("wrong_shape", "fail", "shape (63,) != expected (64,)"),
    ],
)
def test_wrong_dtype_or_shape_is_named(
    mode, status, expected, project_fixtures, manifests, tmp_path, fake_consumer
):
    for cell in run_fake(fake_consumer, mode, project_fixtures, manifests, tmp_path):
        assert cell.status == status and expected in cell.message


def test_consumer_exiting_nonzero_shows_command_status_and_stderr(
    project_fixtures, manifests, tmp_path, fake_consumer
):
    for cell in run_fake(fake_consumer, "exit3", project_fixtures, manifests, tmp_path):
        assert cell.status == "error"
        assert "fake_consumer.py exit3 --plan" in cell.message
        assert "exited with status 3" in cell.message
        assert "stderr tail: fake consumer: refusing to work" in cell.message


def test_consumer_killed_by_signal_is_reported(
    project_fixtures, manifests, tmp_path, fake_consumer
):
    for cell in run_fake(fake_consumer, "crash", project_fixtures, manifests, tmp_path):
        assert cell.status == "error" and "was killed by SIGSEGV" in cell.message
        assert "about to crash" in cell.message


def test_hanging_consumer_times_out_and_the_run_goes_on(
    project_fixtures, manifests, tmp_path, fake_consumer
):
    cells = run_fake(fake_consumer, "hang", project_fixtures, manifests, tmp_path, timeout_s=2.0)
    for cell in cells:
        assert cell.status == "error" and "timed out after 2s and was killed" in cell.message
        assert "fake consumer: hanging" in cell.message


def test_garbage_results_break_the_contract_visibly(
    project_fixtures, manifests, tmp_path, fake_consumer
):
    for cell in run_fake(fake_consumer, "garbage", project_fixtures, manifests, tmp_path):
        assert cell.status == "error"
        assert "broke the contract: results line 1 is not a contract record" in cell.message


def test_missing_consumer_binary_is_an_error_row(project_fixtures, manifests, tmp_path):
    from tfinterop.consumers import CConsumer

    consumer = CConsumer("c", "C", frozenset({FROZEN, SAVED_MODEL}))
    refs = cases_from_manifest(project_fixtures["linear"], manifests["linear"])
    cells, _, _ = run_consumers([consumer], refs, RunSettings(build_dir=tmp_path / "nothing-built"))
    # One error per case C loads (an empty list would pass `all()`); tflite is no cell.
    assert [c.format for c in cells] == ["frozen", "saved_model"]
    assert all(
        c.status == "error" and "is not built (run `tfinterop build`)" in c.message for c in cells
    )


@dataclass(frozen=True)
class BrokenBuildConsumer(Consumer):
    """A compiled consumer whose build fails, as a missing compiler or a syntax error would."""

    needs_build = True

    def build(self, build_dir: Path, *, force: bool = False):
        from tfinterop.consumers import BuildError

        raise BuildError(f"`cc {self.name}.c` exited with status 1; stderr tail: syntax error")

    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, str(FAKE), "perturb"]


def test_a_failed_build_is_reported_and_the_other_consumers_still_build(
    tmp_path: Path, fake_consumer
) -> None:
    from tfinterop.consumers import BuildOutcome
    from tfinterop.pipeline.build import build_each

    class Builds(BrokenBuildConsumer):
        def build(self, build_dir: Path, *, force: bool = False):
            return BuildOutcome(self.name, True, str(build_dir / self.name), 0.5)

    broken = BrokenBuildConsumer("broken", "test double", frozenset({FROZEN}))
    fine = Builds("fine", "test double", frozenset({FROZEN}))
    interpreted = fake_consumer("interpreted", frozenset({FROZEN}))
    started: list[str] = []
    outcomes = list(build_each(tmp_path, [broken, interpreted, fine], on_start=started.append))
    assert started == ["broken", "fine"]
    assert [(o.consumer, o.built) for o in outcomes] == [("broken", False), ("fine", True)]
    assert outcomes[0].error == "`cc broken.c` exited with status 1; stderr tail: syntax error"
    assert not outcomes[1].error


def test_a_consumer_named_twice_runs_once() -> None:
    from tfinterop.consumers import by_name

    assert [c.name for c in by_name(["c", "python", "c"])] == ["c", "python"]


def _case_ref(directory: Path, dtype: str, expected: np.ndarray) -> CaseRef:
    """One frozen case with one output ``y`` whose reference is ``expected``."""
    tensors.write_tensor(directory / "y.npy", expected)
    entry = TensorEntry("y", "Identity:0", dtype, list(expected.shape), "y.npy")
    case = Case("frozen", "serving_default", "m.pb", [], [entry])
    return CaseRef(
        "fx", case, directory, lambda key, runtime: Tolerance(0.0, 0.0), lambda *a: None, {}
    )


def _record(path: Path, dtype: str) -> JobRecord:
    """A job record as a consumer writes it (the contract's JSON), parsed as the run does."""
    output = {"key": "y", "tensor": "Identity:0", "dtype": dtype, "shape": [3], "file": str(path)}
    line = {"record": "job", "id": "fx/frozen/serving_default", "status": "ok", "outputs": [output]}
    record = parse_line(json.dumps(line))
    assert isinstance(record, JobRecord)
    return record


@pytest.mark.parametrize(
    ("declared", "written", "rule"),
    [
        # Declared float64, the file holds the reference's float32: used to pass unnoticed.
        ("float64", np.float32, "declares dtype float64, but the graph's output is float32"),
        # Declared as the reference, but the file holds float64: was a plain value failure.
        ("float32", np.float64, "declares dtype float32, but the file holds float64"),
    ],
)
def test_declared_dtype_must_be_the_references_and_the_files(
    tmp_path: Path, declared: str, written: type, rule: str
) -> None:
    values = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    ref = _case_ref(tmp_path, "float32", values)
    (tmp_path / "out").mkdir()
    tensors.write_tensor(tmp_path / "out" / "y.npy", values.astype(written))
    cell = compare_job(ref, "fake", _record(tmp_path / "out" / "y.npy", declared), None)
    assert cell.status == "error", cell.message
    assert cell.message.startswith("output y: fake broke the contract") and rule in cell.message


def test_string_output_declared_numeric_is_a_contract_error(tmp_path: Path) -> None:
    ref = _case_ref(tmp_path, "string", np.array([b"a", b"bc", b""], dtype=object))
    (tmp_path / "out").mkdir()
    np.save(tmp_path / "out" / "y.npy", np.array([1, 2, 0], dtype="<i8"))  # lengths, no bytes
    cell = compare_job(ref, "fake", _record(tmp_path / "out" / "y.npy", "int64"), None)
    assert cell.status == "error"
    assert "declares dtype int64, but the graph's output is string" in cell.message


ELSEWHERE_CONSUMER = """
import json, shutil, sys
from pathlib import Path

import numpy as np

from tfinterop.consumers.runners.python_runner import main

argv = sys.argv[1:]
results = Path(argv[argv.index("--results") + 1])
status = main(argv)
records = [json.loads(line) for line in results.read_text().splitlines()]
for record in records:
    for output in record.get("outputs", []):
        # The right values go elsewhere; the plan's file gets zeros.
        moved = output["file"] + ".elsewhere.npy"
        shutil.copy(output["file"], moved)
        np.save(output["file"], np.zeros_like(np.load(output["file"])))
        output["file"] = moved
results.write_text("".join(json.dumps(r) + "\\n" for r in records))
raise SystemExit(status)
"""


@dataclass(frozen=True)
class ScriptConsumer(Consumer):
    script: str = ""

    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, self.script]


def test_output_file_other_than_the_plans_is_a_contract_error(
    project_fixtures, manifests, tmp_path
):
    script = tmp_path / "elsewhere_consumer.py"
    script.write_text(ELSEWHERE_CONSUMER)
    consumer = ScriptConsumer("elsewhere", "test double", frozenset({FROZEN}), str(script))
    refs = [
        ref
        for ref in cases_from_manifest(project_fixtures["linear"], manifests["linear"])
        if ref.case.format == "frozen"
    ]
    cells, _, _ = run_consumers([consumer], refs, RunSettings(build_dir=tmp_path, repeat=1))
    [cell] = cells
    assert cell.status == "error", cell.message
    assert cell.message.startswith("output y: elsewhere broke the contract")
    assert ".elsewhere.npy" in cell.message and "the plan asked for" in cell.message
