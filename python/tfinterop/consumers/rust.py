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
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..paths import project_root
from ..tfenv import CC_LIBRARY, FRAMEWORK_LIBRARY, TensorFlowInstall, find_tensorflow
from .base import BuildError, BuildOutcome, Consumer
from .build_tools import content_digest, first_line, run_build_step, tool_version

RUST_CRATE = "rust_consumer"
"""The default manifest (crate 0.17) and the code every Rust manifest compiles."""
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


def rust_sources(manifest_dir: Path) -> list[Path]:
    """What a build of ``manifest_dir`` compiles: its own files (manifest, lock, pyproject)
    and the consumer code every manifest shares (rust_consumer/src, build.rs)."""
    crate = project_root() / RUST_CRATE
    own = [p for p in manifest_dir.iterdir() if p.is_file()]
    shared = [p for p in (crate / "src").rglob("*") if p.is_file()]
    return sorted({*own, *shared, crate / "build.rs"})


def build_rust(
    name: str, build_dir: Path, manifest_dir: Path, binary_name: str, *, force: bool = False
) -> BuildOutcome:
    """``maturin build`` (bindings = "bin") of ``manifest_dir`` and install the wheel, which
    holds ``binary_name``, into this environment."""
    root = project_root()
    tf = find_tensorflow()
    config = write_cargo_config(build_dir, tf)
    scripts = Path(sysconfig.get_path("scripts"))
    binary = scripts / binary_name
    fingerprint = content_digest(
        rust_sources(manifest_dir),
        [tool_version(["rustc", "--version"]), tf.version, config.read_text()],
        root,
    )
    stamp = Path(sys.prefix) / f"{binary_name}.fingerprint"
    if not force and binary.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return BuildOutcome(name, False, str(binary))
    maturin = shutil.which("maturin") or str(scripts / "maturin")
    if not os.access(maturin, os.X_OK):
        raise BuildError(
            "maturin is not installed: `pip install -e '.[build]'` (nox sessions do this)"
        )
    started = time.perf_counter()
    wheel_dir = build_dir / "wheels" / binary_name
    built = wheel_dir / "fingerprint"
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not force and len(wheels) == 1 and built.exists() and built.read_text() == fingerprint:
        # Built already for another environment of the same layout and wheel (another
        # project on the user cache): its relative rpath fits this one too; install it.
        run_build_step(_installer(wheels[0]), f"installing the {name} consumer wheel")
        stamp.write_text(fingerprint)
        return BuildOutcome(name, True, str(binary), time.perf_counter() - started, shared=True)
    shutil.rmtree(wheel_dir, ignore_errors=True)
    # One target dir for every manifest: the dependencies they share are compiled once.
    environment = dict(os.environ, CARGO_TARGET_DIR=str((build_dir / "cargo-target").resolve()))
    run_build_step(
        [
            maturin,
            "build",
            "--release",
            "--quiet",
            "--manifest-path",
            str(manifest_dir / "Cargo.toml"),
            "--config",
            str(config),
            "--out",
            str(wheel_dir),
            "--interpreter",
            sys.executable,
        ],
        f"{name} consumer build (maturin)",
        env=environment,
    )
    wheels = sorted(wheel_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"maturin produced {len(wheels)} wheels in {wheel_dir}, expected 1")
    run_build_step(_installer(wheels[0]), f"installing the {name} consumer wheel")
    stamp.write_text(fingerprint)
    built.write_text(fingerprint)
    return BuildOutcome(name, True, str(binary), time.perf_counter() - started)


def locked_crate(manifest_dir: Path, crate: str = "tensorflow") -> str | None:
    """The version of ``crate`` in ``manifest_dir``'s Cargo.lock (what its build compiles)."""
    try:
        lock = tomllib.loads((manifest_dir / "Cargo.lock").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return next(
        (p["version"] for p in lock.get("package", []) if p.get("name") == crate),
        None,
    )


@dataclass(frozen=True)
class RustConsumer(Consumer):
    """A program installed into this Python environment's scripts dir (maturin bin wheel),
    built from the manifest in ``manifest`` (relative to the checkout) as ``binary``; every
    manifest compiles the same code, rust_consumer/src, against its own ``tensorflow``
    crate."""

    manifest: str = RUST_CRATE
    binary: str = RUST_BINARY
    toolchain_key: str = "tensorflow_crate"
    """Where ``toolchain()`` puts the locked crate version in the report's toolchain record
    (which merges every consumer's): a distinct key per manifest keeps each one's crate."""

    needs_build = True

    def manifest_dir(self) -> Path:
        return project_root() / self.manifest

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        return build_rust(self.name, build_dir, self.manifest_dir(), self.binary, force=force)

    def command(self, build_dir: Path) -> list[str]:
        return [str(Path(sysconfig.get_path("scripts")) / self.binary)]

    def toolchain(self) -> dict[str, str | None]:
        try:
            crate = locked_crate(self.manifest_dir())
        except UserError:  # no source checkout
            crate = None
        return {"rustc": first_line(["rustc", "--version"]), self.toolchain_key: crate}
