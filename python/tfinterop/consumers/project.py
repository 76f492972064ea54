"""A project's own consumer (``[tool.tfinterop.consumer.NAME]``, project.py): the user's
program speaking the contract, e.g. their Rust service's inference code. Its build is their
build command, run from their directory; their build tool decides what is up to date."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..project import ConsumerSpec
from .base import BuildOutcome, Consumer
from .build_tools import run_build_step


@dataclass(frozen=True)
class ProjectConsumer(Consumer):
    spec: ConsumerSpec | None = None

    @classmethod
    def from_spec(cls, spec: ConsumerSpec) -> ProjectConsumer:
        return cls(spec.name, spec.description, spec.capabilities, spec=spec)

    @property
    def _spec(self) -> ConsumerSpec:
        assert self.spec is not None
        return self.spec

    @property
    def needs_build(self) -> bool:  # type: ignore[override]
        return bool(self._spec.build)

    def _program(self) -> str:
        """A program given with a directory part is the project's, relative to its
        directory; a bare name is looked up on PATH, as a shell would."""
        program = self._spec.command[0]
        if os.sep in program:
            return str(self._spec.directory / program)
        return shutil.which(program) or program

    def command(self, build_dir: Path) -> list[str]:
        return [self._program(), *self._spec.command[1:]]

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        started = time.perf_counter()
        run_build_step(
            list(self._spec.build), f"{self.name} consumer build", cwd=self._spec.directory
        )
        return BuildOutcome(
            self.name, True, self._program(), time.perf_counter() - started,
            " ".join(self._spec.build),
        )  # fmt: skip
