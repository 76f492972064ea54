"""Callgrind parsing and per-run attribution behind `tfinterop bench`'s miss explanations."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tfinterop import consumers
from tfinterop.bench.profile import (
    POOL_SPIN,
    SteadyProfile,
    compare_profiles,
    object_label,
    parse_callgrind,
    profile_steady_run,
    steady_profile,
)
from tfinterop.pipeline.settings import RunSettings


def callgrind_text(consumer_cost: int, tf_cost: int, spin: int, call_cost: int = 999) -> str:
    """A callgrind file in valgrind 3.19's layout: compressed names, relative positions and
    a call whose inclusive cost line must not count as the caller's own."""
    return f"""# callgrind format
version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 0

ob=(1) /opt/bin/consumer
fl=(1) main.c
fn=(1) run_steady
10 {consumer_cost}
+2 1
cob=(2) /site-packages/tensorflow/libtensorflow_framework.so.2
cfi=(2) ???
cfn=(2) TF_SessionRun
calls=3 0
* {call_cost}
ob=(2)
fl=(2)
fn=(2)
0 {tf_cost}
fn=(3) Eigen::ThreadPoolTempl<tsl::thread::EigenEnvironment>::GlobalSteal()
0 {spin}
totals: 0
"""


def test_parse_counts_exclusive_costs_and_skips_call_lines() -> None:
    costs = parse_callgrind(callgrind_text(100, 50, 7))
    assert costs.by_object == {
        "/opt/bin/consumer": 101,
        "/site-packages/tensorflow/libtensorflow_framework.so.2": 57,
    }
    assert costs.total == 158  # the call's inclusive 999 is not the caller's own cost
    assert costs.by_function[("/opt/bin/consumer", "run_steady")] == 101


def test_parse_refuses_other_first_event() -> None:
    with pytest.raises(ValueError, match="expected Ir"):
        parse_callgrind("events: Dr Ir\nfn=(1) f\n0 1 2\n")


def test_object_label_drops_versions() -> None:
    assert object_label("/x/libtensorflow_cc.so.2") == "libtensorflow_cc.so"
    assert object_label("/lib/libc.so.6") == "libc.so"
    assert object_label("/opt/bin/consumer") == "consumer"


def test_steady_profile_is_the_per_run_difference_without_spin() -> None:
    low = parse_callgrind(callgrind_text(1_000, 5_000, 300))
    high = parse_callgrind(callgrind_text(1_000 + 10 * 200, 5_000 + 10 * 3_000, 300 + 10 * 900))
    profile = steady_profile("c", low, high, (5, 15))
    assert profile.per_run == pytest.approx(3_200)  # 200 consumer + 3000 TF, spin excluded
    assert profile.by_object["consumer"] == pytest.approx(200)
    assert profile.by_object["libtensorflow_framework.so"] == pytest.approx(3_000)
    assert profile.by_object[POOL_SPIN] == pytest.approx(900)
    assert all("GlobalSteal" not in name for _, name, _ in profile.top_functions)


def test_compare_names_where_the_extra_instructions_are() -> None:
    base_low = parse_callgrind(callgrind_text(0, 0, 0))
    fast = steady_profile("c", base_low, parse_callgrind(callgrind_text(100, 4_000, 0)), (0, 1))
    slow = steady_profile("rust", base_low, parse_callgrind(callgrind_text(900, 4_000, 0)), (0, 1))
    text = compare_profiles(slow, fast)
    assert "rust executes 1.20x the instructions per run" in text
    assert "the extra is in consumer +0.8k" in text
    same = steady_profile("rust", base_low, parse_callgrind(callgrind_text(110, 4_000, 50)), (0, 1))
    # 50 instructions of spin against none: under 5% of the work, so it does not count.
    assert "noise: instruction counts agree" in compare_profiles(same, fast, within_spread=True)


def test_interpreted_consumers_are_not_profiled(tmp_path: Path) -> None:
    python = consumers.by_name(["python"])[0]
    profile = profile_steady_run(python, None, RunSettings(build_dir=tmp_path), tmp_path)  # type: ignore[arg-type]
    assert profile.error.startswith("not profiled") and "no profile" in profile.summary()


