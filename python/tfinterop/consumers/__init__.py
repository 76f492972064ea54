"""The consumer registry: every program that speaks the contract, with its capabilities.

Adding a consumer is one module here (its command, build and capabilities) and one entry in
``ALL_CONSUMERS``; nothing else in the package names a consumer. A project's own consumers
(declared in its configuration, project.py) join them through ``register_project``.
"""

from __future__ import annotations

from ..errors import UserError
from ..formats import FROZEN, SAVED_MODEL, TFLITE
from ..project import ConsumerSpec
from ..runtimes import Runtime
from .base import (
    FETCHES_TENSORS,
    FETCHES_TFLITE_TENSORS,
    INSTRUCTION_PROFILE,
    KERNEL_REGISTRY,
    LEAK_CHECK,
    NON_UTF8_STRINGS,
    OBJECT_GRAPH,
    PHOTO_INPUT,
    PNG_INPUT,
    REFERENCE,
    RESOLVES_SIGNATURES,
    RUNTIME_SWAP,
    BuildError,
    BuildOutcome,
    Consumer,
)
from .c import CConsumer
from .on_runtime import OnRuntime
from .python import PythonConsumer
from .rust import RustConsumer
from .tflite import TFLiteConsumer

__all__ = [
    "ALL_CONSUMERS", "FETCHES_TENSORS", "FETCHES_TFLITE_TENSORS", "FROZEN", "INSTRUCTION_PROFILE", "KERNEL_REGISTRY", "LATENCY_RATIOS",
    "LEAK_CHECK", "LOCATE_TIMED", "NON_UTF8_STRINGS", "OBJECT_GRAPH", "PER_RUN_GAPS", "PHOTO_INPUT", "PNG_INPUT", "REFERENCE",
    "RESOLVES_SIGNATURES", "RUNTIME_SWAP", "SAVED_MODEL", "TFLITE", "BuildError", "BuildOutcome", "Consumer",
    "buildable", "by_name", "first_with", "on_runtimes", "project_consumers", "register_project", "registered", "with_capability",
]  # fmt: skip

ALL_CONSUMERS: tuple[Consumer, ...] = (
    PythonConsumer(
        "python",
        "TensorFlow Python: v1 Session on frozen graphs, tf.saved_model.load on SavedModels (a v1 Session for TF1 ones, or when it fails)",
        frozenset(
            {
                *(FROZEN, SAVED_MODEL, RESOLVES_SIGNATURES, NON_UTF8_STRINGS, PNG_INPUT),
                *(OBJECT_GRAPH, REFERENCE, FETCHES_TENSORS),
            }
        ),
    ),
    RustConsumer(
        "rust",
        "tensorflow crate 0.17 (SavedModelBundle + get_signature)",
        frozenset(
            {
                FROZEN,
                SAVED_MODEL,
                RESOLVES_SIGNATURES,
                PNG_INPUT,
                INSTRUCTION_PROFILE,
                FETCHES_TENSORS,
                RUNTIME_SWAP,
            }
        ),
    ),
    RustConsumer(
        "rust-0.21",
        "tensorflow crate 0.21 (the rust consumer's code built against the newest crate, made for TF 2.13)",
        frozenset(
            {
                FROZEN,
                SAVED_MODEL,
                RESOLVES_SIGNATURES,
                PNG_INPUT,
                INSTRUCTION_PROFILE,
                FETCHES_TENSORS,
                RUNTIME_SWAP,
            }
        ),
        opt_in=True,
        manifest="rust_consumer/crate-0.21",
        binary="tfinterop-rust-consumer-021",
        toolchain_key="tensorflow_crate (rust-0.21)",
    ),
    CConsumer(
        "c",
        "TensorFlow C API (TF_GraphImportGraphDef, TF_LoadSessionFromSavedModel)",
        frozenset(
            {
                FROZEN,
                SAVED_MODEL,
                NON_UTF8_STRINGS,
                INSTRUCTION_PROFILE,
                LEAK_CHECK,
                KERNEL_REGISTRY,
                FETCHES_TENSORS,
                RUNTIME_SWAP,
            }
        ),
    ),
    TFLiteConsumer(
        "tflite",
        "LiteRT interpreter (ai_edge_litert, else tf.lite.Interpreter) on .tflite conversions",
        frozenset({TFLITE, RESOLVES_SIGNATURES, PNG_INPUT, FETCHES_TFLITE_TENSORS}),
    ),
)


