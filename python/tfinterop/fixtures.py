"""Declaring fixtures and loading them from ``fixtures/*.py``.

A fixture is one Python file holding one ``@fixture(...)``-decorated build function: the
name, seed, tolerances and any declared skip/expected failure sit next to the model code.
Fixture files are code and are executed when loaded; model files and tensors are data and
never are.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from . import formats as _formats
from .errors import UserError

# Aliases of formats.py kept public: user fixture files import them from here.
FORMATS = _formats.TENSORFLOW_FORMATS
"""Formats exported unless a fixture says otherwise."""
TFLITE = _formats.TFLITE
ALL_FORMATS = _formats.ALL
"""Every format the exporter writes; ``tflite`` is opt-in (not every graph converts)."""
DEFAULT_SIGNATURE = "serving_default"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
"""Signature keys, input names and output keys of fixtures: they become file and directory
names of the export and tensor names of the graphs, so ``../x`` or ``a/b`` is refused."""


def runtime_spec(spec: str) -> SpecifierSet | None:
    """A runtime range (PEP 440, e.g. ``<2.21`` or ``>=2.12,<2.16``); ``*`` is every runtime."""
    if spec.strip() == "*":
        return None
    try:
        return SpecifierSet(spec)
    except InvalidSpecifier:
        raise UserError(
            f"runtime range {spec!r} is not a version specifier (e.g. '<2.21', '>=2.12,<2.16')"
        ) from None


def runtime_version(runtime: str | None) -> str:
    """The TensorFlow a cell ran on: its consumer's runtime, else the pinned wheel's."""
    if runtime is not None:
        return runtime
    from .tfenv import find_tensorflow

    return find_tensorflow().version


def check_key(fixture_name: str, what: str, key: object) -> str:
    """``key`` if it matches ``KEY_PATTERN``, else a UserError naming the fixture and key."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise UserError(
            f"fixture {fixture_name}: {what} {key!r} must match {KEY_PATTERN.pattern} "
            "(it becomes a file and tensor name)"
        )
    return key


@dataclass(frozen=True)
class Tolerance:
    """Elementwise rule for floating outputs: ``|actual - expected| <= atol + rtol * |expected|``.

    This is numpy's ``isclose``/``assert_allclose`` rule; integers, bools and strings are
    always compared for equality.
    """

    atol: float = 0.0
    rtol: float = 0.0

    def __post_init__(self) -> None:
        # Written so NaN fails too: a NaN tolerance fails identical arrays, inf passes anything.
        if not (0 <= self.atol < float("inf") and 0 <= self.rtol < float("inf")):
            raise UserError(
                f"tolerances must be finite numbers >= 0, got atol={self.atol} rtol={self.rtol}"
            )

    def __str__(self) -> str:
        return f"atol={self.atol:g} rtol={self.rtol:g}"


@dataclass(frozen=True)
class Expectation:
    """A declared skip or (strict) expected failure for matching report cells."""

    kind: Literal["skip", "xfail", "incompatible"]
    """``incompatible`` is never declared: the runtime prediction (``runtimes``) makes it."""
    reason: str
    consumer: str = "*"
    format: str = "*"
    signature: str = "*"
    runtime: str = "*"
    """Runtime range the declaration holds for (PEP 440, ``<2.16``); ``*`` every runtime."""
    stage: str | None = None
    """``incompatible`` only: the job stage the cell must fail at (``load``, ``run``)."""

    def __post_init__(self) -> None:
        runtime_spec(self.runtime)  # refuse a malformed range where it is declared

    def matches(self, consumer: str, fmt: str, signature: str, runtime: str | None = None) -> bool:
        if not (
            fnmatch.fnmatchcase(consumer, self.consumer)
            and fnmatch.fnmatchcase(fmt, self.format)
            and fnmatch.fnmatchcase(signature, self.signature)
        ):
            return False
        spec = runtime_spec(self.runtime)
        return spec is None or spec.contains(runtime_version(runtime), prereleases=True)


def skip(
    reason: str, *, consumer: str = "*", format: str = "*", signature: str = "*",
    runtime: str = "*",
) -> Expectation:  # fmt: skip
    return Expectation("skip", reason, consumer, format, signature, runtime)


def xfail(
    reason: str, *, consumer: str = "*", format: str = "*", signature: str = "*",
    runtime: str = "*",
) -> Expectation:  # fmt: skip
    """A strict expected failure; ``runtime="<2.16"`` limits it to cells on those runtimes."""
    return Expectation("xfail", reason, consumer, format, signature, runtime)


