"""The Rust consumer's code on two `tensorflow` crates: `rust` (crate 0.17) and `rust-0.21`
(crate 0.21), one source tree (rust_consumer/src) built from two manifests. Both link the same
libtensorflow, so on the default fixtures they must write the very same bytes; and each must
report the crate it was compiled with, the one its manifest's Cargo.lock pins."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tfinterop.consumers import by_name
from tfinterop.consumers.rust import RustConsumer, locked_crate
from tfinterop.contract.plan import Plan
from tfinterop.pipeline.interop import RunResult, run_interop
from tfinterop.pipeline.settings import FixtureSelection, InteropSettings, RunSettings
from tfinterop.tensors import BYTES_SUFFIX

ROOT = Path(__file__).resolve().parents[2]
CRATES = ["rust", "rust-0.21"]


def rust_consumers() -> list[RustConsumer]:
    found = by_name(CRATES)
    assert all(isinstance(c, RustConsumer) for c in found)
    return [c for c in found if isinstance(c, RustConsumer)]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def both(build_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """Both consumers over the default fixtures' plan, once (`--repeat 1`, no warm-up)."""
    consumers = rust_consumers()
    for consumer in consumers:
        missing = consumer.missing(build_dir)
        if missing:
            pytest.fail(f"{consumer.name} consumer not built: {missing}")
    settings = InteropSettings(
        run=RunSettings(
            build_dir=build_dir,
            repeat=1,
            warmup=0,
            runs_dir=tmp_path_factory.mktemp("crates-runs"),
        ),
        fixtures=FixtureSelection(ROOT / "fixtures"),
        consumers=list(consumers),
        build=False,
    )
    return run_interop(settings)


def test_each_consumer_is_its_own_build() -> None:
    """Two manifests, two binaries, two locked crates: not one program registered twice."""
    old, new = rust_consumers()
    assert old.manifest_dir() != new.manifest_dir() and old.binary != new.binary
    assert locked_crate(old.manifest_dir()) == "0.17.0"
    assert locked_crate(new.manifest_dir()) == "0.21.0"
    assert old.capabilities == new.capabilities, "declare a measured difference, with its reason"
    # Each reports its own crate in the report's toolchain record (which merges consumers').
    assert old.toolchain()[old.toolchain_key] == "0.17.0"
    assert new.toolchain()[new.toolchain_key] == "0.21.0"
    assert old.toolchain_key != new.toolchain_key


def test_each_reports_the_crate_it_was_built_with(both: RunResult, build_dir: Path) -> None:
    for consumer in rust_consumers():
        info = both.consumer_info[consumer.name]
        assert info["name"] == consumer.name
        assert info["binding"] == f"tensorflow crate {locked_crate(consumer.manifest_dir())}"
        assert info["tf_version"] == both.environment()["tensorflow"]["version"]
    old, new = (both.consumer_info[name]["binding"] for name in CRATES)
    assert old != new
    binaries = [Path(c.command(build_dir)[0]) for c in rust_consumers()]
    assert sha256(binaries[0]) != sha256(binaries[1])


def test_same_cells(both: RunResult) -> None:
    """Every cell has the same status under both crates, and none failed or errored."""
    by_consumer: dict[str, dict[tuple[str, str, str], str]] = {name: {} for name in CRATES}
    for cell in both.cells:
        by_consumer[cell.consumer][(cell.fixture, cell.format, cell.signature)] = cell.status
    old, new = (by_consumer[name] for name in CRATES)
    assert old and old == new
    assert {status for status in old.values()} <= {"pass", "xfail", "skip"}, old


def plan_outputs(plan: Plan | None) -> dict[tuple[str, str], Path]:
    assert plan is not None
    return {(job.id, out.key): Path(out.file) for job in plan.jobs for out in job.outputs}


def test_same_bytes(both: RunResult) -> None:
    """Every output file either consumer wrote (and a string output's .bytes) is identical
    byte for byte: the same libtensorflow ran the same graphs on the same inputs."""
    old_run, new_run = (both.runs[name] for name in CRATES)
    old, new = plan_outputs(old_run.plan), plan_outputs(new_run.plan)
    assert old.keys() == new.keys()
    ok_jobs = {job for job, record in old_run.jobs.items() if record.ok}
    assert ok_jobs == {job for job, record in new_run.jobs.items() if record.ok}
    compared = 0
    for (job, key), old_file in sorted(old.items()):
        new_file = new[job, key]
        if job not in ok_jobs:
            continue
        assert old_file != new_file
        strings = (Path(f"{old_file}{BYTES_SUFFIX}"), Path(f"{new_file}{BYTES_SUFFIX}"))
        for a, b in ((old_file, new_file), strings):
            assert a.exists() == b.exists(), (job, key, b)
            if a.exists():
                assert a.read_bytes() == b.read_bytes(), f"{job} output {key}: {a} != {b}"
                compared += 1
    # The default fixtures write well over a hundred outputs; a plan that lost them is a bug.
    assert compared >= 100, compared
