"""A native consumer bound to another TensorFlow runtime: the same program, started with that
wheel's C API on ``LD_LIBRARY_PATH`` (see ``runtimes``). Its cells are ``c@2.15.1``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..runtimes import Runtime, RuntimeInstallError, ensure_installed
from .base import KERNEL_REGISTRY, BuildError, BuildOutcome, Consumer


@dataclass(frozen=True)
class OnRuntime(Consumer):
    base: Consumer | None = None
    bound: Runtime | None = None

    @classmethod
    def bind(cls, base: Consumer, runtime: Runtime) -> OnRuntime:
        return cls(
            f"{base.name}@{runtime.version}",
            f"{base.description}, on TensorFlow {runtime.version}'s C API",
            # Its runtime's registry is dumped through `runtimes`, not by this consumer.
            base.capabilities - {KERNEL_REGISTRY},
            base,
            runtime,
            opt_in=base.opt_in,
        )

    @property
    def _base(self) -> Consumer:
        assert self.base is not None and self.bound is not None
        return self.base

    @property
    def _runtime(self) -> Runtime:
        assert self.bound is not None
        return self.bound

    @property
    def family(self) -> str:
        return self._base.family

    @property
    def runtime(self) -> str | None:
        return self._runtime.version

    needs_build = True
    """Builds its program (a no-op when the base consumer is up to date) and installs the
    runtime's wheel once per machine."""

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        started = time.perf_counter()
        outcome = self._base.build(build_dir, force=force) if self._base.needs_build else None
        try:
            installed = ensure_installed(self._runtime)
        except RuntimeInstallError as exc:
            raise BuildError(str(exc)) from None
        return BuildOutcome(
            self.name,
            bool(outcome and outcome.built) or installed,
            outcome.path if outcome else "",
            time.perf_counter() - started,
            f"TensorFlow {self._runtime.version} installed" if installed else "",
        )

    def command(self, build_dir: Path) -> list[str]:
        return self._base.command(build_dir)

    def missing(self, build_dir: Path) -> str | None:
        if not self._runtime.installed():
            return (
                f"TensorFlow runtime {self._runtime.version} is not installed "
                f"(run `tfinterop build --runtime {self._runtime.version}`)"
            )
        return self._base.missing(build_dir)

    def process_environment(self) -> dict[str, str]:
        return {**self._base.process_environment(), **self._runtime.environment()}

    def loader_environment(self, loader: str, share_loads: bool) -> dict[str, str]:
        return self._base.loader_environment(loader, share_loads)

    def toolchain(self) -> dict[str, str | None]:
        return {**self._base.toolchain(), "runtime": self._runtime.version}