@dataclass(frozen=True)
class ExporterRange:
    """The TensorFlow versions that can export a fixture (``interop --export-tf``): cells of
    an exporter outside the range are ``skip`` with the reason; ``*`` is every version."""

    range: str = "*"
    reason: str = ""

    def __post_init__(self) -> None:
        runtime_spec(self.range)  # refuse a malformed range where it is declared

    def contains(self, version: str) -> bool:
        spec = runtime_spec(self.range)
        return spec is None or spec.contains(version, prereleases=True)

    def why_not(self, version: str) -> str:
        """The skip reason of an exporter ``version`` outside the range."""
        because = f": {self.reason}" if self.reason else ""
        return f"not exported by TensorFlow {version}: the fixture declares exporters {self.range}{because}"


def exported_by(range: str, reason: str) -> ExporterRange:
    """``@fixture(..., exporters=exported_by(">=2.16", "a Keras 3 model"))``."""
    return ExporterRange(range, reason)


@dataclass(frozen=True)
class Requirement:
    """A consumer capability some cells need; consumers lacking it get a strict xfail.

    ``format``/``signature`` are globs over the cell (the signature is the report label,
    ``predict@serve,gpu`` for a tag set other than ``serve``)."""

    capability: str
    reason: str
    format: str = "*"
    signature: str = "*"

    def applies(self, fmt: str, signature: str) -> bool:
        return fnmatch.fnmatchcase(fmt, self.format) and fnmatch.fnmatchcase(
            signature, self.signature
        )


def require(
    capability: str, reason: str, *, format: str = "*", signature: str = "*"
) -> Requirement:
    return Requirement(capability, reason, format, signature)


@dataclass
class Signature:
    """One exported entry point: a ``tf.function`` with an ``input_signature`` returning a dict.

    The TensorSpec names become the input keys (``x`` -> ``serving_default_x:0`` in the
    SavedModel, ``x:0`` in the frozen graph); the dict keys become the output keys.
    """

    function: Any
    inputs: Mapping[str, np.ndarray]
    images: Mapping[str, str | Path] = field(default_factory=dict)
    """Input key -> PNG file. The exporter decodes it with pillow (RGB, float32
    ``[1, H, W, 3]``, 0..255) into the input and ships the PNG, so consumers with the
    ``png_input`` capability decode it themselves (plan record ``image``)."""
    photos: Mapping[str, str | Path] = field(default_factory=dict)
    """Input key -> the photo the fixture made that input's array from (decoded, resized,
    normalised with pillow, say: the reference's preprocessing). Consumers declaring
    ``photo_input`` get the photo instead (plan record ``image``) and preprocess it with their
    own code; the others get the array. The cell compares the two preprocessings."""
    frozen_function: Any = None
    """Freeze this function instead (same inputs and outputs), for state a GraphDef cannot
    hold as it is, e.g. a lookup table filled from an asset file."""


@dataclass
class ExportSpec:
    """What a fixture's build function returns."""

    module: Any
    """The object owning the variables: a ``tf.Module`` or a Keras model."""
    signatures: dict[str, Signature]
    formats: tuple[str, ...] = FORMATS
    saved_model_writer: Callable[[str], None] | None = None
    """Writes the SavedModel itself (TF1 builders, custom assets); default: tf.saved_model."""
    saved_model_tags: tuple[str, ...] = ("serve",)
    tag_sets: tuple[tuple[str, ...], ...] = ()
    """Several MetaGraphs (TF1 builders): every tag set becomes cases for the signatures it
    holds; default: just ``saved_model_tags``."""
    lower_control_flow: bool = True
    """Frozen graph: lower While/If to v1 Switch/Merge (True) or keep functional control flow
    and the function library (False)."""

    @property
    def all_tag_sets(self) -> tuple[tuple[str, ...], ...]:
        return self.tag_sets or (tuple(self.saved_model_tags),)

    @classmethod
    def single(
        cls, module: Any, function: Any, inputs: Mapping[str, np.ndarray], **kw: Any
    ) -> ExportSpec:
        return cls(module=module, signatures={DEFAULT_SIGNATURE: Signature(function, inputs)}, **kw)


@dataclass
class BuildContext:
    """Handed to a fixture's build function: the seed, a seeded RNG and its data files."""

    fixture: Fixture
    rng: np.random.Generator

    @property
    def seed(self) -> int:
        return self.fixture.seed

    def data_path(self, relative: str) -> Path:
        if relative not in self.fixture.data:
            raise UserError(
                f"fixture {self.fixture.name}: {relative!r} is not declared in data=(...); "
                "declare it so it is part of the cache key"
            )
        return self.fixture.directory / relative


