"""`tfinterop bench`'s check vs `saved_model_cli run` timing (python/tfinterop/bench_check.py).

Needs the built consumers (`tfinterop build`), like tests/check/test_check.py. Times nothing
against a target: it checks that both commands really run the case, side by side.
"""

from __future__ import annotations

import pytest

from tfinterop.bench.check_timing import check_line, commands, pick_case, time_check
from tfinterop.pipeline.cases import cases_from_manifest
from tfinterop.tfenv import DEFAULT_CONSUMER_ENV


@pytest.fixture(scope="module")
def refs(manifests, project_fixtures):
    return [
        ref
        for name in ("linear", "mobilenet_v3")
        for ref in cases_from_manifest(project_fixtures[name], manifests[name])
    ]


def test_picks_mobilenet_saved_model_else_a_saved_model(refs) -> None:
    ref = pick_case(refs)
    assert (ref.fixture, ref.case.format, ref.label) == (
        "mobilenet_v3",
        "saved_model",
        "serving_default",
    )
    linear = pick_case([r for r in refs if r.fixture == "linear"])
    assert (linear.fixture, linear.case.format) == ("linear", "saved_model")
    assert pick_case([r for r in refs if r.case.format == "frozen"]) is None


@pytest.mark.e2e
def test_both_commands_run_the_same_case(refs, build_dir, tmp_path) -> None:
    linear = [r for r in refs if r.fixture == "linear"]
    figures = time_check(linear, build_dir, tmp_path, dict(DEFAULT_CONSUMER_ENV), runs=1)
    assert figures["failures"] == [] and figures["all_compared"], figures
    assert figures["compared"] == dict.fromkeys(("python", "rust", "c"), "pass")
    assert figures["ratio"] == figures["check"]["median"] / figures["smc"]["median"]
    assert figures["check_cpu_s"][0] > 0 and figures["smc_cpu_s"][0] > 0
    for entry in pick_case(linear).case.outputs:  # saved_model_cli really ran the case
        assert (tmp_path / "smc" / f"{entry.key}.npy").exists()
    line = check_line(figures)
    assert f"ratio {figures['ratio']:.2f}" in line and "check compared python pass" in line
    check, smc = commands(pick_case(linear), build_dir, tmp_path / "again")
    assert "--no-build" in check and smc[1:3] == ["run", "--dir"]