LATENCY_RATIOS: tuple[tuple[str, str, float | None], ...] = (
    ("rust", "c", 1.05),
    ("c", "python", 1.0),
    ("rust", "python", None),
)
"""(numerator, denominator, target) p50 latency ratios `tfinterop bench` reports, against the
targets of issue "Performance" (None: reported, no target)."""

LOCATE_TIMED: tuple[str, ...] = ("rust", "c")
"""The consumers `tfinterop bench` times `locate` with (against the reference): the issue's
target is stated for C and Rust (crate 0.17) against Python."""

PER_RUN_GAPS: tuple[tuple[str, str, float], ...] = (("rust", "c", 5e-6),)
"""(consumer, baseline, limit in seconds): the per-run p50 difference `tfinterop bench`
measures on microsecond-scale cells over alternating processes (the Rust consumer runs the
same C API as the C consumer: what it adds per run must stay within the limit)."""


_PROJECT: list[Consumer] = []
"""The project's own consumers (``[tool.tfinterop.consumer.NAME]``), once registered."""


def register_project(specs: list[ConsumerSpec]) -> None:
    """Make the project configuration's consumers the registry's project part (replacing
    any registered before: one configuration per process at a time)."""
    from .project import ProjectConsumer

    taken = {c.name for c in ALL_CONSUMERS}
    for spec in specs:
        if spec.name in taken or "@" in spec.name:
            raise UserError(
                f"project consumer {spec.name!r}: the name of a built-in consumer, or with '@' "
                "(reserved for runtimes); rename it"
            )
    _PROJECT[:] = [ProjectConsumer.from_spec(spec) for spec in specs]


def project_consumers() -> tuple[Consumer, ...]:
    """The project's own consumers registered now."""
    return tuple(_PROJECT)


def registered() -> tuple[Consumer, ...]:
    """Every consumer: the built-in ones, then the project's."""
    return (*ALL_CONSUMERS, *_PROJECT)


def buildable(consumers: list[Consumer] | None = None) -> list[Consumer]:
    """The consumers (of ``consumers``, default all) that `tfinterop build` compiles."""
    return [c for c in (registered() if consumers is None else consumers) if c.needs_build]


def with_capability(capability: str, consumers: list[Consumer] | None = None) -> list[Consumer]:
    """The consumers (of ``consumers``, default all) that declare ``capability``."""
    return [c for c in (registered() if consumers is None else consumers) if c.supports(capability)]


def first_with(capability: str) -> Consumer:
    """The registry's consumer declaring ``capability`` (e.g. the ``check`` reference)."""
    found = with_capability(capability)
    if not found:
        raise UserError(f"no registered consumer declares {capability!r}")
    return found[0]


def by_name(names: list[str] | None) -> list[Consumer]:
    """The named consumers; none named: the default set (every consumer not ``opt_in``)."""
    if not names:
        return [c for c in registered() if not c.opt_in]
    known = {c.name: c for c in registered()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown consumer(s) {', '.join(unknown)}; available: {', '.join(known)}")
    # Once each: a consumer named twice would run twice into the same run directory.
    return [known[n] for n in dict.fromkeys(names)]


def on_runtimes(consumers: list[Consumer], runtimes: list[Runtime]) -> list[Consumer]:
    """``--runtime``: each consumer that can swap its C API runs once per runtime
    (``c@2.15.1``); the others (Python, TFLite) run once, on their own TensorFlow."""
    if not runtimes:
        return consumers
    bound: list[Consumer] = []
    for consumer in consumers:
        if consumer.supports(RUNTIME_SWAP):
            bound += [OnRuntime.bind(consumer, runtime) for runtime in runtimes]
        else:
            bound.append(consumer)
    return bound
