"""Build stage: compile the C consumer and build+install the Rust consumer against the TF wheel.

Both link the C API of the installed ``tensorflow-cpu`` wheel. Nothing machine-specific is
committed: the Rust link configuration (symlinks named ``libtensorflow.so`` and
``libtensorflow_framework.so``, and a cargo config overriding tensorflow-sys's
``links = "tensorflow"`` build script, which would otherwise download TF 2.5) is generated
under ``build/``. Builds are skipped when a fingerprint of sources, toolchain and TF wheel
is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserError
from .tfenv import CC_LIBRARY, FRAMEWORK_LIBRARY, TensorFlowInstall, find_tensorflow

if TYPE_CHECKING:
    from .consumers import Consumer

C_FLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-D_POSIX_C_SOURCE=200809L"]
C_BINARY = "tfinterop-c-consumer"
RUST_BINARY = "tfinterop-rust-consumer"
TAIL_LINES = 25


class BuildError(UserError):
    exit_code = 3


@dataclass
class BuildOutcome:
    consumer: str
    built: bool
    """False when the fingerprint matched and nothing was done."""
    path: str
    seconds: float = 0.0
    detail: str = ""
    error: str = ""
    """Why the build failed (``build_each`` only; ``build_all`` raises instead)."""


def project_root() -> Path:
    """The source checkout holding c_consumer/ and rust_consumer/."""
    candidates = [Path(__file__).resolve().parents[2], Path.cwd(), *Path.cwd().parents]
    for candidate in candidates:
        if (candidate / "c_consumer").is_dir() and (candidate / "rust_consumer").is_dir():
            return candidate
    raise UserError(
        "cannot find the tfinterop source checkout (c_consumer/, rust_consumer/); run from it"
    )


def content_digest(paths: list[Path], extra: list[str], root: Path) -> str:
    """A build fingerprint: the files (by path below ``root`` and content) and ``extra``."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    for item in extra:
        digest.update(item.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _tool_version(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BuildError(f"{command[0]} not found: install it (see README requirements)") from None
    return (
        (result.stdout or result.stderr).strip().splitlines()[0]
        if (result.stdout or result.stderr)
        else ""
    )


def run_build_step(
    command: list[str], what: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> None:
    """Run one build command; a failure is a BuildError naming the command, its exit status
    or signal, and the tail of its output."""
    from .run import ProcessFailure

    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        tail = " | ".join(lines[-TAIL_LINES:])
        failure = ProcessFailure(command, result.returncode, False, tail, 0.0)
        raise BuildError(f"{what} failed: {failure.describe()}")


def c_compiler() -> str:
    return os.environ.get("CC", "cc")


def c_build_command(tf: TensorFlowInstall, sources: list[Path], output: Path) -> list[str]:
    return [
        c_compiler(),
        *C_FLAGS,
        *tf.c_flags(),
        *map(str, sources),
        *tf.link_flags(),
        "-o",
        str(output),
    ]


def c_binary(build_dir: Path, tf: TensorFlowInstall) -> Path:
    """One C binary per TensorFlow wheel location (its rpath is absolute), so environments
    built side by side (one per nox session) do not rebuild each other's."""
    tag = hashlib.sha256(tf.library_dir.encode()).hexdigest()[:12]
    return build_dir / "c_consumer" / tag / C_BINARY


def build_c(build_dir: Path, *, force: bool = False) -> BuildOutcome:
    root = project_root()
    tf = find_tensorflow()
    sources = sorted((root / "c_consumer" / "src").glob("*.c"))
    if not sources:
        raise BuildError(f"no C sources under {root / 'c_consumer' / 'src'}")
    headers = sorted((root / "c_consumer" / "src").glob("*.h"))
    out_dir = c_binary(build_dir, tf).parent
    binary = out_dir / C_BINARY
    command = c_build_command(tf, sources, binary)
    fingerprint = content_digest(
        sources + headers, [*command, _tool_version([c_compiler(), "--version"]), tf.version], root
    )
    stamp = out_dir / "fingerprint"
    if not force and binary.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return BuildOutcome("c", False, str(binary))
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / f".{C_BINARY}.tmp{os.getpid()}"
    run_build_step(c_build_command(tf, sources, temporary), "C consumer build")
    os.replace(temporary, binary)
    stamp.write_text(fingerprint)
    return BuildOutcome("c", True, str(binary), time.perf_counter() - started, " ".join(command))


def rust_target_triple() -> str:
    try:
        result = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError):
        raise BuildError(
            "rustc not found or not working: install a Rust toolchain (see README)"
        ) from None
    for line in result.stdout.splitlines():
        if line.startswith("host:"):
            return line.split(":", 1)[1].strip()
    raise BuildError("cannot read the host triple from `rustc -vV`")


def write_cargo_config(build_dir: Path, tf: TensorFlowInstall) -> Path:
    """Generate the link override for tensorflow-sys; returns the config file for ``--config``."""
    link_dir = build_dir / "tf-link"
    link_dir.mkdir(parents=True, exist_ok=True)
    for link_name, target in (
        ("libtensorflow.so", CC_LIBRARY),
        ("libtensorflow_framework.so", FRAMEWORK_LIBRARY),
    ):
        link = link_dir / link_name
        wanted = os.path.join(tf.library_dir, target)
        if not (link.is_symlink() and os.readlink(link) == wanted):
            link.unlink(missing_ok=True)
            link.symlink_to(wanted)
    triple = rust_target_triple()
    # The rpath points at the wheel directory, not the symlinks: at run time the loader looks
    # for the SONAMEs (libtensorflow_cc.so.2), which live only in the wheel. It is relative to
    # the installed binary (<venv>/bin), so every venv of the same layout gets identical
    # rustflags and shares one incremental cargo target dir instead of rebuilding (~4 min).
    relative = os.path.relpath(tf.library_dir, sysconfig.get_path("scripts"))
    config = (
        f"[target.{triple}.tensorflow]\n"
        f'rustc-link-search = ["{link_dir.resolve()}"]\n'
        f'rustc-link-lib = ["tensorflow", "tensorflow_framework"]\n'
        f"\n[target.{triple}]\n"
        f'rustflags = ["-C", "link-arg=-Wl,-rpath,$ORIGIN/{relative}"]\n'
    )
    path = link_dir / "cargo-config.toml"
    if not path.exists() or path.read_text() != config:
        path.write_text(config)
    return path


def _installer(wheel: Path) -> list[str]:
    uv = shutil.which("uv")
    if uv:
        return [
            uv,
            "pip",
            "install",
            "--python",
            sys.executable,
            "--reinstall",
            "--no-deps",
            str(wheel),
        ]
    return [sys.executable, "-m", "pip", "install", "--force-reinstall", "--no-deps", str(wheel)]


def build_rust(build_dir: Path, *, force: bool = False) -> BuildOutcome:
    """``maturin build`` (bindings = "bin") and install the wheel into this environment."""
    root = project_root()
    tf = find_tensorflow()
    crate = root / "rust_consumer"
    config = write_cargo_config(build_dir, tf)
    sources = [
        p
        for p in crate.rglob("*")
        if p.is_file()
        and "target" not in p.relative_to(crate).parts
        and "fuzz" not in p.relative_to(crate).parts
    ]
    scripts = Path(sysconfig.get_path("scripts"))
    binary = scripts / RUST_BINARY
    fingerprint = content_digest(
        sources, [_tool_version(["rustc", "--version"]), tf.version, config.read_text()], root
    )
    stamp = Path(sys.prefix) / f"{RUST_BINARY}.fingerprint"
    if not force and binary.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return BuildOutcome("rust", False, str(binary))
    maturin = shutil.which("maturin") or str(scripts / "maturin")
    if not os.access(maturin, os.X_OK):
        raise BuildError(
            "maturin is not installed: `pip install -e '.[build]'` (nox sessions do this)"
        )
    started = time.perf_counter()
    wheel_dir = build_dir / "wheels"
    shutil.rmtree(wheel_dir, ignore_errors=True)
    environment = dict(os.environ, CARGO_TARGET_DIR=str((build_dir / "cargo-target").resolve()))
    run_build_step(
        [
            maturin,
            "build",
            "--release",
            "--quiet",
            "--manifest-path",
            str(crate / "Cargo.toml"),
            "--config",
            str(config),
            "--out",
            str(wheel_dir),
            "--interpreter",
            sys.executable,
        ],
        "Rust consumer build (maturin)",
        env=environment,
    )
    wheels = sorted(wheel_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"maturin produced {len(wheels)} wheels in {wheel_dir}, expected 1")
    run_build_step(_installer(wheels[0]), "installing the Rust consumer wheel")
    stamp.write_text(fingerprint)
    return BuildOutcome("rust", True, str(binary), time.perf_counter() - started)


def build_all(
    build_dir: Path, *, force: bool = False, consumers: list[Consumer] | None = None
) -> list[BuildOutcome]:
    """Build every consumer of ``consumers`` (default: all) that needs building."""
    from .consumers import buildable

    return [consumer.build(build_dir, force=force) for consumer in buildable(consumers)]


def build_each(
    build_dir: Path,
    consumers: list[Consumer],
    on_start: Callable[[str], None] = lambda name: None,
) -> Iterator[BuildOutcome]:
    """Build the consumers that need it one by one, yielding each outcome as it ends.

    A failed build is an outcome with ``error`` set, not an exception: the run goes on and the
    consumer's cells report it, while the other consumers still build and run.
    """
    from .consumers import buildable

    for consumer in buildable(consumers):
        on_start(consumer.name)
        try:
            yield consumer.build(build_dir)
        except BuildError as exc:
            yield BuildOutcome(consumer.name, False, "", error=str(exc))
