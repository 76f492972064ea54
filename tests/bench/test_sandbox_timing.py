"""bench's sandbox timing (bench/sandbox_timing.py): real plain and sandboxed processes of one
consumer, paired, recorded in the result JSON and the console line SANDBOX.md keeps."""

from __future__ import annotations

import json

import pytest

from tfinterop import sandbox

pytestmark = pytest.mark.skipif(
    sandbox.unavailable() is not None, reason=f"no sandbox here: {sandbox.unavailable()}"
)


def test_bench_times_sandboxed_against_plain_processes(
    manifests, build_dir, tmp_path, run_cli
) -> None:
    report = tmp_path / "bench.json"
    result = run_cli(
        "bench", "-f", "linear", "-c", "c", "--repeat", "1", "--warmup", "0",
        "--build-dir", str(build_dir), "--no-build", "--no-interop-timing",
        "--no-check-timing", "--no-runtime-timing", "--no-locate-timing",
        "--no-profile-misses", "--gap-processes", "0", "--sandbox-pairs", "2",
        "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(report.read_text())["interop"]["sandbox"]
    probed = sandbox.probe().tool
    assert probed is not None and figures["tool"] == f"{probed.name} {probed.version}"
    assert figures["case"].startswith("linear/frozen/") and figures["pairs"] == 2
    assert figures["limits"]["memory_mib"] > 0
    measured = figures["consumers"]["c"]
    assert "error" not in measured, measured
    # Every figure is a pair difference of two real processes, as many as were asked for.
    assert len(measured["start_added_s"]) == figures["start_pairs"]
    for kind in ("plain", "sandboxed"):
        assert len(measured["walls_s"][kind]) == len(measured["p50_s"][kind]) == 2
        assert all(wall > 0 for wall in measured["walls_s"][kind])
    assert len(measured["run_added_s"]) == len(measured["steady_added_s"]) == 2
    assert "The consumer sandbox" in result.stdout and "c: start" in result.stdout
