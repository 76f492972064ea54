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
    options.common(inspect_cmd)


def cmd_inspect(args: argparse.Namespace, console: Console) -> int:
    options.apply_environment(None)
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