@dataclass
class Fixture:
    name: str
    build: Callable[[BuildContext], ExportSpec]
    seed: int
    tolerance: Tolerance
    output_tolerances: dict[str, Tolerance] = field(default_factory=dict)
    runtime_tolerances: dict[str, Tolerance | dict[str, Tolerance]] = field(default_factory=dict)
    """Runtime range -> tolerance (or keys as in ``output_tolerances``) for cells that ran
    on such a runtime; first matching range wins, then the usual lookup."""
    data: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    requirements: tuple[Requirement, ...] = ()
    description: str = ""
    source: Path = Path()
    exporters: ExporterRange = field(default_factory=ExporterRange)
    """Which TensorFlow versions can export it (``interop --export-tf``)."""

    @property
    def directory(self) -> Path:
        return self.source.parent

    @property
    def requires(self) -> dict[str, str]:
        """Capabilities every cell needs (requirements not narrowed to a format/signature)."""
        return {
            r.capability: r.reason
            for r in self.requirements
            if r.format == "*" and r.signature == "*"
        }

    def requirements_for(self, fmt: str, signature: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for requirement in self.requirements:
            if requirement.applies(fmt, signature):
                found.setdefault(requirement.capability, requirement.reason)
        return found

    def tolerance_for(
        self, output_key: str, fmt: str | None = None, runtime: str | None = None
    ) -> Tolerance:
        """Most specific first: ``FORMAT:OUTPUT``, ``FORMAT:*``, ``OUTPUT``, the default;
        a runtime range matching the cell's runtime is consulted before all of them."""
        keys = ([f"{fmt}:{output_key}", f"{fmt}:*"] if fmt else []) + [output_key]
        if self.runtime_tolerances:
            version = runtime_version(runtime)
            for spec, entry in self.runtime_tolerances.items():
                ranged = runtime_spec(spec)
                if ranged is not None and not ranged.contains(version, prereleases=True):
                    continue
                if isinstance(entry, Tolerance):
                    return entry
                for key in [*keys, "*"]:
                    if key in entry:
                        return entry[key]
        for key in keys:
            if key in self.output_tolerances:
                return self.output_tolerances[key]
        return self.tolerance

    def expectation_for(
        self, consumer: str, fmt: str, signature: str, runtime: str | None = None
    ) -> Expectation | None:
        for expectation in self.expectations:
            if expectation.matches(consumer, fmt, signature, runtime):
                return expectation
        return None

    def source_digest(self) -> str:
        """Hash of the fixture file and its declared data files (part of the export cache key)."""
        digest = hashlib.sha256()
        digest.update(self.source.read_bytes())
        for relative in sorted(self.data):
            path = self.directory / relative
            digest.update(relative.encode())
            try:
                digest.update(path.read_bytes())
            except FileNotFoundError:
                raise UserError(
                    f"fixture {self.name}: declared data file {path} is missing"
                ) from None
        return digest.hexdigest()


def fixture(
    name: str,
    *,
    seed: int,
    tolerance: Tolerance,
    tolerances: Mapping[str, Tolerance] | None = None,
    runtime_tolerances: Mapping[str, Tolerance | Mapping[str, Tolerance]] | None = None,
    data: Iterable[str] = (),
    expect: Iterable[Expectation] = (),
    requires: Mapping[str, str] | Iterable[Requirement] | None = None,
    exporters: str | ExporterRange = "*",
) -> Callable[[Callable[[BuildContext], ExportSpec]], Fixture]:
    """Declare a fixture.

    ``requires`` maps consumer capabilities to the reason they matter (or lists
    ``require(capability, reason, format=..., signature=...)`` for some cells only): a
    consumer lacking one gets a strict expected failure with that reason. ``tolerances`` keys
    are an output key, ``FORMAT:OUTPUT`` or ``FORMAT:*`` (e.g. ``"tflite:*"``).
    ``runtime_tolerances`` maps a runtime range (``"<2.21"``) to a tolerance, or to keys as
    in ``tolerances``, for cells run on such a runtime (``--runtime``): drift on an older
    libtensorflow is declared here, with the measured numbers, never absorbed; they also hold
    for the exports of such a TensorFlow (``--export-tf``) run on the pinned one (not for
    ``.tflite`` cells, which run LiteRT's kernels).
    ``exporters`` is the TensorFlow range that can export the fixture (``">=2.16"``, or
    ``exported_by(">=2.16", reason)``): under ``--export-tf`` with a version outside it, the
    fixture's cells are ``skip`` with the reason instead of an export error."""
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"fixture name {name!r} must match {NAME_PATTERN.pattern} (it becomes a path)"
        )

    ranged = _runtime_tolerances(runtime_tolerances)  # refused here, at the declaration
    exporter_range = exporters if isinstance(exporters, ExporterRange) else ExporterRange(exporters)

    def decorate(build: Callable[[BuildContext], ExportSpec]) -> Fixture:
        return Fixture(
            name=name,
            build=build,
            seed=seed,
            tolerance=tolerance,
            output_tolerances=dict(tolerances or {}),
            runtime_tolerances=ranged,
            data=tuple(data),
            expectations=tuple(expect),
            requirements=_requirements(requires),
            description=(build.__doc__ or "").strip().splitlines()[0] if build.__doc__ else "",
            source=Path(build.__code__.co_filename).resolve(),
            exporters=exporter_range,
        )

    return decorate


