"""``tfinterop new-consumer rust|c NAME``: a small program in the user's tree that speaks the
contract with the code shipped with tfinterop (plan parsing, npy I/O, result records, timers),
with one marked place for the user's own inference code, and the
``[tool.tfinterop.consumer.NAME]`` table that makes it a consumer of their project.

Each language is a set of Jinja2 templates (``templates/LANGUAGE``), files copied from the
shipped sources, and how the consumer table builds and runs it; the build finds this
machine's TensorFlow and the shipped sources through the environment a project consumer's
build gets (consumers/project.py, ``build_environment``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..consumers import ALL_CONSUMERS, FROZEN, PNG_INPUT, RESOLVES_SIGNATURES, SAVED_MODEL
from ..errors import UserError
from ..paths import project_root
from ..project import CONFIG_FILE, find_config, load_config

TEMPLATES = Path(__file__).parent / "templates"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
"""Also a Cargo package and binary name, a file name and a C string as it is."""


@dataclass(frozen=True)
class Language:
    name: str
    files: dict[str, str]
    """Written file (relative to the consumer's directory) -> its template."""
    build: tuple[str, ...]
    capabilities: tuple[str, ...]
    copied: dict[str, str] = field(default_factory=dict)
    """Written file -> a file of the shipped sources (``paths.project_root()``)."""
    executable: tuple[str, ...] = ()
    edit: str = ""
    """Where the user's inference code goes (printed after scaffolding)."""


LANGUAGES = {
    language.name: language
    for language in (
        Language(
            "rust",
            {
                "Cargo.toml": "rust/Cargo.toml.j2",
                "build.sh": "rust/build.sh.j2",
                "src/main.rs": "rust/src/main.rs.j2",
                "src/inference.rs": "rust/src/inference.rs.j2",
                ".gitignore": "rust/gitignore.j2",
            },
            ("sh", "build.sh"),
            (FROZEN, SAVED_MODEL, RESOLVES_SIGNATURES, PNG_INPUT),
            # The contract code's lock: the same dependency versions, so a shared
            # CARGO_TARGET_DIR reuses the crates compiled for the built-in consumer.
            copied={"Cargo.lock": "rust_consumer/Cargo.lock"},
            executable=("build.sh",),
            edit="src/inference.rs",
        ),
        Language(
            "c",
            {"main.c": "c/main.c.j2", "Makefile": "c/Makefile.j2", ".gitignore": "c/gitignore.j2"},
            ("make", "--no-print-directory"),
            (FROZEN, SAVED_MODEL),
            edit="main.c (the part marked YOUR INFERENCE CODE)",
        ),
    )
}


@dataclass
class Scaffold:
    """What ``new_consumer`` wrote, and the consumer table that declares it."""

    name: str
    language: Language
    directory: Path
    files: list[Path]
    table: str
    """The ``[tool.tfinterop.consumer.NAME]`` table (or ``[consumer.NAME]`` for a
    tfinterop.toml) with ``directory`` relative to the configuration file."""
    config: Path
    """The configuration file the table is for (found, else pyproject.toml or a new
    tfinterop.toml in the working directory)."""
    registered: Path | None = None
    """The configuration file the table was appended to (``--register``)."""


def check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"consumer name {name!r} must match {NAME_PATTERN.pattern} "
            "(it becomes a crate, binary and file name)"
        )
    if any(name == consumer.name for consumer in ALL_CONSUMERS):
        raise UserError(f"consumer name {name!r} is a built-in consumer's; choose another")


def language(name: str) -> Language:
    if name not in LANGUAGES:
        raise UserError(f"unknown language {name!r}; available: {', '.join(LANGUAGES)}")
    return LANGUAGES[name]


def consumer_table(name: str, lang: Language, directory: Path, config: Path) -> str:
    """The consumer's table for ``config`` (a pyproject.toml or a tfinterop.toml)."""
    header = "consumer" if config.name == CONFIG_FILE else "tool.tfinterop.consumer"
    relative = Path(os.path.relpath(directory.resolve(), config.parent.resolve())).as_posix()

    def toml_list(values: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{v}"' for v in values) + "]"

    return (
        f"[{header}.{name}]\n"
        f'description = "{name}: made by tfinterop new-consumer {lang.name}; '
        f'your code in {lang.edit.split(" ")[0]}"\n'
        f'directory = "{relative}"\n'
        f"build = {toml_list(lang.build)}\n"
        f'command = "bin/{name}"\n'
        f"capabilities = {toml_list(lang.capabilities)}\n"
    )


def new_consumer(
    language_name: str,
    name: str,
    directory: Path | None = None,
    *,
    force: bool = False,
    register: bool = False,
    cwd: Path | None = None,
) -> Scaffold:
    """Write the consumer into ``directory`` (default ``./NAME``); with ``register``, append
    its table to the project configuration (found from ``cwd`` upwards; else the
    ``pyproject.toml`` there, else a new ``tfinterop.toml``)."""
    lang = language(language_name)
    check_name(name)
    here = (cwd or Path.cwd()).resolve()
    target = (here / (directory or Path(name))).resolve()
    if target.exists() and not target.is_dir():
        raise UserError(f"{target} exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UserError(f"{target} already exists and is not empty (use --force to write into it)")
    config = find_config(here)
    if register and config is not None:
        if any(spec.name == name for spec in load_config(here).consumers):
            raise UserError(f"{config} already declares a consumer {name!r}")
    written = _write(lang, name, target)
    destination = config or (
        here / "pyproject.toml" if (here / "pyproject.toml").is_file() else here / CONFIG_FILE
    )
    table = consumer_table(name, lang, target, destination)
    scaffold = Scaffold(name, lang, target, written, table, destination)
    if register:
        _append(destination, table, here)
        scaffold.registered = destination
    return scaffold


def _write(lang: Language, name: str, target: Path) -> list[Path]:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined  # not at every CLI start

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    written = []
    for relative, template in lang.files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(environment.get_template(template).render(name=name), encoding="utf-8")
        written.append(path)
    for relative, shipped in lang.copied.items():
        path = target / relative
        shutil.copyfile(project_root() / shipped, path)
        written.append(path)
    for relative in lang.executable:
        path = target / relative
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return written


def _append(config: Path, table: str, cwd: Path) -> None:
    """Append ``table``; if the file then no longer loads, put it back and say why."""
    before = config.read_text(encoding="utf-8") if config.is_file() else None
    separator = "" if not before else "\n" if before.endswith("\n") else "\n\n"
    config.write_text((before or "") + separator + table, encoding="utf-8")
    try:
        load_config(cwd)
    except UserError as exc:
        if before is None:
            config.unlink()
        else:
            config.write_text(before, encoding="utf-8")
        raise UserError(f"not registered, {config} left as it was: {exc}") from None
