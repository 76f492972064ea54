"""How the pipeline says what it is doing, without knowing who listens (the CLI's progress
display, a test, nothing): a reporter opens stages, a stage starts and finishes items."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


class Stage(Protocol):
    summary: str
    """Set by the caller before the stage ends: shown on its final line."""

    def start(self, item: str) -> None: ...

    def done(self, item: str, note: str = "") -> None: ...


class Reporter(Protocol):
    def stage(self, title: str, total: int | None = None) -> AbstractContextManager[Stage]:
        """A context manager; leaving it finishes the stage."""
        ...


class _SilentStage:
    summary = ""

    def start(self, item: str) -> None:
        pass

    def done(self, item: str, note: str = "") -> None:
        pass


class SilentReporter:
    """Reports nothing (library use, tests)."""

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Stage]:
        yield _SilentStage()


class StartOnly:
    """Adapts a callback that only announces starts (``export_fixtures(on_start=...)``): the
    next start, or ``finish()``, completes the item before it. Cached items finish at once."""

    def __init__(self, stage: Stage) -> None:
        self._stage = stage
        self._pending: str | None = None

    def __call__(self, item: str, cached: bool = False) -> None:
        self.finish()
        if cached:
            self._stage.done(item, "cached")
        else:
            self._stage.start(item)
            self._pending = item

    def finish(self) -> None:
        if self._pending is not None:
            self._stage.done(self._pending)
            self._pending = None
