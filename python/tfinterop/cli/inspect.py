"""``tfinterop inspect PATH``: a model's signatures, ops and missing kernels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from . import options


def add_parser(sub: Any) -> None:
    inspect_cmd = sub.add_parser(
        "inspect", help="a SavedModel's or graph's inputs, outputs, ops and missing kernels"
    )
    inspect_cmd.add_argument("path", type=Path, help="SavedModel directory or GraphDef file")
    inspect_cmd.add_argument("--json", action="store_true", help="print JSON")
    inspect_cmd.add_argument(
        "--no-kernels", action="store_true", help="skip asking the C consumer's libtensorflow"
    )
    inspect_cmd.add_argument(
        "--runtime",
        action="append",
        dest="runtimes",
        metavar="VERSION",
        help="predict whether the model loads and runs on this tensorflow-cpu runtime's C API "
        "(its own op registry; repeatable; installed once into the user cache)",
    )
    inspect_cmd.add_argument(
        "--emit",
        choices=("rust", "c"),
        default=None,
        help="print a minimal program (Rust: tensorflow crate 0.17; C: the C API) that loads "
        "the model, feeds the signature's inputs zeros and prints every output",
    )
    inspect_cmd.add_argument(
        "--signature", default=None, metavar="KEY", help="the signature --emit runs "
        "(default: serving_default, or the model's only one)",
    )  # fmt: skip
    inspect_cmd.add_argument(
        "--emit-dir", type=Path, default=None, metavar="DIR",
        help="with --emit: write a buildable project there instead (Rust: Cargo.toml, "
        "src/main.rs, .cargo/config.toml linking this environment's TensorFlow wheel; "
        "C: main.c and a Makefile)",
    )  # fmt: skip
    options.common(inspect_cmd)


def cmd_inspect(args: argparse.Namespace, console: Console) -> int:
    options.apply_environment(None)
    if args.emit or args.emit_dir or args.signature:
        return _emit(args, console)
    import json

    from ..inspect import inspect_model, render

    registries = []
    if args.runtimes:
        from ..errors import UserError
        from ..inspect.kernels import load_registry
        from ..runtimes import RuntimeInstallError, ensure_installed, resolve_versions

        if args.no_kernels:
            raise UserError("--runtime asks a runtime's registry: it cannot go with --no-kernels")
        for runtime in resolve_versions(args.runtimes):
            try:
                ensure_installed(runtime)
            except RuntimeInstallError as exc:
                raise UserError(str(exc)) from None
            registries.append(load_registry(args.build_dir, runtime))
    inspection = inspect_model(args.path, None if args.no_kernels else args.build_dir, registries)
    if args.json:
        print(json.dumps(inspection.as_dict(), indent=2, default=str))
    else:
        render(inspection, console)
    return 0


def _emit(args: argparse.Namespace, console: Console) -> int:
    from ..errors import UserError
    from ..inspect import inspect_model
    from ..inspect.emit import emit

    if args.emit is None:
        raise UserError("--signature and --emit-dir go with --emit rust|c")
    if args.json or args.runtimes:
        raise UserError("--emit prints a program: it cannot go with --json or --runtime")
    inspection = inspect_model(args.path, None)  # the program needs no kernel check
    emitted = emit(inspection, args.emit, args.signature, directory=args.emit_dir)
    if args.emit_dir is None:
        print(emitted.main, end="")
        return 0
    try:
        written = emitted.write(args.emit_dir)
    except OSError as exc:
        raise UserError(
            f"--emit-dir {args.emit_dir}: cannot write there ({exc.strerror or exc})"
        ) from None
    for path in written:
        console.print(f"wrote {path}", markup=False)
    console.print(f"build and run: cd {args.emit_dir} && {emitted.language.run}", markup=False)
    return 0