@pytest.fixture(scope="session")
def valgrind() -> str:
    """Skips without valgrind, except under CI (``CI`` set), which is meant to run the test:
    it fails there. Session-scoped, so it is checked before the exports are set up."""
    found = shutil.which("valgrind")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("valgrind is not installed; CI must install it (see .ci/run)")
    pytest.skip("valgrind is not installed")


def test_profile_of_the_c_consumer_on_a_real_graph(
    valgrind: str, project_fixtures, manifests, build_dir: Path, tmp_path: Path
) -> None:
    """End to end: callgrind on the C consumer running the linear frozen graph."""
    from tfinterop.pipeline.cases import cases_from_manifest
    from tfinterop.tfenv import DEFAULT_CONSUMER_ENV

    refs = cases_from_manifest(project_fixtures["linear"], manifests["linear"])
    ref = next(r for r in refs if r.case.format == "frozen")
    settings = RunSettings(build_dir=build_dir, environment=dict(DEFAULT_CONSUMER_ENV))
    c = consumers.by_name(["c"])[0]
    # A span of 200 runs, as the bench uses for µs-scale graphs: over 10 runs, thread-pool
    # scheduling noise (thousands of instructions per process) swamped the per-run figure.
    profile = profile_steady_run(c, ref, settings, tmp_path, runs=(5, 205))
    assert not profile.error, profile.error
    # A 3-element MatMul+Add through TF_SessionRun: tens of thousands of instructions per run,
    # well under a million.
    assert 5_000 < profile.per_run < 1_000_000
    # TensorFlow's executor does the run: ~16k instructions/run inside libtensorflow, stable
    # within 5% here. Its share is not asserted: thread-local lookups in ld-linux (10k-30k/run)
    # vary with thread scheduling.
    tensorflow = sum(v for k, v in profile.by_object.items() if "tensorflow" in k)
    assert tensorflow > 5_000, profile.by_object


def profile(consumer: str, work_k: float, spin_k: float) -> SteadyProfile:
    """A hand-made per-run profile: ``work_k`` thousand instructions, ``spin_k`` of spin."""
    by_object = {"libtensorflow_cc.so": work_k * 1e3, POOL_SPIN: spin_k * 1e3}
    return SteadyProfile(consumer, work_k * 1e3, by_object, [], (5, 205))


def test_the_slower_side_executing_fewer_instructions_is_unexplained() -> None:
    # pow_module SavedModel: rust slower yet 15% fewer instructions per run.
    text = compare_profiles(profile("rust", 85.9, 226), profile("c", 100.5, 230))
    assert "noise" not in text
    assert "unexplained: rust is slower yet executes 15% fewer instructions per run" in text


def test_a_large_spin_difference_is_scheduling_not_noise() -> None:
    # Work agrees within 5%; rust's idle pools spin ~3x c's.
    text = compare_profiles(profile("rust", 51, 461), profile("c", 50, 156), within_spread=True)
    assert "noise" not in text
    assert "scheduling: work agrees within 5%" in text and "spin is 2.96x c's" in text


def test_the_faster_side_spinning_more_is_unexplained() -> None:
    text = compare_profiles(profile("rust", 51, 150), profile("c", 50, 450), within_spread=True)
    assert "noise" not in text and "unexplained" in text and "c spins 3.00x as much" in text


def test_noise_needs_agreeing_counts_and_a_gap_within_the_spread() -> None:
    slow, fast = profile("rust", 51, 240), profile("c", 50, 230)
    assert "noise: instruction counts agree" in compare_profiles(slow, fast, within_spread=True)
    # The same counts with a wall-clock gap beyond the measured spread: not noise.
    beyond = compare_profiles(slow, fast, within_spread=False)
    assert "noise" not in beyond and "unexplained" in beyond and "beyond" in beyond


def test_more_work_says_how_much_of_the_wall_clock_gap_it_covers() -> None:
    text = compare_profiles(profile("rust", 67.6, 461), profile("c", 49.9, 156), wall_ratio=2.7)
    assert "rust executes 1.35x the instructions per run" in text
    assert "the wall-clock ratio, 2.70x, is larger: the rest is unexplained" in text
