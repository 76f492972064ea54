"""Fuzzing the consumers' parsers: libFuzzer on the C consumer's npy/plan parsers (clang,
ASan+UBSan) and ``cargo fuzz`` on the Rust consumer's (``rust_consumer/fuzz``).

``python -m tfinterop.hardening.fuzz [--seconds N] [--targets ...]`` builds and runs every target for N
seconds, prints executions and crashes per target, and exits non-zero on a crash (the
reproducer is kept under ``build/fuzz/artifacts/``; once fixed, copy it into the target's
``regressions/`` directory, which ``tests/hardening/test_fuzz_regressions.py`` replays).
``--write-seeds`` regenerates the committed seed corpus ``c_consumer/fuzz/corpus/`` (shared by
both languages) from numpy-written ``.npy`` files and plans rendered by ``tfinterop.contract.plan``.
See docs/hardening.md.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..consumers.build_tools import content_digest, run_build_step
from ..errors import UserError
from ..paths import project_root

CLANG_FLAGS = [
    "-std=c11",
    "-g",
    "-O1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-D_POSIX_C_SOURCE=200809L",
    "-fsanitize=fuzzer,address,undefined",
    "-fno-sanitize-recover=all",
]
C_SOURCES = {
    "npy": ["npy.c", "strbuf.c", "dtypes.c"],
    "plan": ["plan.c", "strbuf.c"],
}
RUST_TARGETS = ("plan", "npy")
TARGETS = tuple(f"c-{t}" for t in C_SOURCES) + tuple(f"rust-{t}" for t in RUST_TARGETS)
# Per-input limits: a slow or memory-hungry input is a finding, like a crash.
LIBFUZZER_LIMITS = ["-timeout=10", "-rss_limit_mb=2048", "-max_len=65536"]
TAIL_LINES = 30


@dataclass
class FuzzOutcome:
    target: str
    seconds: float
    executions: int | None
    crashes: list[Path]
    exit_status: int
    tail: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.crashes

    def line(self) -> str:
        execs = "?" if self.executions is None else f"{self.executions:,}"
        verdict = "ok" if self.ok else f"FAILED (exit {self.exit_status})"
        found = ", ".join(str(c) for c in self.crashes) or "none"
        return (
            f"{self.target}: {execs} executions in {self.seconds:.0f} s, crashes: {found}; "
            f"{verdict}"
        )


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-TAIL_LINES:])


def _require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise UserError(f"{tool} not found: {hint}")
    return found


def _executions(output: str) -> int | None:
    """libFuzzer's final stats (-print_final_stats=1); the last 'DONE'/'#N' line otherwise."""
    stats = re.findall(r"stat::number_of_executed_units:\s*(\d+)", output)
    if stats:
        return sum(int(s) for s in stats)
    counts = re.findall(r"^#(\d+)\s", output, re.MULTILINE)
    return int(counts[-1]) if counts else None


def build_c_target(target: str, out_dir: Path) -> Path:
    """clang with libFuzzer, ASan and UBSan (every UB report aborts)."""
    clang = _require("clang", "install Debian's clang and libclang-rt-14-dev (see .ci/run)")
    root = project_root() / "c_consumer"
    binary = out_dir / f"c-{target}"
    sources = [root / "fuzz" / f"fuzz_{target}.c", *(root / "src" / s for s in C_SOURCES[target])]
    command = [clang, *CLANG_FLAGS, f"-I{root / 'src'}", *map(str, sources), "-o", str(binary)]
    fingerprint = content_digest([*sources, *(root / "src").glob("*.h")], command, root)
    stamp = binary.with_suffix(".fingerprint")
    if binary.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    run_build_step(command, f"building fuzz target c-{target}")
    stamp.write_text(fingerprint)
    return binary


