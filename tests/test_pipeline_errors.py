"""Error paths of the run and compare stages, with consumers that misbehave on purpose."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tfinterop.consumers import FROZEN, SAVED_MODEL, Consumer
from tfinterop.pipeline import RunSettings, cases_from_manifest, run_consumers

FAKE = Path(__file__).with_name("fake_consumer.py")


@dataclass(frozen=True)
class FakeConsumer(Consumer):
    mode: str = "perturb"

    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, str(FAKE), self.mode]


def run_fake(mode: str, project_fixtures, manifests, tmp_path: Path, timeout_s: float = 120.0):
    consumer = FakeConsumer(f"fake-{mode}", "test double", frozenset({FROZEN, SAVED_MODEL}), mode)
    refs = [
        ref
        for ref in cases_from_manifest(project_fixtures["linear"], manifests["linear"])
        if ref.case.format in ("frozen", "saved_model")  # the fake wraps the Python consumer
    ]
    settings = RunSettings(build_dir=tmp_path, timeout_s=timeout_s, repeat=1, warmup=0)
    cells, _ = run_consumers([consumer], refs, settings)
    assert [c.format for c in cells] == ["frozen", "saved_model"]
    return cells


def test_perturbed_output_is_a_failure_with_the_numbers(project_fixtures, manifests, tmp_path):
    cells = run_fake("perturb", project_fixtures, manifests, tmp_path)
    for cell in cells:
        assert cell.status == "fail"
        assert cell.message.startswith("output y: 1/64 elements differ beyond atol=0 rtol=0")
        assert "at (3,)" in cell.message and "would pass with atol>=" in cell.message
        assert cell.max_abs == pytest.approx(1e-3, rel=0.1)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("wrong_dtype", "dtype float64 != expected float32"),
        ("wrong_shape", "shape (63,) != expected (64,)"),
    ],
)
def test_wrong_dtype_or_shape_is_named(mode, expected, project_fixtures, manifests, tmp_path):
    for cell in run_fake(mode, project_fixtures, manifests, tmp_path):
        assert cell.status == "fail" and expected in cell.message


def test_consumer_exiting_nonzero_shows_command_status_and_stderr(
    project_fixtures, manifests, tmp_path
):
    for cell in run_fake("exit3", project_fixtures, manifests, tmp_path):
        assert cell.status == "error"
        assert "fake_consumer.py exit3 --plan" in cell.message
        assert "exited with status 3" in cell.message
        assert "stderr tail: fake consumer: refusing to work" in cell.message


def test_consumer_killed_by_signal_is_reported(project_fixtures, manifests, tmp_path):
    for cell in run_fake("crash", project_fixtures, manifests, tmp_path):
        assert cell.status == "error" and "was killed by SIGSEGV" in cell.message
        assert "about to crash" in cell.message


def test_hanging_consumer_times_out_and_the_run_goes_on(project_fixtures, manifests, tmp_path):
    cells = run_fake("hang", project_fixtures, manifests, tmp_path, timeout_s=2.0)
    for cell in cells:
        assert cell.status == "error" and "timed out after 2s and was killed" in cell.message
        assert "fake consumer: hanging" in cell.message


def test_garbage_results_break_the_contract_visibly(project_fixtures, manifests, tmp_path):
    for cell in run_fake("garbage", project_fixtures, manifests, tmp_path):
        assert cell.status == "error"
        assert "broke the contract: results line 1 is not a contract record" in cell.message


def test_missing_consumer_binary_is_an_error_row(project_fixtures, manifests, tmp_path):
    from tfinterop.consumers import CConsumer

    consumer = CConsumer("c", "C", frozenset({FROZEN, SAVED_MODEL}))
    refs = [
        ref
        for ref in cases_from_manifest(project_fixtures["linear"], manifests["linear"])
        if ref.case.format != "tflite"  # a format C does not load is a skip, not an error
    ]
    cells, _ = run_consumers([consumer], refs, RunSettings(build_dir=tmp_path / "nothing-built"))
    assert all(
        c.status == "error" and "is not built (run `tfinterop build`)" in c.message for c in cells
    )


@dataclass(frozen=True)
class BrokenBuildConsumer(Consumer):
    """A compiled consumer whose build fails, as a missing compiler or a syntax error would."""

    needs_build = True

    def build(self, build_dir: Path, *, force: bool = False):
        from tfinterop.build import BuildError

        raise BuildError(f"`cc {self.name}.c` exited with status 1; stderr tail: syntax error")

    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, str(FAKE), "perturb"]


def test_a_failed_build_is_reported_and_the_other_consumers_still_build(tmp_path: Path) -> None:
    from tfinterop.build import BuildOutcome, build_each

    class Builds(BrokenBuildConsumer):
        def build(self, build_dir: Path, *, force: bool = False):
            return BuildOutcome(self.name, True, str(build_dir / self.name), 0.5)

    broken = BrokenBuildConsumer("broken", "test double", frozenset({FROZEN}))
    fine = Builds("fine", "test double", frozenset({FROZEN}))
    interpreted = FakeConsumer("interpreted", "needs no build", frozenset({FROZEN}))
    started: list[str] = []
    outcomes = list(build_each(tmp_path, [broken, interpreted, fine], on_start=started.append))
    assert started == ["broken", "fine"]
    assert [(o.consumer, o.built) for o in outcomes] == [("broken", False), ("fine", True)]
    assert outcomes[0].error == "`cc broken.c` exited with status 1; stderr tail: syntax error"
    assert not outcomes[1].error


def test_a_consumer_named_twice_runs_once() -> None:
    from tfinterop.consumers import by_name

    assert [c.name for c in by_name(["c", "python", "c"])] == ["c", "python"]
