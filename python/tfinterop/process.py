"""Subprocess failures, described one way everywhere: command, exit status or signal,
and the tail of stderr."""

from __future__ import annotations

import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path

STDERR_TAIL_LINES = 12


@dataclass
class ProcessFailure:
    command: list[str]
    returncode: int | None
    timed_out: bool
    stderr_tail: str
    timeout_s: float

    def describe(self) -> str:
        command = shlex.join(self.command)
        if self.timed_out:
            what = f"timed out after {self.timeout_s:g}s and was killed"
        elif self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            what = f"was killed by {name}"
        else:
            what = f"exited with status {self.returncode}"
        tail = f"; stderr tail: {self.stderr_tail}" if self.stderr_tail else "; stderr was empty"
        return f"`{command}` {what}{tail}"


def tail_lines(text: str, count: int = STDERR_TAIL_LINES) -> str:
    """The last ``count`` non-blank lines of ``text``, joined on one line."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])


def file_tail(path: Path, count: int = STDERR_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return tail_lines(text, count)


def child_environment(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment with ``overrides`` (a consumer's recorded settings)."""
    environment = dict(os.environ)
    environment.update(overrides)
    return environment
