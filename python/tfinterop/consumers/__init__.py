"""Consumers: programs that speak the one contract (docs/consumer-contract.md).

A consumer is declared here by its command and its capabilities. The pipeline never asks a
consumer's language; it asks ``consumer.supports(capability)``.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..build import BuildOutcome

# Capabilities a consumer may declare. Fixtures ``require`` them; cells of consumers lacking
# one become strict expected failures carrying the fixture's reason.
FROZEN = "frozen"
SAVED_MODEL = "saved_model"
RESOLVES_SIGNATURES = "resolves_signatures"
"""Resolves signature keys to tensor names itself instead of using the harness's names."""
NON_UTF8_STRINGS = "non_utf8_strings"
"""Reads and writes DT_STRING elements that are not valid UTF-8."""
PNG_INPUT = "png_input"
"""Can decode a PNG into an NHWC float32 input itself (plan record ``image``)."""
OBJECT_GRAPH = "object_graph"
"""Loads SavedModels through their SavedObjectGraph (``tf.saved_model.load``), restoring
variables object by object, not through the MetaGraph's saver and init op (the C API
loader, which the tensorflow crate uses too)."""
TFLITE = "tflite"
INSTRUCTION_PROFILE = "instruction_profile"
"""A native program whose steady runs callgrind can count in minutes (``tfinterop bench``
profiles such consumers to explain a missed latency target; an interpreter that imports
TensorFlow would take far longer under valgrind)."""


@dataclass(frozen=True)
class Consumer:
    name: str
    description: str
    capabilities: frozenset[str] = field(default_factory=frozenset)

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

    needs_build = False
    """True for consumers that `tfinterop build` compiles; they override ``build``."""

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        raise NotImplementedError(f"the {self.name} consumer has nothing to build")


class PythonConsumer(Consumer):
    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, "-m", "tfinterop.consumers.python_runner"]


class TFLiteConsumer(Consumer):
    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, "-m", "tfinterop.consumers.tflite_runner"]


class CConsumer(Consumer):
    needs_build = True

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        from ..build import build_c

        return build_c(build_dir, force=force)

    def command(self, build_dir: Path) -> list[str]:
        from ..build import c_binary
        from ..tfenv import find_tensorflow

        return [str(c_binary(build_dir, find_tensorflow()))]


class ScriptsDirConsumer(Consumer):
    """A program installed into this Python environment's scripts dir (maturin bin wheels)."""

    program: str = ""

    def command(self, build_dir: Path) -> list[str]:
        scripts = Path(sysconfig.get_path("scripts"))
        return [str(scripts / self.program)]


class RustConsumer(ScriptsDirConsumer):
    program = "tfinterop-rust-consumer"
    needs_build = True

    def build(self, build_dir: Path, *, force: bool = False) -> BuildOutcome:
        from ..build import build_rust

        return build_rust(build_dir, force=force)


ALL_CONSUMERS: tuple[Consumer, ...] = (
    PythonConsumer(
        "python",
        "TensorFlow Python: v1 Session on frozen graphs, tf.saved_model.load on SavedModels (a v1 Session for TF1 ones, or when it fails)",
        frozenset(
            {FROZEN, SAVED_MODEL, RESOLVES_SIGNATURES, NON_UTF8_STRINGS, PNG_INPUT, OBJECT_GRAPH}
        ),
    ),
    RustConsumer(
        "rust",
        "tensorflow crate 0.17 (SavedModelBundle + get_signature)",
        frozenset({FROZEN, SAVED_MODEL, RESOLVES_SIGNATURES, PNG_INPUT, INSTRUCTION_PROFILE}),
    ),
    CConsumer(
        "c",
        "TensorFlow C API (TF_GraphImportGraphDef, TF_LoadSessionFromSavedModel)",
        frozenset({FROZEN, SAVED_MODEL, NON_UTF8_STRINGS, INSTRUCTION_PROFILE}),
    ),
    TFLiteConsumer(
        "tflite",
        "LiteRT interpreter (ai_edge_litert, else tf.lite.Interpreter) on .tflite conversions",
        frozenset({TFLITE, RESOLVES_SIGNATURES, PNG_INPUT}),
    ),
)


def buildable(consumers: list[Consumer] | None = None) -> list[Consumer]:
    """The consumers (of ``consumers``, default all) that `tfinterop build` compiles."""
    return [c for c in (ALL_CONSUMERS if consumers is None else consumers) if c.needs_build]


def by_name(names: list[str] | None) -> list[Consumer]:
    from ..errors import UserError

    if not names:
        return list(ALL_CONSUMERS)
    known = {c.name: c for c in ALL_CONSUMERS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown consumer(s) {', '.join(unknown)}; available: {', '.join(known)}")
    # Once each: a consumer named twice would run twice into the same run directory.
    return [known[n] for n in dict.fromkeys(names)]
