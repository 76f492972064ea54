"""The Rust consumer: rust_consumer/ on the ``tensorflow`` crate, built by maturin as a bin
wheel and installed into this environment, linked against the wheel's C API through a
generated cargo config (tensorflow-sys's download is overridden; nothing machine-specific is
committed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

from ..errors import UserError
from ..paths import project_root
from ..tfenv import CC_LIBRARY, FRAMEWORK_LIBRARY, TensorFlowInstall, find_tensorflow
from .base import BuildError, BuildOutcome, Consumer
from .build_tools import content_digest, first_line, run_build_step, tool_version

RUST_BINARY = "tfinterop-rust-consumer"


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


def build_rust(name: str, build_dir: Path, *, force: bool = False) -> BuildOutcome:
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
        sources, [tool_version(["rustc", "--version"]), tf.version, config.read_text()], root
    )
    stamp = Path(sys.prefix) / f"{RUST_BINARY}.fingerprint"
    if not force and binary.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return BuildOutcome(name, False, str(binary))
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
    return BuildOutcome(name, True, str(binary), time.perf_counter() - started)


class RustConsumer(Consumer):
    """A program installed into this Python environment's scripts dir (maturin bin wheel)."""

    needs_build = True

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        return build_rust(self.name, build_dir, force=force)

    def command(self, build_dir: Path) -> list[str]:
        return [str(Path(sysconfig.get_path("scripts")) / RUST_BINARY)]

    def toolchain(self) -> dict[str, str | None]:
        crate = None
        try:
            lock = tomllib.loads((project_root() / "rust_consumer" / "Cargo.lock").read_text())
            crate = next(
                (p["version"] for p in lock.get("package", []) if p.get("name") == "tensorflow"),
                None,
            )
        except (UserError, OSError, tomllib.TOMLDecodeError):
            pass
        return {"rustc": first_line(["rustc", "--version"]), "tensorflow_crate": crate}
