"""A user project's configuration: ``[tool.tfinterop]`` in ``pyproject.toml``, or a
``tfinterop.toml`` (the same keys at top level), found from the working directory upwards.

It gives defaults the command line overrides (fixture directories, default consumers, the
comparison tolerance, build directory, runtimes) and declares the project's own consumers:
programs speaking docs/consumer-contract.md, run and reported like the built-in ones.
Every mistake in it is one line naming the file and the key (exit 2).
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

CONFIG_FILE = "tfinterop.toml"
KEYS = ("fixtures", "default-consumers", "tolerance", "build-dir", "runtimes", "consumer")
CONSUMER_KEYS = ("command", "build", "capabilities", "description", "directory")


@dataclass(frozen=True)
class ConsumerSpec:
    """A project consumer as declared: its command (the plan and results options are
    appended), an optional build command, both run from ``directory``."""

    name: str
    command: tuple[str, ...]
    capabilities: frozenset[str]
    directory: Path
    build: tuple[str, ...] = ()
    description: str = ""


@dataclass
class ProjectConfig:
    path: Path | None = None
    """The file it came from (None: no configuration found)."""
    fixtures: list[Path] = field(default_factory=list)
    default_consumers: list[str] = field(default_factory=list)
    atol: float | None = None
    rtol: float | None = None
    build_dir: Path | None = None
    runtimes: list[str] = field(default_factory=list)
    consumers: list[ConsumerSpec] = field(default_factory=list)

    def where(self, key: str) -> str:
        """How ``env`` names a setting's origin."""
        assert self.path is not None
        table = "" if self.path.name == CONFIG_FILE else "[tool.tfinterop] "
        return f"{self.path} {table}{key}"


def find_config(start: Path) -> Path | None:
    """The nearest ``tfinterop.toml``, or ``pyproject.toml`` with a ``[tool.tfinterop]``
    table, in ``start`` or above it."""
    for directory in (start, *start.parents):
        own = directory / CONFIG_FILE
        if own.is_file():
            return own
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "tfinterop" in _read(pyproject).get("tool", {}):
            return pyproject
    return None


def load_config(start: Path | None = None) -> ProjectConfig:
    path = find_config((start or Path.cwd()).resolve())
    if path is None:
        return ProjectConfig()
    document = _read(path)
    table = document if path.name == CONFIG_FILE else document["tool"]["tfinterop"]
    return parse_config(table, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


def parse_config(table: Any, path: Path) -> ProjectConfig:
    if not isinstance(table, dict):
        raise UserError(f"{path}: [tool.tfinterop] must be a table")
    where = ProjectConfig(path).where
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UserError(f"{where(unknown[0])}: unknown key (known: {', '.join(KEYS)})")
    base = path.parent
    config = ProjectConfig(path)
    config.fixtures = [base / p for p in _strings(table, "fixtures", where)]
    config.default_consumers = _strings(table, "default-consumers", where)
    config.runtimes = _strings(table, "runtimes", where)
    if "build-dir" in table:
        if not isinstance(table["build-dir"], str):
            raise UserError(f"{where('build-dir')}: expected a path string")
        config.build_dir = base / table["build-dir"]
    if "tolerance" in table:
        config.atol, config.rtol = _tolerance(table["tolerance"], where("tolerance"))
    consumers = table.get("consumer", {})
    if not isinstance(consumers, dict):
        raise UserError(f"{where('consumer')}: expected tables [tool.tfinterop.consumer.NAME]")
    config.consumers = [
        _consumer(name, spec, base, where(f"consumer.{name}")) for name, spec in consumers.items()
    ]
    return config


def _strings(table: dict[str, Any], key: str, where: Any) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where(key)}: expected a list of strings, got {value!r}")
    return list(value)


def _tolerance(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, dict) or set(value) - {"atol", "rtol"}:
        raise UserError(f"{where}: expected a table with atol and/or rtol, got {value!r}")
    numbers = []
    for key in ("atol", "rtol"):
        number = value.get(key, 0.0)
        if isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0:
            raise UserError(f"{where}.{key}: expected a number >= 0, got {number!r}")
        numbers.append(float(number))
    return numbers[0], numbers[1]


def _command(value: Any, where: str) -> tuple[str, ...]:
    """A command as a list of arguments, or one string split as a POSIX shell would."""
    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise UserError(f"{where}: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise UserError(f"{where}: expected a command string or a list of strings")
    if not parts:
        raise UserError(f"{where}: the command is empty")
    return tuple(parts)


def _consumer(name: str, spec: Any, base: Path, where: str) -> ConsumerSpec:
    from .consumers.base import KNOWN_CAPABILITIES

    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a table")
    unknown = sorted(set(spec) - set(CONSUMER_KEYS))
    if unknown:
        raise UserError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(CONSUMER_KEYS)})")
    if "command" not in spec:
        raise UserError(f"{where}: no command (the program the plan is given to)")
    capabilities = spec.get("capabilities", [])
    if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
        raise UserError(f"{where}.capabilities: expected a list of strings")
    strange = sorted(set(capabilities) - KNOWN_CAPABILITIES)
    if strange:
        raise UserError(
            f"{where}.capabilities: unknown {strange[0]!r} "
            f"(known: {', '.join(sorted(KNOWN_CAPABILITIES))})"
        )
    directory = spec.get("directory", ".")
    description = spec.get("description", "")
    if not isinstance(directory, str) or not isinstance(description, str):
        raise UserError(f"{where}: directory and description must be strings")
    return ConsumerSpec(
        name,
        _command(spec["command"], f"{where}.command"),
        frozenset(capabilities),
        (base / directory).resolve(),
        _command(spec["build"], f"{where}.build") if "build" in spec else (),
        description or f"project consumer {name} ({base})",
    )
