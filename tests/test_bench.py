"""`tfinterop bench`: ratios against the targets, the floor, the committed results, a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from tfinterop.bench import (
    BenchResult,
    BenchRow,
    floor_estimate,
    interop_lines,
    ratios,
    write_benchmarks,
)


def row(consumer: str, p50_ms: float, **extra: float) -> BenchRow:
    values = {"load_s": 0.5, "first_run_s": 0.1, "startup_s": 0.2, "p90_s": p50_ms * 1.2e-3}
    values.update(extra)
    return BenchRow(
        "m", "frozen", "serving_default", consumer, "pass", p50_s=p50_ms * 1e-3, **values
    )


def test_ratios_flag_misses_against_the_issue_targets() -> None:
    found = {r.name: r for r in ratios([row("python", 10.0), row("c", 8.0), row("rust", 8.8)])}
    assert found["rust/c"].value == pytest.approx(1.1) and found["rust/c"].met is False
    assert "rust p50 is 800 µs above c" in found["rust/c"].explanation
    assert found["c/python"].value == pytest.approx(0.8) and found["c/python"].met is True
    assert found["rust/python"].target is None and found["rust/python"].met is None


def test_a_missing_consumer_gives_no_ratio() -> None:
    found = {r.name: r for r in ratios([row("c", 8.0), row("rust", 8.0)])}
    assert found["c/python"].value is None and found["c/python"].met is None


def test_floor_counts_one_start_up_per_consumer_and_every_runs_work() -> None:
    rows = [row("c", 10.0), row("c", 20.0, startup_s=0.1), row("rust", 10.0)]
    # start-ups: c min(0.2, 0.1) + rust 0.2; work per row: load 0.5 + first 0.1 + 4 runs.
    expected = 0.1 + 0.2 + 3 * 0.6 + 4 * (0.010 + 0.020 + 0.010)
    assert floor_estimate(rows, interop_repeat=3, interop_warmup=1) == pytest.approx(expected)
    failed = BenchRow("m", "frozen", "s", "python", "error")
    assert floor_estimate([*rows, failed], 3, 1) == pytest.approx(expected)


def test_committed_results_name_the_machine_and_every_miss(tmp_path: Path) -> None:
    rows = [row("python", 10.0), row("c", 8.0), row("rust", 8.8)]
    interop = {
        "warm_s": 18.0, "floor_s": 24.0, "ratio": 0.75, "target_ratio": 1.5, "target_s": 20.0,
        "warm_split": {"export_s": 0.1, "run_and_compare_s": 17.0},
    }  # fmt: skip
    result = BenchResult(
        rows,
        ratios(rows),
        {"repeat": 100},
        {"cpu": "Test CPU", "cores": 2, "memory_gb": 24, "platform": "Linux", "python": "3.11"},
        interop,
    )
    write_benchmarks(result, tmp_path)
    text = (tmp_path / "RESULTS.md").read_text()
    assert "Machine: Test CPU, 2 cores, 24 GiB" in text
    assert "| m | frozen | rust/c | 1.100 | 1.05 | **no** | rust p50 is 800 µs above c" in text
    assert "Warm interop on the default fixture set: 18.0 s (export 0.1 s, run_and_compare" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["interop"]["warm_s"] == 18.0 and len(saved["rows"]) == 3
    assert interop_lines({}) == []


def test_bench_runs_the_native_consumers_on_a_fixture(manifests, build_dir, tmp_path) -> None:
    report = tmp_path / "bench.json"
    result = run_cli(
        "bench", "-f", "linear", "-c", "c", "-c", "rust", "--repeat", "5", "--warmup", "1",
        "--build-dir", str(build_dir), "--no-build", "--no-interop-timing",
        "--no-profile-misses", "--json", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(report.read_text())
    measured = [r for r in doc["rows"] if r["status"] == "pass"]
    # linear has frozen and saved_model (tflite cells are skips for c and rust).
    assert {(r["format"], r["consumer"]) for r in measured} == {
        ("frozen", "c"), ("frozen", "rust"), ("saved_model", "c"), ("saved_model", "rust"),
    }  # fmt: skip
    for r in measured:
        assert r["runs"] == 5 and 0 < r["p50_s"] <= r["p90_s"] and r["load_s"] > 0
        assert r["max_rss_mb"] > 10
    assert doc["settings"]["TF_ENABLE_ONEDNN_OPTS"] in ("0", "1")
    assert {r["name"] for r in doc["ratios"]} == {"rust/c", "c/python", "rust/python"}


def test_profiles_too_slow_for_callgrind_are_skipped_and_said(tmp_path: Path) -> None:
    from tfinterop import consumers
    from tfinterop.bench import explain_with_profiles
    from tfinterop.pipeline import RunSettings

    rows = [row("c", 80.0, first_run_s=1.5), row("rust", 95.0, first_run_s=1.5)]
    found = ratios(rows)
    logged: list[str] = []
    explain_with_profiles(
        found, rows, {("m", "frozen", "serving_default"): None},  # type: ignore[dict-item]
        {c.name: c for c in consumers.by_name(["c", "rust"])},
        RunSettings(build_dir=tmp_path), tmp_path, logged.append, profile_budget_s=60,
    )  # fmt: skip
    miss = next(r for r in found if r.name == "rust/c")
    assert (
        "no instruction profile" in miss.explanation
        and "skipped: callgrind would take" in miss.explanation
    )
    assert not logged  # nothing was started
