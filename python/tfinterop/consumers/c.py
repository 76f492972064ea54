"""The C consumer: c_consumer/ on the TensorFlow C API of the installed wheel, compiled
with -Wall -Wextra -Werror; rebuilt when a fingerprint of sources, compiler and wheel changes."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ..paths import project_root
from ..tfenv import TensorFlowInstall, find_tensorflow
from .base import BuildError, BuildOutcome, Consumer
from .build_tools import content_digest, first_line, run_build_step, tool_version

C_FLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-D_POSIX_C_SOURCE=200809L"]
C_BINARY = "tfinterop-c-consumer"


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
    """One C binary per TensorFlow wheel (distribution and version), shared by every
    environment holding that wheel: projects using the per-user build cache, the nox
    sessions. Its rpath names the environment that built it; every run puts the running
    environment's wheel first on LD_LIBRARY_PATH (``process_environment``)."""
    tag = hashlib.sha256(f"{tf.distribution}=={tf.version}".encode()).hexdigest()[:12]
    return build_dir / "c_consumer" / tag / C_BINARY


def build_c(name: str, build_dir: Path, *, force: bool = False) -> BuildOutcome:
    root = project_root()
    tf = find_tensorflow()
    sources = sorted((root / "c_consumer" / "src").glob("*.c"))
    if not sources:
        raise BuildError(f"no C sources under {root / 'c_consumer' / 'src'}")
    headers = sorted((root / "c_consumer" / "src").glob("*.h"))
    out_dir = c_binary(build_dir, tf).parent
    binary = out_dir / C_BINARY
    command = c_build_command(tf, sources, binary)
    # Not the command itself: its -I/-L/-rpath paths differ per environment of one wheel.
    fingerprint = content_digest(
        sources + headers,
        [*C_FLAGS, tool_version([c_compiler(), "--version"]), tf.distribution, tf.version],
        root,
    )
    stamp = out_dir / "fingerprint"
    built_by = out_dir / "rpath"  # rebuilt when the environment its rpath names is gone
    if (
        not force
        and binary.exists()
        and stamp.exists()
        and stamp.read_text() == fingerprint
        and built_by.exists()
        and os.path.isdir(built_by.read_text())
    ):
        return BuildOutcome(name, False, str(binary))
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    temporary = out_dir / f".{C_BINARY}.tmp{os.getpid()}"
    run_build_step(c_build_command(tf, sources, temporary), "C consumer build")
    os.replace(temporary, binary)
    stamp.write_text(fingerprint)
    built_by.write_text(tf.library_dir)
    return BuildOutcome(name, True, str(binary), time.perf_counter() - started, " ".join(command))


class CConsumer(Consumer):
    needs_build = True

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        return build_c(self.name, build_dir, force=force)

    def command(self, build_dir: Path) -> list[str]:
        return [str(c_binary(build_dir, find_tensorflow()))]

    def process_environment(self) -> dict[str, str]:
        # The binary may have been built by another environment with the same wheel.
        library = find_tensorflow().library_dir
        inherited = os.environ.get("LD_LIBRARY_PATH")
        return {"LD_LIBRARY_PATH": f"{library}:{inherited}" if inherited else library}

    def toolchain(self) -> dict[str, str | None]:
        return {"c_compiler": first_line([c_compiler(), "--version"])}
