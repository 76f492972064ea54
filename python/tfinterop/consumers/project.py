"""A project's own consumer (``[tool.tfinterop.consumer.NAME]``, project.py): the user's
program speaking the contract, e.g. their Rust service's inference code. Its build is their
build command, run from their directory; their build tool decides what is up to date.

What the user's build cannot know on its own (where this machine's TensorFlow wheel and the
contract code shipped with tfinterop are) reaches it through environment variables
(``build_environment``, documented in docs/consumer-contract.md, "Your own consumer"); at run
time the TensorFlow libraries are put on ``LD_LIBRARY_PATH``, since the user's binary is not
installed beside the wheel and its rpath cannot point at it."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..paths import project_root
from ..project import ConsumerSpec
from ..tfenv import find_tensorflow
from .base import PHOTO_INPUT, PNG_INPUT, BuildError, BuildOutcome, Consumer
from .build_tools import run_build_step

SOURCES = "TFINTEROP_SOURCES"
"""The shipped consumer sources: ``c_consumer/src``, ``rust_consumer`` (the contract code)."""
CARGO_CONFIG = "TFINTEROP_CARGO_CONFIG"
"""A cargo ``--config`` file pointing tensorflow-sys at the wheel's libraries."""
TF_CFLAGS = "TFINTEROP_TF_CFLAGS"
TF_LDFLAGS = "TFINTEROP_TF_LDFLAGS"
TF_LIBRARY_DIR = "TFINTEROP_TF_LIBRARY_DIR"


def build_environment(build_dir: Path) -> dict[str, str]:
    """What a project consumer's build command gets on top of the user's environment."""
    from .rust import write_cargo_config

    try:
        tf = find_tensorflow()
    except UserError as exc:  # a build failure of this consumer, not of the whole run
        raise BuildError(str(exc)) from None
    environment = {
        SOURCES: str(project_root()),
        TF_CFLAGS: shlex.join(tf.c_flags()),
        TF_LDFLAGS: shlex.join(tf.link_flags()),
        TF_LIBRARY_DIR: tf.library_dir,
    }
    try:
        # The same file the built-in Rust consumer builds with: with the same build dir and
        # CARGO_TARGET_DIR, the tensorflow crate compiled for it is reused, not rebuilt.
        environment[CARGO_CONFIG] = str(write_cargo_config(build_dir, tf))
    except BuildError:
        pass  # no Rust toolchain: a C or other consumer does not need it
    return environment


@dataclass(frozen=True)
class ProjectConsumer(Consumer):
    spec: ConsumerSpec | None = None

    @classmethod
    def from_spec(cls, spec: ConsumerSpec) -> ProjectConsumer:
        if {PNG_INPUT, PHOTO_INPUT} <= spec.capabilities:
            raise UserError(
                f"project consumer {spec.name!r}: capabilities {PNG_INPUT} and {PHOTO_INPUT} "
                "exclude each other (both arrive as `image` plan records); keep one"
            )
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

    def process_environment(self) -> dict[str, str]:
        try:
            library_dir = find_tensorflow().library_dir
        except UserError:
            return {}
        inherited = os.environ.get("LD_LIBRARY_PATH")
        return {"LD_LIBRARY_PATH": os.pathsep.join(filter(None, [library_dir, inherited]))}

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        started = time.perf_counter()
        what = f"{self.name} consumer build"
        try:
            run_build_step(
                list(self._spec.build),
                what,
                env={**os.environ, **build_environment(build_dir)},
                cwd=self._spec.directory,
            )
        except OSError as exc:  # the build program or the directory does not exist
            raise BuildError(f"{what} failed: `{shlex.join(self._spec.build)}`: {exc}") from None
        return BuildOutcome(
            self.name, True, self._program(), time.perf_counter() - started,
            " ".join(self._spec.build),
        )  # fmt: skip
