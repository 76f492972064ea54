"""What a consumer is: a program that speaks the one contract (docs/consumer-contract.md),
declared by its command, its build and its capabilities. The pipeline never asks a
consumer's language; it asks ``consumer.supports(capability)``."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .. import formats
from ..errors import UserError

# Capabilities a consumer may declare. Fixtures ``require`` them; cells of consumers lacking
# one become strict expected failures carrying the fixture's reason. The format names
# (frozen, saved_model, tflite; see formats.py) are capabilities too: what the consumer loads.
RESOLVES_SIGNATURES = "resolves_signatures"
"""Resolves signature keys to tensor names itself instead of using the harness's names."""
NON_UTF8_STRINGS = "non_utf8_strings"
"""Reads and writes DT_STRING elements that are not valid UTF-8."""
PNG_INPUT = "png_input"
"""Can decode a PNG into an NHWC float32 input itself (plan record ``image``)."""
PHOTO_INPUT = "photo_input"
"""Does its own preprocessing (decode, resize, normalise) of a photo a fixture declares for an
input (``Signature.photos``): gets the photo (plan record ``image``) instead of the array the
fixture preprocessed from it, so the cell compares the two preprocessings. Excludes
``png_input`` (both arrive as ``image`` records)."""
OBJECT_GRAPH = "object_graph"
"""Loads SavedModels through their SavedObjectGraph (``tf.saved_model.load``), restoring
variables object by object, not through the MetaGraph's saver and init op (the C API
loader, which the tensorflow crate uses too)."""
FETCHES_TENSORS = "fetches_tensors"
"""Fetches and feeds any tensor of a frozen graph by name, not only the signature's
(``tfinterop locate`` compares every intermediate tensor and feeds a node's inputs)."""
FETCHES_TFLITE_TENSORS = "fetches_tflite_tensors"
"""In ``tflite`` jobs, an output may name any tensor of the interpreter's main subgraph by
index (``#N``), not only the signature's: the interpreter keeps every intermediate tensor
(``tfinterop locate --format tflite`` maps them onto the frozen graph's nodes)."""
REFERENCE = "reference"
"""TensorFlow's own Python runtime: ``check`` compares every other consumer with it."""
INSTRUCTION_PROFILE = "instruction_profile"
"""A native program whose steady runs callgrind can count in minutes (``tfinterop bench``
profiles such consumers to explain a missed latency target; an interpreter that imports
TensorFlow would take far longer under valgrind)."""
LEAK_CHECK = "leak_check"
"""A native program valgrind memcheck runs in minutes with the project's suppressions
(``nox -s leaks``; docs/hardening.md)."""
KERNEL_REGISTRY = "kernel_registry"
"""Dumps its runtime's registered OpList and KernelList (``--registered-ops FILE
--registered-kernels FILE``), which ``inspect`` checks a model's ops against."""


RUNTIME_SWAP = "runtime_swap"
"""Links the TensorFlow C API dynamically through a RUNPATH, so the same binary runs against
another wheel's libraries with ``LD_LIBRARY_PATH`` (``--runtime VERSION``), no rebuild."""

KNOWN_CAPABILITIES = frozenset(
    {
        *(RESOLVES_SIGNATURES, NON_UTF8_STRINGS, PNG_INPUT, PHOTO_INPUT, OBJECT_GRAPH),
        FETCHES_TENSORS,
        *(FETCHES_TFLITE_TENSORS, REFERENCE, INSTRUCTION_PROFILE, LEAK_CHECK, KERNEL_REGISTRY),
        *(RUNTIME_SWAP, *formats.ALL),
    }
)
"""Every capability a consumer may declare (a project consumer's are checked against it)."""


class BuildError(UserError):
    exit_code = 3


@dataclass
class BuildOutcome:
    consumer: str
    built: bool
    """False when the fingerprint matched and nothing was done."""
    path: str
    seconds: float = 0.0
    detail: str = ""
    error: str = ""
    """Why the build failed (the pipeline's build step reports it instead of raising)."""
    shared: bool = False
    """Not compiled: installed from a build another environment made (the user cache)."""


@dataclass(frozen=True)
class Consumer:
    name: str
    description: str
    capabilities: frozenset[str] = field(default_factory=frozenset)
    opt_in: bool = field(default=False, kw_only=True)  # keyword: subclasses add positionals
    """Runs only when named (``-c NAME``) or in ``compat``'s matrix, not by default: an
    alternative binding of another consumer's code (its build alone costs minutes cold)."""

    def command(self, build_dir: Path) -> list[str]:
        raise NotImplementedError

    def missing(self, build_dir: Path) -> str | None:
        """Why this consumer cannot run (not built, not installed), or None."""
        program = self.command(build_dir)[0]
        if os.path.isabs(program):
            return (
                None
                if os.access(program, os.X_OK)
                else f"{program} is not built (run `tfinterop build`)"
            )
        return (
            None if shutil.which(program) else f"{program} is not on PATH (run `tfinterop build`)"
        )

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def family(self) -> str:
        """The registry name fixtures declare expectations for (``c`` for ``c@2.15.1``)."""
        return self.name

    @property
    def runtime(self) -> str | None:
        """The TensorFlow runtime version this consumer is bound to (None: its own)."""
        return None

    def process_environment(self) -> dict[str, str]:
        """Environment its processes need beyond the run's (e.g. another runtime's libraries)."""
        return {}

    def loader_environment(self, loader: str, share_loads: bool) -> dict[str, str]:
        """Environment variables for this consumer's process that choose how it loads
        SavedModels (``check --python-loader``) and whether jobs on one model may share a
        load; a consumer with one way to load needs none."""
        return {}

    def toolchain(self) -> dict[str, str | None]:
        """What builds this consumer, for the report's environment (compiler versions)."""
        return {}

    needs_build = False
    """True for consumers that `tfinterop build` compiles; they override ``build``."""

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        raise NotImplementedError(f"the {self.name} consumer has nothing to build")
