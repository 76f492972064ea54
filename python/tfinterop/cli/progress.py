"""Live progress for the long stages (export, build, run): rich on a terminal, lines in CI.

A stage is a named unit with an optional total; ``start(item)`` says what is being worked on
now (several items may run at once, e.g. consumers in parallel) and ``done(item, note)``
finishes it. On a terminal, rich draws a spinner, a bar and the current items on stderr; when
stderr is not a terminal or ``CI`` is set, every start and finish is one plain log line, so
CI logs show what ran, for how long, and what was running when something hung.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..pipeline.events import Reporter, Stage


def live_wanted(stream: IO[str] | None = None) -> bool:
    """Live display only for a person at a terminal: never under CI (``CI`` set, any value)."""
    if os.environ.get("CI"):
        return False
    stream = stream or sys.stderr
    return hasattr(stream, "isatty") and stream.isatty()


def make_reporter(console: Console | None = None) -> Reporter:
    console = console or Console(stderr=True, highlight=False)
    if live_wanted(console.file) and console.is_terminal:
        return RichReporter(console)
    return LineReporter(console.file)


def _elapsed(started: float) -> str:
    seconds = time.perf_counter() - started
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


class LineReporter:
    """One line per start/finish: ``[export 2/5] mobilenet_v3: exported (41.2 s)``."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self._stream, flush=True)

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Stage]:
        stage = _LineStage(self, title, total)
        yield stage
        what = stage.summary or f"{stage.finished} done"
        self._print(f"[{title}] {what} in {_elapsed(stage.started)}")


class _LineStage:
    def __init__(self, reporter: LineReporter, title: str, total: int | None) -> None:
        self._reporter = reporter
        self._title = title
        self._total = total
        self._starts: dict[str, float] = {}
        self._lock = threading.Lock()  # consumers start and finish on worker threads
        self.finished = 0
        self.started = time.perf_counter()
        self.summary = ""

    def _prefix(self, number: int) -> str:
        return f"[{self._title} {number}/{self._total}]" if self._total else f"[{self._title}]"

    def start(self, item: str) -> None:
        with self._lock:
            self._starts[item] = time.perf_counter()
            number = self.finished + len(self._starts)
        self._reporter._print(f"{self._prefix(number)} {item} ...")

    def done(self, item: str, note: str = "") -> None:
        with self._lock:
            self.finished += 1
            number = self.finished
            started = self._starts.pop(item, None)
        took = f" ({_elapsed(started)})" if started is not None else ""
        detail = f": {note}" if note else ""
        self._reporter._print(f"{self._prefix(number)} {item}{detail}{took}")


class RichReporter:
    """Spinner + bar + the items in progress, on one live line per stage (left when done)."""

    def __init__(self, console: Console) -> None:
        self._console = console

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Stage]:
        progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.fields[title]}[/]"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[current]}", markup=False),
            console=self._console,
            transient=False,
        )
        with progress:
            task = progress.add_task(title, total=total, title=title, current="")
            stage = _RichStage(progress, task)
            yield stage
            progress.update(
                task, current=stage.summary or stage.last_note, completed=total or stage.finished
            )


class _RichStage:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._active: list[str] = []
        self._lock = threading.Lock()
        self.finished = 0
        self.last_note = ""
        self.summary = ""

    def _show(self) -> None:
        self._progress.update(self._task, current=", ".join(self._active))

    def start(self, item: str) -> None:
        with self._lock:
            self._active.append(item)
            self._show()

    def done(self, item: str, note: str = "") -> None:
        with self._lock:
            if item in self._active:
                self._active.remove(item)
            self.finished += 1
            self.last_note = f"{item}: {note}" if note else item
            self._progress.advance(self._task)
            self._show()
