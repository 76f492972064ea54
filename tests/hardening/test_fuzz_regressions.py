"""The consumers' parsers without the fuzzers: C unit tests, every seed-corpus input and crash
reproducer replayed through the fuzz targets' checks (C under ASan/UBSan), and the Rust
parsers' tests and replays (`cargo test` of rust_consumer/fuzz, which needs no TensorFlow).
See docs/hardening.md.

Under CI (``CI`` set) a missing compiler, cargo or sanitizer runtime fails these tests: CI is
meant to run them (.ci/run and the workflow install the tools). Elsewhere they skip, or replay
without sanitizers with a warning."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import NoReturn

import pytest

from tfinterop.hardening import fuzz

ROOT = Path(__file__).resolve().parents[2]
C_DIR = ROOT / "c_consumer"
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
C_FLAGS = ["-std=c11", "-g", "-O1", "-Wall", "-Wextra", "-Werror", "-D_POSIX_C_SOURCE=200809L"]


def _unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool, except where CI is meant to run the test: fail there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it (see .ci/run)")
    pytest.skip(reason)


def _compiler() -> str:
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        _unavailable(f"no C compiler ({cc})")
    return cc


def _sanitizers(cc: str, tmp_path: Path) -> list[str]:
    """ASan+UBSan when this compiler links them (gcc needs libasan). Without them the replay
    still runs the property checks, but memory errors go unseen: a failure under CI, a
    warning elsewhere."""
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    result = subprocess.run(
        [cc, *SANITIZE, str(probe), "-o", str(tmp_path / "probe")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        return SANITIZE
    reason = f"{cc} cannot link ASan/UBSan ({result.stderr.strip()[-300:]})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install the runtimes (see .ci/run)")
    warnings.warn(f"{reason}: replaying without sanitizers", stacklevel=2)
    return []


def _build(tmp_path: Path, name: str, sources: list[Path]) -> Path:
    cc = _compiler()
    binary = tmp_path / name
    command = [
        cc,
        *C_FLAGS,
        *_sanitizers(cc, tmp_path),
        f"-I{C_DIR / 'src'}",
        *map(str, sources),
        "-o",
        str(binary),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return binary


def _inputs(target: str) -> list[Path]:
    dirs = [
        C_DIR / "fuzz" / "corpus" / target,
        C_DIR / "fuzz" / "regressions" / target,
        ROOT / "rust_consumer" / "fuzz" / "regressions" / target,
    ]
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir() if p.is_file())


def test_c_parser_unit_tests(tmp_path: Path) -> None:
    sources = [C_DIR / "tests" / "parser_tests.c"] + [
        C_DIR / "src" / s for s in ("npy.c", "plan.c", "strbuf.c", "dtypes.c")
    ]
    binary = _build(tmp_path, "parser_tests", sources)
    result = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr + result.stdout
    assert ", 0 failed" in result.stdout


@pytest.mark.parametrize("target", sorted(fuzz.C_SOURCES))
def test_c_fuzz_inputs_replay(tmp_path: Path, target: str) -> None:
    """Both languages' seeds and reproducers through the C target's property checks."""
    inputs = _inputs(target)
    assert len(inputs) >= 5, (
        f"seed corpus for {target} missing: python -m tfinterop.hardening.fuzz --write-seeds"
    )
    sources = [C_DIR / "fuzz" / "replay.c", C_DIR / "fuzz" / f"fuzz_{target}.c"] + [
        C_DIR / "src" / s for s in fuzz.C_SOURCES[target]
    ]
    binary = _build(tmp_path, f"replay_{target}", sources)
    result = subprocess.run(
        [str(binary), *map(str, inputs)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"replayed {len(inputs)} input(s)" in result.stdout


def test_rust_parsers_and_regressions() -> None:
    """plan.rs/npy.rs unit tests and the replay of corpora and reproducers (the first crash the
    Rust npy fuzzer found is in rust_consumer/fuzz/regressions/npy/)."""
    if not shutil.which("cargo"):
        _unavailable("cargo not installed")
    assert list((ROOT / "rust_consumer" / "fuzz" / "regressions" / "npy").iterdir())
    result = subprocess.run(
        [
            "cargo",
            "test",
            "--quiet",
            "--no-default-features",
            "--manifest-path",
            str(ROOT / "rust_consumer" / "fuzz" / "Cargo.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, CARGO_TARGET_DIR=str(ROOT / "build" / "fuzz" / "cargo-test")),
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    # The unit tests of both modules (4 plan, 3 npy) and both replays ran, not an empty set.
    passed = sum(int(n) for n in re.findall(r"test result: ok\. (\d+) passed", result.stdout))
    assert passed >= 9, result.stdout


def test_libfuzzer_statistics_are_read() -> None:
    output = (
        "#1024\tpulse  cov: 80 ft: 200 corp: 10/1Kb exec/s: 512 rss: 40Mb\n"
        "Done 123456 runs in 61 second(s)\n"
        "stat::number_of_executed_units: 123456\n"
        "stat::average_exec_per_sec:     2023\n"
    )
    assert fuzz._executions(output) == 123456
    assert fuzz._executions("#7\tINITED cov: 3\n#4096\tpulse cov: 9\n") == 4096
    assert fuzz._executions("no statistics") is None


@pytest.mark.parametrize("name", ["c", "rust"])
def test_repeat_beyond_the_first_timing_buffer(
    name: str, build_dir: Path, project_fixtures, tmp_path: Path, export_manifests
) -> None:
    """`repeat` is user data up to 2^32-1: the consumers grow their timing buffers as the runs
    happen instead of reserving all of it up front (which aborted the Rust consumer on
    allocation failure and made the C one fail a runnable job)."""
    from tfinterop import consumers
    from tfinterop.process import child_environment
    from tfinterop.tfenv import DEFAULT_CONSUMER_ENV

    (consumer,) = consumers.by_name([name])
    if consumer.missing(build_dir):
        pytest.fail(f"{name} consumer not built: {consumer.missing(build_dir)}")
    manifest = export_manifests(["linear"])["linear"]
    frozen = next(c for c in manifest.cases if c.format == "frozen")
    x, y = frozen.inputs[0], frozen.outputs[0]
    repeat = 65536 + 3  # the first buffer holds 65536 timings
    result = subprocess.run(
        [
            *consumer.command(build_dir),
            "--model", str(manifest.directory / frozen.model), "--format", "frozen",
            "--input", f"{x.tensor}={manifest.directory / x.file}",
            "--output", f"y@{y.tensor}={tmp_path / 'y.npy'}",
            "--repeat", str(repeat), "--results", str(tmp_path / "r.jsonl"),
        ],
        capture_output=True, text=True, timeout=300,
        env=child_environment(DEFAULT_CONSUMER_ENV),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    import json

    job = next(
        r
        for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())
        if r["record"] == "job"
    )
    assert job["status"] == "ok", job
    assert len(job["steady_s"]) == repeat


@pytest.mark.parametrize("name", ["c", "rust"])
def test_huge_repeat_still_reports_the_real_error(
    name: str, build_dir: Path, tmp_path: Path
) -> None:
    """With repeat 2^32-1 the job's own problem (a missing model) is reported; the C consumer
    used to reserve 32 GiB of timings first and report 'out of memory' instead."""
    import json

    from tfinterop import consumers
    from tfinterop.process import child_environment
    from tfinterop.tfenv import DEFAULT_CONSUMER_ENV

    (consumer,) = consumers.by_name([name])
    if consumer.missing(build_dir):
        pytest.fail(f"{name} consumer not built: {consumer.missing(build_dir)}")
    missing = tmp_path / "missing.pb"
    result = subprocess.run(
        [
            *consumer.command(build_dir),
            "--model", str(missing), "--format", "frozen",
            "--output", f"y@y:0={tmp_path / 'y.npy'}",
            "--repeat", str(2**32 - 1), "--results", str(tmp_path / "r.jsonl"),
        ],
        capture_output=True, text=True, timeout=120,
        env=child_environment(DEFAULT_CONSUMER_ENV),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    job = next(
        r
        for r in map(json.loads, (tmp_path / "r.jsonl").read_text().splitlines())
        if r["record"] == "job"
    )
    assert job["stage"] == "load" and str(missing) in job["error"], job
