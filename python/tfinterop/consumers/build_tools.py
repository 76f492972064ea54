"""Helpers the consumers' builds share (and the fuzz targets' builds): fingerprints,
tool versions, and one failure format for a build command."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from ..process import ProcessFailure, tail_lines
from .base import BuildError

TAIL_LINES = 25


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


def tool_version(command: list[str]) -> str:
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
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    if result.returncode != 0:
        tail = tail_lines(result.stderr + result.stdout, TAIL_LINES)
        failure = ProcessFailure(command, result.returncode, False, tail, 0.0)
        raise BuildError(f"{what} failed: {failure.describe()}")


def first_line(command: list[str]) -> str | None:
    """The first line a ``--version`` style command prints, or None when it cannot run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else None
