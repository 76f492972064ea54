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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import UserError

FORMATS = ("frozen", "saved_model")
DEFAULT_SIGNATURE = "serving_default"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Tolerance:
    """Elementwise rule for floating outputs: ``|actual - expected| <= atol + rtol * |expected|``.

    This is numpy's ``isclose``/``assert_allclose`` rule; integers, bools and strings are
    always compared for equality.
    """

    atol: float = 0.0
    rtol: float = 0.0

    def __post_init__(self) -> None:
        if self.atol < 0 or self.rtol < 0:
            raise UserError(f"tolerances must be >= 0, got atol={self.atol} rtol={self.rtol}")

    def __str__(self) -> str:
        return f"atol={self.atol:g} rtol={self.rtol:g}"


@dataclass(frozen=True)
class Expectation:
    """A declared skip or (strict) expected failure for matching report cells."""

    kind: Literal["skip", "xfail"]
    reason: str
    consumer: str = "*"
    format: str = "*"
    signature: str = "*"

    def matches(self, consumer: str, fmt: str, signature: str) -> bool:
        return (
            fnmatch.fnmatchcase(consumer, self.consumer)
            and fnmatch.fnmatchcase(fmt, self.format)
            and fnmatch.fnmatchcase(signature, self.signature)
        )


def skip(
    reason: str, *, consumer: str = "*", format: str = "*", signature: str = "*"
) -> Expectation:
    return Expectation("skip", reason, consumer, format, signature)


def xfail(
    reason: str, *, consumer: str = "*", format: str = "*", signature: str = "*"
) -> Expectation:
    return Expectation("xfail", reason, consumer, format, signature)


@dataclass
class Signature:
    """One exported entry point: a ``tf.function`` with an ``input_signature`` returning a dict.

    The TensorSpec names become the input keys (``x`` -> ``serving_default_x:0`` in the
    SavedModel, ``x:0`` in the frozen graph); the dict keys become the output keys.
    """

    function: Any
    inputs: Mapping[str, np.ndarray]


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
    data: tuple[str, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    requires: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: Path = Path()

    @property
    def directory(self) -> Path:
        return self.source.parent

    def tolerance_for(self, output_key: str) -> Tolerance:
        return self.output_tolerances.get(output_key, self.tolerance)

    def expectation_for(self, consumer: str, fmt: str, signature: str) -> Expectation | None:
        for expectation in self.expectations:
            if expectation.matches(consumer, fmt, signature):
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
    data: Iterable[str] = (),
    expect: Iterable[Expectation] = (),
    requires: Mapping[str, str] | None = None,
) -> Callable[[Callable[[BuildContext], ExportSpec]], Fixture]:
    """Declare a fixture. ``requires`` maps consumer capabilities to the reason they matter:
    a consumer lacking one gets a strict expected failure with that reason."""
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"fixture name {name!r} must match {NAME_PATTERN.pattern} (it becomes a path)"
        )

    def decorate(build: Callable[[BuildContext], ExportSpec]) -> Fixture:
        return Fixture(
            name=name,
            build=build,
            seed=seed,
            tolerance=tolerance,
            output_tolerances=dict(tolerances or {}),
            data=tuple(data),
            expectations=tuple(expect),
            requires=dict(requires or {}),
            description=(build.__doc__ or "").strip().splitlines()[0] if build.__doc__ else "",
            source=Path(build.__code__.co_filename).resolve(),
        )

    return decorate


@dataclass
class BrokenFixture:
    """A fixture file that failed to load: only that fixture fails, the run goes on."""

    name: str
    source: Path
    error: str


def load_fixtures(
    directory: Path, names: Iterable[str] | None = None
) -> list[Fixture | BrokenFixture]:
    """Execute every ``*.py`` in ``directory`` (not starting with ``_``) and collect fixtures."""
    if not directory.is_dir():
        raise UserError(f"fixtures directory {directory} does not exist")
    found: list[Fixture | BrokenFixture] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.py")):
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
            line = traceback.extract_tb(exc.__traceback__)[-1].lineno if exc.__traceback__ else "?"
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
                raise UserError(
                    f"duplicate fixture name {item.name!r} in {path} and {seen[item.name]}; "
                    "fixture names must be unique"
                )
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
