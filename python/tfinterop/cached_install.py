"""Installing something once per machine into tfinterop's cache: the TensorFlow runtimes
(``runtimes``) and the older exporters' environments (``exporters``).

An entry is made in a staging directory and renamed into place under a per-entry lock, so
runs asking for the same entry at once share one install (the second waits, then finds it)
and nothing ever sees half of one; a failed install leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError
from .process import tail_lines

INSTALL_TIMEOUT_S = 1800.0
TAIL = 8


def cache_root() -> Path:
    """tfinterop's per-user cache (``TFINTEROP_CACHE_DIR``, else ``$XDG_CACHE_HOME/tfinterop``)."""
    configured = os.environ.get("TFINTEROP_CACHE_DIR")
    if configured:
        return Path(configured).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "tfinterop"


def uv() -> str | None:
    """uv next to this interpreter (the nox environments have it), else on PATH: it links
    wheels from its cache, so a second install costs no download and no copy."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


@contextmanager
def locked(final: Path) -> Iterator[None]:
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a second run asking for it waits, then reuses it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_once(
    final: Path, complete: Callable[[Path], bool], populate: Callable[[Path], None]
) -> bool:
    """Make ``final`` with ``populate(staging)`` unless ``complete(final)``; returns whether
    this call made it. ``populate`` raises (a UserError naming what failed) to give up."""
    if complete(final):
        return False
    with locked(final):
        if complete(final):  # another run made it while this one waited
            return False
        staging = final.with_name(f".{final.name}.staging{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            populate(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(final, ignore_errors=True)  # a damaged earlier install
        os.replace(staging, final)  # atomic: others see all of it or nothing
        return True


def run_step(command: list[str], what: str, error: type[UserError]) -> str:
    """Run one install command; its output, or ``error`` naming the command, its exit status
    and its last lines."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what} timed out after {INSTALL_TIMEOUT_S:g}s: {' '.join(command)}") from None
    except OSError as exc:
        raise error(f"{what} failed: {' '.join(command)}: {exc}") from None
    if done.returncode != 0:
        raise error(
            f"{what} failed (exit {done.returncode}): {' '.join(command)}: "
            f"{tail_lines(done.stderr + done.stdout, TAIL)}"
        )
    return done.stdout


def disk_usage(directory: Path) -> tuple[int, int]:
    """(bytes of the files under ``directory``, bytes of those not hard-linked from elsewhere,
    i.e. what it costs beyond uv's cache)."""
    total = own = 0
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            total += info.st_size
            if info.st_nlink == 1:
                own += info.st_size
    return total, own