def _corpus_dirs(target: str, work: Path) -> list[Path]:
    """The working corpus first (libFuzzer adds new inputs there), then the committed seeds."""
    working = work / "corpus" / target
    working.mkdir(parents=True, exist_ok=True)
    seeds = project_root() / "c_consumer" / "fuzz" / "corpus" / target.split("-", 1)[1]
    return [working, seeds]


def _dictionary(target: str) -> list[str]:
    """The format's keywords (c_consumer/fuzz/<name>.dict) speed up finding valid structure."""
    path = project_root() / "c_consumer" / "fuzz" / f"{target.split('-', 1)[1]}.dict"
    return [f"-dict={path}"] if path.exists() else []


def run_c(target: str, seconds: int, work: Path) -> FuzzOutcome:
    name = target.split("-", 1)[1]
    binary = build_c_target(name, work / "bin")
    artifacts = work / "artifacts" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    command = [
        str(binary),
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        *LIBFUZZER_LIMITS,
        *_dictionary(target),
        *map(str, _corpus_dirs(target, work)),
    ]
    return _run_fuzzer(target, command, artifacts, env=None)


def rust_fuzz_env(work: Path) -> dict[str, str]:
    """cargo fuzz needs nightly for -Zsanitizer; stable rustc accepts it with RUSTC_BOOTSTRAP=1
    (the x86_64 std component ships the ASan runtime). The target dir is separate from the
    consumer's: its RUSTFLAGS differ, sharing would rebuild both."""
    return dict(
        os.environ,
        RUSTC_BOOTSTRAP="1",
        CARGO_TARGET_DIR=str((work / "cargo-target").resolve()),
    )


def run_rust(target: str, seconds: int, work: Path, sanitizer: str = "address") -> FuzzOutcome:
    _require("cargo-fuzz", "`cargo install cargo-fuzz --locked` (see .ci/run)")
    name = target.split("-", 1)[1]
    crate = project_root() / "rust_consumer" / "fuzz"
    artifacts = work / "artifacts" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    env = rust_fuzz_env(work)
    build = [
        "cargo",
        "fuzz",
        "build",
        "--fuzz-dir",
        str(crate),
        f"--sanitizer={sanitizer}",
        name,
    ]
    run_build_step(build, f"building fuzz target {target}", env=env)
    command = [
        "cargo",
        "fuzz",
        "run",
        "--fuzz-dir",
        str(crate),
        f"--sanitizer={sanitizer}",
        name,
        *map(str, _corpus_dirs(target, work)),
        "--",
        f"-max_total_time={seconds}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        *LIBFUZZER_LIMITS,
        *_dictionary(target),
    ]
    return _run_fuzzer(target, command, artifacts, env=env)


def _run_fuzzer(
    target: str, command: list[str], artifacts: Path, env: dict[str, str] | None
) -> FuzzOutcome:
    """Runs libFuzzer; new files in ``artifacts`` are the crash/timeout/OOM reproducers."""
    before = set(artifacts.iterdir())
    started = time.perf_counter()
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    crashes = sorted(p for p in set(artifacts.iterdir()) - before if p.is_file())
    return FuzzOutcome(
        target,
        elapsed,
        _executions(result.stdout),
        crashes,
        result.returncode,
        _tail(result.stdout),
    )


def run_targets(targets: list[str], seconds: int, work: Path) -> list[FuzzOutcome]:
    outcomes = []
    for target in targets:
        outcome = (
            run_c(target, seconds, work)
            if target.startswith("c-")
            else run_rust(target, seconds, work)
        )
        print(outcome.line(), flush=True)
        if not outcome.ok:
            print(outcome.tail, file=sys.stderr)
        outcomes.append(outcome)
    return outcomes


# ---- seed corpus -------------------------------------------------------------------------


