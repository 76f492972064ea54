"""``tfinterop inspect MODEL --emit rust|c``: a minimal program that loads the model, feeds
one signature's inputs (zeros, with a marked place for real data) and prints every output.

The model facts come from the inspection (``program.py``: tag set, the SignatureDef's tensor
names, dtypes, shapes); each language is a set of Jinja2 templates (``templates/``) and an
entry in ``LANGUAGES``: the file printed on stdout, and the files ``--emit-dir`` writes (a
buildable Cargo crate; a C file with its Makefile).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ...errors import UserError
from ..analyse import Inspection
from .program import BATCH_SIZE, DTYPES, Program, program

TEMPLATES = Path(__file__).parent / "templates"
C_FLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]


@dataclass(frozen=True)
class Language:
    name: str
    main: str
    """The emitted program's source file (what stdout shows), relative to the emitted dir."""
    files: dict[str, str]
    """Every file ``--emit-dir`` writes -> its template."""
    run: str
    """How to build and run it, from the emitted dir."""
    library_links: bool = False
    """Write ``.tf-link/``: the wheel's libraries under the names tensorflow-sys links by."""


LANGUAGES = {
    language.name: language
    for language in (
        Language(
            "rust",
            "src/main.rs",
            {
                "src/main.rs": "main.rs.j2",
                "Cargo.toml": "Cargo.toml.j2",
                ".cargo/config.toml": "cargo-config.toml.j2",
            },
            "cargo run --release",
            library_links=True,
        ),
        Language("c", "main.c", {"main.c": "main.c.j2", "Makefile": "Makefile.j2"}, "make run"),
    )
}
LINK_DIR = ".tf-link"


@dataclass
class Emitted:
    """The rendered files of one program (paths relative to the emitted dir)."""

    program: Program
    language: Language
    files: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    """Symlinks to write: relative path -> absolute target."""

    @property
    def main(self) -> str:
        return self.files[self.language.main]

    def write(self, directory: Path) -> list[Path]:
        """Write every file (and link) under ``directory``; returns the files written."""
        written = []
        for relative, text in self.files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
        for relative, target in self.links.items():
            link = directory / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
        return written


def rust_str(text: str) -> str:
    """A Rust string literal: printable ASCII as is, the rest as ``\\u{..}``."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\u{{{ord(char):x}}}")
    return '"' + "".join(out) + '"'


def c_str(text: str) -> str:
    """A C string literal of the UTF-8 bytes: printable ASCII as is except ``?`` (trigraphs
    under -std=c11), the rest as three-digit octal escapes (which end on their own, unlike
    ``\\x``, so a following digit cannot join them)."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte <= 0x7E and char != "?":
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def toml_str(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is JSON's escaping


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # source code, not HTML: literals are escaped by the filters
    )
    environment.filters.update(rust_str=rust_str, c_str=c_str, toml_str=toml_str)
    return environment


def _toolchain(language: Language, name: str) -> dict[str, Any]:
    """Where the tensorflow-cpu wheel's C API is (placeholders when it is not installed)."""
    from ...tfenv import CC_LIBRARY, FRAMEWORK_LIBRARY, find_tensorflow

    try:
        tf = find_tensorflow()
    except UserError:
        return {
            "tf": {"version": "?", "library_dir": "$TF"},
            "tf_cflags": "-I$(TF)/include",
            "tf_ldflags": f"-L$(TF) -l:{CC_LIBRARY} -l:{FRAMEWORK_LIBRARY} -Wl,-rpath,$(TF)",
            "build_command": f"cc {' '.join(C_FLAGS)} -I$TF/include main.c -L$TF "
            f"-l:{CC_LIBRARY} -l:{FRAMEWORK_LIBRARY} -Wl,-rpath,$TF -o {name}",
            "links": {},
        }
    links = {}
    if language.library_links:
        links = {
            f"{LINK_DIR}/libtensorflow.so": os.path.join(tf.library_dir, CC_LIBRARY),
            f"{LINK_DIR}/libtensorflow_framework.so": os.path.join(
                tf.library_dir, FRAMEWORK_LIBRARY
            ),
        }
    return {
        "tf": tf,
        "tf_cflags": shlex.join(tf.c_flags()),
        "tf_ldflags": shlex.join(tf.link_flags()),
        "build_command": shlex.join(
            ["cc", *C_FLAGS, *tf.c_flags(), "main.c", *tf.link_flags(), "-o", name]
        ),
        "links": links,
    }


def emit(
    inspection: Inspection,
    language: str,
    signature: str | None = None,
    *,
    directory: Path | None = None,
    name: str | None = None,
) -> Emitted:
    """Render the program for ``signature`` of the inspected model in ``language``;
    ``directory`` (for ``--emit-dir``) is where the crate's link dir will be."""
    try:
        chosen = LANGUAGES[language]
    except KeyError:
        raise UserError(f"--emit {language}: choose one of {', '.join(LANGUAGES)}") from None
    spec = program(inspection, signature, name)
    toolchain = _toolchain(chosen, spec.name)
    what = f"signature {spec.signature}" if spec.saved_model else "the graph"
    batched = [p.key for p in spec.inputs if p.dims[:1] == [BATCH_SIZE]]
    context = {
        "program": spec,
        "what": what,
        "batched": ", ".join(batched),
        "strings": any(p.dtype.name == "string" for p in spec.inputs + spec.outputs),
        "dtypes": list(DTYPES.values()),
        "triple": _target_triple() if chosen.library_links else "",
        "link_dir": ((directory or Path(".")).resolve() / LINK_DIR),
        **toolchain,
    }
    environment = _environment()
    files = {
        path: _formatted(path, environment.get_template(template).render(context))
        for path, template in chosen.files.items()
    }
    return Emitted(spec, chosen, files, toolchain["links"])


def _formatted(path: str, source: str) -> str:
    """Rust sources as ``rustfmt`` lays them out (what a user's `cargo fmt --check` wants),
    when rustfmt is installed; otherwise as rendered (it compiles either way)."""
    import shutil
    import subprocess

    rustfmt = shutil.which("rustfmt")
    if not path.endswith(".rs") or rustfmt is None:
        return source
    done = subprocess.run(
        [rustfmt, "--edition", "2021", "--emit", "stdout"],
        input=source, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.stdout if done.returncode == 0 and done.stdout.strip() else source


def _target_triple() -> str:
    """The host's Rust target (its cargo config section); Linux's if rustc is missing,
    the only platform the wheel's C API is linked on here."""
    import platform

    from ...consumers.base import BuildError
    from ...consumers.rust import rust_target_triple

    try:
        return rust_target_triple()
    except BuildError:
        return f"{platform.machine()}-unknown-linux-gnu"


__all__ = ["LANGUAGES", "Emitted", "Language", "Program", "emit", "program"]
