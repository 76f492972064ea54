"""nox sessions: the pipeline (export -> build -> run -> compare -> report) and its checks.

All sessions use the uv backend, which links TensorFlow (~1.6 GB installed) from uv's cache
instead of copying it per session, and reuse their environments between runs.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["interop"]

ROOT = Path(__file__).parent
PYTHON = "3.11"
# Bump when install_project's options change, so existing environments are redone.
INSTALL_OPTIONS_VERSION = b"compile-bytecode"


def install_project(session: nox.Session, extras: str = "tf,build,test") -> float:
    """Install tfinterop (editable) with ``extras``; skipped when pyproject.toml is unchanged.

    Returns the seconds spent (0 when skipped), which the interop report shows."""
    started = time.perf_counter()
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + extras.encode() + INSTALL_OPTIONS_VERSION
    ).hexdigest()
    stamp = Path(session.virtualenv.location) / ".tfinterop-installed"
    if stamp.exists() and stamp.read_text() == digest:
        return 0.0
    # Byte-compile at install time: uv does not by default, and where PYTHONDONTWRITEBYTECODE
    # is set (CI images often set it) every `import tensorflow` then compiles ~2,500 modules
    # from source, ~12 s of CPU instead of ~3 s, in every consumer process and test.
    session.install("-e", f".[{extras}]")
    # compileall rather than uv's --compile-bytecode: it also covers packages an older
    # environment already had, and skips files whose bytecode is current.
    session.run(
        "python", "-c",
        "import compileall, sysconfig; compileall.compile_dir("
        "sysconfig.get_paths()['purelib'], quiet=1, workers=0)",
        silent=True,
    )  # fmt: skip
    stamp.write_text(digest)
    return time.perf_counter() - started


@nox.session(python=PYTHON)
def interop(session: nox.Session) -> None:
    """The main job: export the fixtures, build both consumers, run all, compare, report.

    Extra arguments go to `tfinterop interop`, e.g. `nox -s interop -- --json out.json`.
    """
    install_seconds = install_project(session)
    session.run(
        "tfinterop", "interop", *session.posargs,
        env={"TFINTEROP_INSTALL_SECONDS": f"{install_seconds:.1f}"},
    )  # fmt: skip


REALWORLD = "tests/data/realworld"
COMPAT_MODELS = (
    f"{REALWORLD}/tf-rust/addition.pb",
    f"{REALWORLD}/tf-rust/regression_savedmodel --all-signatures",
    f"{REALWORLD}/tf-serving/saved_model_half_plus_two_cpu/00000123 --all-signatures"
    " --example x=float:1 --example x2=float:1",
    f"{REALWORLD}/tf-serving/saved_model_half_plus_two_tf2_cpu/00000123 --all-signatures"
    " --example x=float:1 --example x2=float:1",
)
"""Other people's models (tests/data/realworld/README.md) with the check options they need."""


@nox.session(python=PYTHON)
def compat(session: nox.Session) -> None:
    """The runtime matrix: the fixtures and the real-world models on TensorFlow 2.12.0,
    2.15.1, 2.18.1 and the pinned wheel's C API, in C and both Rust crates, against the pinned
    Python reference. Extra arguments go to `tfinterop compat` (e.g. `-- --runtime 2.20.0`)."""
    install_project(session)
    models = [arg for model in COMPAT_MODELS for arg in ("--model", model)]
    session.run("tfinterop", "compat", *models, *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The pytest suite (builds the consumers first; the end-to-end tests need them)."""
    install_project(session)
    session.run("tfinterop", "build", "--all")  # the tests run the opt-in consumers too
    session.run("pytest", *(session.posargs or ["-n", "2"]))


@nox.session(python=PYTHON)
def export(session: nox.Session) -> None:
    """Stage 1 alone: export fixtures (cached by content); `-- --force` re-exports."""
    install_project(session)
    session.run("tfinterop", "export", *session.posargs)


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """Stage 2 alone: build the C consumer and build+install the Rust consumer (maturin)."""
    install_project(session)
    session.run("tfinterop", "build", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and mypy on Python; cargo fmt --check and clippy -D warnings on Rust; the C build
    is -Werror."""
    install_project(session, "tf,build,test,lint")  # mypy reads pytest for the plugin
    session.run("ruff", "check", "python", "tests", "fixtures", "noxfile.py")
    session.run("ruff", "format", "--check", "python", "tests", "fixtures", "noxfile.py")
    session.run("mypy")  # configured in pyproject.toml: the package, strict on our own code
    config = session.run(
        "python",
        "-c",
        "from pathlib import Path; from tfinterop.consumers.rust import write_cargo_config; "
        "from tfinterop.tfenv import find_tensorflow; "
        "print(write_cargo_config(Path('build').resolve(), find_tensorflow()))",
        silent=True,
    ).strip()
    # One source tree (rust_consumer/src), two manifests: tensorflow crate 0.17 and 0.21.
    for manifest in ("rust_consumer/Cargo.toml", "rust_consumer/crate-0.21/Cargo.toml"):
        session.run("cargo", "fmt", "--manifest-path", manifest, "--check", external=True)
        session.run(
            "cargo",
            "clippy",
            "--manifest-path",
            manifest,
            "--config",
            config,
            "--all-targets",
            "--",
            "-D",
            "warnings",
            env={"CARGO_TARGET_DIR": str(ROOT / "build" / "cargo-target")},
            external=True,
        )
    session.run("tfinterop", "build", "--consumer", "c")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Latency (load, first run, p50/p90), peak RSS and Rust/C/Python ratios for every
    fixture x format x consumer; refreshes the committed results in benchmarks/."""
    install_project(session)
    session.run(
        "tfinterop", "bench", "--write", "benchmarks", *session.posargs,
        env={"TFINTEROP_BENCH_NOX": "1"},
    )  # fmt: skip


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """libFuzzer on the C consumer's npy/plan parsers (clang, ASan+UBSan) and cargo fuzz on the
    Rust consumer's; a few minutes per target, `-- --seconds N` overrides. Needs clang with
    libclang-rt and cargo-fuzz (.ci/run installs them). Non-zero exit on any crash."""
    install_project(session, "build")  # the parsers are fuzzed without TensorFlow
    session.run("python", "-m", "tfinterop.cli.fuzz", *session.posargs)


@nox.session(python=PYTHON)
def leaks(session: nox.Session) -> None:
    """The C consumer runs 50 jobs (frozen, SavedModel, string tensors) in one process under
    valgrind memcheck; fails on any definitely/indirectly lost block. `-- --jobs N` etc."""
    install_project(session)
    session.run("tfinterop", "build", "--consumer", "c")
    session.run("python", "-m", "tfinterop.cli.leaks", *session.posargs)