def _runtime_tolerances(
    given: Mapping[str, Tolerance | Mapping[str, Tolerance]] | None,
) -> dict[str, Tolerance | dict[str, Tolerance]]:
    found: dict[str, Tolerance | dict[str, Tolerance]] = {}
    for spec, entry in (given or {}).items():
        runtime_spec(spec)
        found[spec] = entry if isinstance(entry, Tolerance) else dict(entry)
    return found


def _requirements(
    requires: Mapping[str, str] | Iterable[Requirement] | None,
) -> tuple[Requirement, ...]:
    if requires is None:
        return ()
    if isinstance(requires, Mapping):
        return tuple(Requirement(c, r) for c, r in requires.items())
    found = tuple(requires)
    if not all(isinstance(r, Requirement) for r in found):
        raise UserError("requires= takes {capability: reason} or require(...) entries")
    return found


@dataclass
class BrokenFixture:
    """A fixture file that failed to load: only that fixture fails, the run goes on."""

    name: str
    source: Path
    error: str


def _shown(path: Path, directories: list[Path]) -> str:
    """A fixture file as messages name it: its name, its path once there are several dirs."""
    return path.name if len(directories) == 1 else str(path)


def load_fixtures(
    directory: Path | Sequence[Path], names: Iterable[str] | None = None
) -> list[Fixture | BrokenFixture]:
    """Execute every ``*.py`` in ``directory`` (or each of several, in order; not starting
    with ``_``) and collect fixtures. Names are unique across all the directories."""
    directories = [directory] if isinstance(directory, Path) else list(directory)
    for each in directories:
        if not each.is_dir():
            raise UserError(f"fixtures directory {each} does not exist")
    found: list[Fixture | BrokenFixture] = []
    seen: dict[str, Path] = {}
    files = [path for each in directories for path in sorted(each.glob("*.py"))]
    for path in files:
        if path.name.startswith("_"):
            continue
        module_name = f"tfinterop_fixture_{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:  # a broken fixture file must not stop the others
            # The innermost line of this file (a SyntaxError has no frame in it: its own line).
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
            line = frames[-1].lineno if frames else getattr(exc, "lineno", None) or "?"
            found.append(
                BrokenFixture(path.stem, path, f"{path.name}:{line}: {type(exc).__name__}: {exc}")
            )
            continue
        declared = [value for value in vars(module).values() if isinstance(value, Fixture)]
        if not declared:
            found.append(BrokenFixture(path.stem, path, f"{path.name} declares no @fixture"))
            continue
        for item in declared:
            if item.name in seen:
                # Which of the two was meant is unknowable: both fail, every other fixture runs.
                error = (
                    f"duplicate fixture name {item.name!r} in {_shown(path, directories)} and "
                    f"{_shown(seen[item.name], directories)}; fixture names must be unique"
                )
                index = next(i for i, f in enumerate(found) if f.name == item.name)
                found[index] = BrokenFixture(item.name, path, error)
                continue
            seen[item.name] = path
            found.append(item)
    if names is not None:
        wanted = list(names)
        unknown = sorted(set(wanted) - {f.name for f in found})
        if unknown:
            raise UserError(
                f"unknown fixture(s) {', '.join(unknown)}; available: {', '.join(sorted(seen))}"
            )
        found = [f for f in found if f.name in wanted]
    return found


def shard_fixtures(
    fixtures: list[Fixture | BrokenFixture], index: int, count: int
) -> list[Fixture | BrokenFixture]:
    """The ``index``-th (1-based) of ``count`` slices: round-robin over the sorted names, so
    every fixture lands in exactly one shard and each shard has the same number ±1."""
    ordered = sorted(fixtures, key=lambda f: f.name)
    return [f for position, f in enumerate(ordered) if position % count == index - 1]


@dataclass
class PrebuiltCase:
    """One entry point of a prebuilt model; files are declared data (contract encoding)."""

    signature: str
    """Signature key (SavedModel) or ``-`` (frozen graph)."""
    inputs: dict[str, tuple[str, str]]
    """Input key -> (graph tensor, data file)."""
    outputs: dict[str, tuple[str, str]]
    """Output key -> (graph tensor, data file holding the reference output)."""


@dataclass
class PrebuiltSpec:
    """What ``build()`` returns for a model exported elsewhere (``tfinterop check
    --save-fixture`` writes such fixtures): the model file(s), inputs and reference outputs
    are declared data, copied into the export as they are, not re-exported or recomputed."""

    format: str
    """``saved_model`` or ``frozen``."""
    model: str
    """Data path of the SavedModel directory or the GraphDef file."""
    cases: list[PrebuiltCase]
    tags: tuple[str, ...] = ("serve",)
