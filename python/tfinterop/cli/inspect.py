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
    options.common(inspect_cmd)


def cmd_inspect(args: argparse.Namespace, console: Console) -> int:
    options.apply_environment(None)
    import json

    from ..inspect import inspect_model, render

    inspection = inspect_model(args.path, None if args.no_kernels else args.build_dir)
    if args.json:
        print(json.dumps(inspection.as_dict(), indent=2, default=str))
    else:
        render(inspection, console)
    return 0
