"""What the consumers' libtensorflow registers: ops (``OpList``) and kernels (``KernelList``).

The native consumers link the same wheel's C API (``libtensorflow_cc.so.2``), so the
consumer declaring ``KERNEL_REGISTRY`` is asked (``--registered-ops``/``--registered-kernels``,
which call ``TF_GetAllOpList``/``TF_GetAllRegisteredKernels``) rather than Python's own
registry: that is the library a deployment ships. The dump is cached next to the build, keyed
by the consumer's program. A model op missing from the OpList fails at load with "Op type not registered"; an
op registered without a CPU (or DEFAULT) kernel fails at run time with "No OpKernel was
registered to support Op".
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..runtimes import Runtime

CPU_DEVICES = frozenset({"CPU", "DEFAULT"})
"""A DEFAULT kernel runs on any device (NoOp has only DEFAULT ones)."""
DUMP_TIMEOUT_S = 120.0


@dataclass
class Registry:
    """Ops and kernel device types registered in one libtensorflow."""

    source: str
    """What was asked, e.g. the consumer's program and the wheel's library dir."""
    tf_version: str
    op_defs: dict[str, Any]
    """Op name -> OpDef proto."""
    kernel_devices: dict[str, frozenset[str]] = field(default_factory=dict)
    kernel_defs: dict[str, list[Any]] = field(default_factory=dict)
    """Op name -> its KernelDef protos (device, label, attr constraints); see ``compat``."""

    def has_cpu_kernel(self, op: str) -> bool:
        return bool(self.kernel_devices.get(op, frozenset()) & CPU_DEVICES)


@dataclass
class KernelProblem:
    op: str
    kind: str
    """``not_registered`` or ``no_cpu_kernel``."""
    where: list[str]
    """``graph`` and/or function names using the op."""
    devices: list[str] = field(default_factory=list)

    @property
    def predicted_error(self) -> str:
        if self.kind == "not_registered":
            return f"Op type not registered '{self.op}' in binary"
        devices = ", ".join(self.devices) or "none"
        return (
            f"No OpKernel was registered to support Op '{self.op}' "
            f"(kernels exist for devices: {devices})"
        )

    def describe(self) -> str:
        used = ", ".join(self.where[:3]) + (
            f" (+{len(self.where) - 3} more)" if len(self.where) > 3 else ""
        )
        when = "loading" if self.kind == "not_registered" else "running"
        return f'{self.op} (used in {used}): {when} will fail with "{self.predicted_error}"'

    def as_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "kind": self.kind,
            "where": self.where,
            "devices": self.devices,
            "predicted_error": self.predicted_error,
        }


def _registry_paths(build_dir: Path, binary: Path, runtime: str | None) -> tuple[Path, Path, Path]:
    directory = build_dir / "registry" / binary.parent.name
    if runtime is not None:
        directory = directory / f"runtime-{runtime}"
    return directory / "ops.pb", directory / "kernels.pb", directory / "stamp"


def _stamp(binary: Path, libraries: Path) -> str:
    info = binary.stat()
    library = (libraries / "libtensorflow_cc.so.2").stat()
    return f"{binary}\n{info.st_mtime_ns}\n{info.st_size}\n{library.st_size}\n"


def dump_registry(build_dir: Path, runtime: Runtime | None = None) -> tuple[Path, Path, str, str]:
    """Ask the built ``KERNEL_REGISTRY`` consumer for its OpList and KernelList (cached), on
    the pinned wheel or on ``runtime``'s C API; returns their files, a description of what
    was asked, and the TensorFlow version.

    Raises UserError when that consumer is not built, the runtime is not installed, or the
    dump fails."""
    from ..consumers import KERNEL_REGISTRY, first_with
    from ..tfenv import find_tensorflow

    tf = find_tensorflow()
    consumer = first_with(KERNEL_REGISTRY)
    program = consumer.command(build_dir)
    binary = Path(shutil.which(program[0]) or program[0])  # the stamp keys on the file
    missing = consumer.missing(build_dir)
    if missing:
        raise UserError(missing)
    bound = runtime if runtime is not None and not runtime.pinned else None
    if bound is not None and not bound.installed():
        raise UserError(
            f"TensorFlow runtime {bound.version} is not installed "
            f"(run `tfinterop build --runtime {bound.version}`)"
        )
    libraries = bound.library_dir if bound is not None else Path(tf.library_dir)
    version = bound.version if bound is not None else tf.version
    ops_path, kernels_path, stamp_path = _registry_paths(
        build_dir, binary, version if bound is not None else None
    )
    stamp = _stamp(binary, libraries)
    source = f"{binary} (links {libraries}, TensorFlow {version})"
    if (
        ops_path.exists()
        and kernels_path.exists()
        and stamp_path.exists()
        and stamp_path.read_text() == stamp
    ):
        return ops_path, kernels_path, source, version
    ops_path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{os.getpid()}"
    ops_tmp = ops_path.with_name(ops_path.name + suffix)
    kernels_tmp = kernels_path.with_name(kernels_path.name + suffix)
    command = [
        *program,
        "--registered-ops",
        str(ops_tmp),
        "--registered-kernels",
        str(kernels_tmp),
    ]
    environment = {**os.environ, **consumer.process_environment(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if bound is not None:
        environment.update(bound.environment())
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=DUMP_TIMEOUT_S,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"`{' '.join(command)}` timed out after {DUMP_TIMEOUT_S:g}s") from None
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise UserError(f"`{' '.join(command)}` exited {result.returncode}: {tail}")
    os.replace(ops_tmp, ops_path)
    os.replace(kernels_tmp, kernels_path)
    stamp_path.write_text(stamp)
    return ops_path, kernels_path, source, version


def load_registry(build_dir: Path, runtime: Runtime | None = None) -> Registry:
    """The registry of the consumers' libtensorflow, or of ``runtime``'s (see module doc).
    Raises UserError.

    The OpList/KernelList classes are built from the wheel's descriptors
    (``savedmodel.proto_class``): the 2-3 s ``import tensorflow`` would delay every consumer
    that ``check`` starts after inspecting."""
    ops_path, kernels_path, source, version = dump_registry(build_dir, runtime)
    return registry_from_dump(ops_path, kernels_path, source, version)


def registry_from_dump(
    ops_path: Path, kernels_path: Path, source: str, tf_version: str
) -> Registry:
    """A Registry from a serialized OpList and KernelList (``--registered-ops`` and
    ``--registered-kernels`` of the C consumer, whichever libtensorflow it ran with)."""
    from .savedmodel import proto_class

    op_list = proto_class("tensorflow.OpList", "tensorflow/core/framework/op_def.proto")()
    op_list.ParseFromString(ops_path.read_bytes())
    kernel_list = proto_class(
        "tensorflow.KernelList", "tensorflow/core/framework/kernel_def.proto"
    )()
    kernel_list.ParseFromString(kernels_path.read_bytes())
    devices: dict[str, set[str]] = {}
    kernel_defs: dict[str, list[Any]] = {}
    for kernel in kernel_list.kernel:
        devices.setdefault(kernel.op, set()).add(kernel.device_type)
        kernel_defs.setdefault(kernel.op, []).append(kernel)
    return Registry(
        source=source,
        tf_version=tf_version,
        op_defs={op.name: op for op in op_list.op},
        kernel_devices={op: frozenset(d) for op, d in devices.items()},
        kernel_defs=kernel_defs,
    )


def check_ops(uses: dict[str, Iterable[str]], registry: Registry) -> list[KernelProblem]:
    """``uses`` maps each op type to where it is used; returns the ops that will not load/run."""
    problems = []
    for op in sorted(uses):
        where = sorted(set(uses[op]), key=lambda w: (w != "graph", w))
        if op not in registry.op_defs:
            problems.append(KernelProblem(op, "not_registered", where))
        elif not registry.has_cpu_kernel(op):
            devices = sorted(registry.kernel_devices.get(op, frozenset()))
            problems.append(KernelProblem(op, "no_cpu_kernel", where, devices))
    return problems