def _npy_seeds() -> dict[str, bytes]:
    """Real numpy output: every contract dtype, 0-d, empty, 3-d, versions 2.0/3.0, and what the
    contract refuses (Fortran order, big-endian, object arrays, structured)."""
    import numpy as np

    rng = np.random.default_rng(7)

    def save(array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
        return buffer.getvalue()

    seeds = {}
    for dtype in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "c8", "c16"):
        seeds[f"{dtype}_2x3"] = save((rng.standard_normal((2, 3)) * 50).astype(dtype))
    seeds["b1_4"] = save(np.array([True, False, True, True]))
    seeds["f4_scalar"] = save(np.array(1.5, dtype=np.float32))
    seeds["f4_empty_0x3"] = save(np.zeros((0, 3), np.float32))
    seeds["i4_2x2x2"] = save(np.arange(8, dtype=np.int32).reshape(2, 2, 2))
    seeds["i8_string_lengths"] = save(np.array([3, 0, 5], np.int64))
    seeds["f4_v2"] = save(np.arange(3, dtype=np.float32), version=(2, 0))
    seeds["f4_v3"] = save(np.arange(3, dtype=np.float32), version=(3, 0))
    seeds["f4_fortran"] = save(np.asfortranarray(np.ones((2, 3), np.float32)))
    seeds["f4_bigendian"] = save(np.arange(3, dtype=">f4"))
    seeds["structured"] = save(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]))
    seeds["u1_7d"] = save(np.zeros((1,) * 7, np.uint8))
    return seeds


def _plan_seeds() -> dict[str, bytes]:
    from ..contract import plan

    frozen = plan.Job(
        id="linear/frozen/serving_default",
        model="/m/frozen/serving_default.pb",
        format="frozen",
        inputs=[plan.PlanTensor("x:0", "x:0", "/m/inputs/x.npy")],
        outputs=[plan.PlanTensor("y", "Identity:0", "/out/y.npy")],
    )
    saved = plan.Job(
        id="dtypes/saved_model/batch_n@serve,gpu",
        model="/m/saved_model",
        format="saved_model",
        tags=["serve", "gpu"],
        signature="batch_n",
        inputs=[
            plan.PlanTensor("f16", "batch_n_f16:0", "/m/inputs/f16.npy"),
            plan.PlanTensor("text", "-", "/m/inputs/text.npy"),
        ],
        outputs=[
            plan.PlanTensor("y", "PartitionedCall:0", "/out/y.npy"),
            plan.PlanTensor("z", "-", "/out/z.npy"),
        ],
        warmup=2,
        repeat=5,
    )
    image = plan.Job(
        id="image_layout/saved_model/serving_default",
        model="/m/saved_model",
        format="saved_model",
        inputs=[plan.PlanTensor("image", "serving_default_image:0", "/m/a.png", image=True)],
        outputs=[plan.PlanTensor("y", "StatefulPartitionedCall:0", "/out/y.npy")],
    )
    seeds = {
        "frozen": plan.render(plan.Plan(jobs=[frozen])),
        "saved_model_threads": plan.render(
            plan.Plan(jobs=[saved], intra_op_threads=2, inter_op_threads=1)
        ),
        "image": plan.render(plan.Plan(jobs=[image])),
        "two_jobs": plan.render(plan.Plan(jobs=[frozen, saved])),
        "empty": plan.render(plan.Plan()),
    }
    # Well-formed records that make an invalid job (stage "plan"): the job-level error path.
    seeds["job_error"] = seeds["frozen"].replace("format\tfrozen\n", "format\tfrozen\ntags\ts\n")
    seeds["comments"] = seeds["frozen"].replace("job\t", "# a comment\n\njob\t", 1)
    return {name: text.encode() for name, text in seeds.items()}


def write_seeds(root: Path) -> list[Path]:
    written = []
    for target, seeds in (("npy", _npy_seeds()), ("plan", _plan_seeds())):
        directory = root / "c_consumer" / "fuzz" / "corpus" / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            path = directory / (name + (".npy" if target == "npy" else ".tsv"))
            path.write_bytes(data)
            written.append(path)
    return written
