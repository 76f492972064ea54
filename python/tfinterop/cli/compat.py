"""``tfinterop compat``: the runtime matrix (``run_compat``) over the fixtures and any models.

``--model`` takes a model path followed by the ``check`` options it needs, as one argument
(``--model "saved_model_dir --all-signatures --example x=float:1"``), parsed by check's own
parser so a model is run exactly as ``tfinterop check`` would run it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from rich.console import Console

from ..check.options import CheckOptions
from ..errors import UserError
from . import check as check_cli
from . import options
from .progress import make_reporter


def add_parser(sub: Any) -> None:
    compat = sub.add_parser(
        "compat",
        help="the runtime matrix: fixtures and models x TensorFlow runtimes x native consumers",
    )
    options.fixture_options(compat)
    options.runtime_option(compat, "2.12.0, 2.15.1, 2.18.1 and the pinned one")
    compat.add_argument(
        "--consumer",
        "-c",
        action="append",
        dest="consumers",
        metavar="NAME",
        help="consumers (default: the Python reference and every consumer that can swap its "
        "TensorFlow runtime)",
    )
    compat.add_argument(
        "--model",
        action="append",
        dest="models",
        default=[],
        metavar="'PATH [CHECK OPTIONS]'",
        help="also check this model (with these `tfinterop check` options) on every runtime",
    )
    compat.add_argument(
        "--no-fixtures", action="store_true", help="only the --model models, no fixtures"
    )
    compat.add_argument("--timeout", type=float, default=900.0, help="seconds per consumer process")
    compat.add_argument("-j", "--jobs", type=options.positive, default=None)
    compat.add_argument("--repeat", type=options.positive, default=1)
    compat.add_argument("--warmup", type=int, default=0)
    compat.add_argument("--threads", type=options.threads, default=(0, 0), metavar="INTRA,INTER")
    compat.add_argument("--onednn", choices=("0", "1"), default=None)
    compat.add_argument("--no-build", action="store_true", help="use the consumers as built")
    compat.add_argument("--json", type=Path, metavar="FILE", help="machine-readable report")
    options.report_options(compat)
    options.common(compat)


def model_options(text: str, build_dir: Path) -> CheckOptions:
    """One ``--model`` value as check's options (check's own parser: same names, same checks)."""
    parser = argparse.ArgumentParser(prog="--model", add_help=False, exit_on_error=False)
    check_cli.add_arguments(parser)
    try:
        args = parser.parse_args(shlex.split(text))
    except (argparse.ArgumentError, ValueError) as exc:
        raise UserError(f"--model {text!r}: {exc}") from None
    args.build_dir = build_dir
    return check_cli.options_from_args(args)


def cmd_compat(args: argparse.Namespace, console: Console) -> int:
    from ..compat import DEFAULT_RUNTIMES, CompatSettings, run_compat
    from ..consumers import ALL_CONSUMERS, REFERENCE, RUNTIME_SWAP, by_name, on_runtimes
    from ..report.matrix import render_matrix
    from ..runtimes import pinned_runtime, resolve_versions

    environment = options.apply_environment(args.onednn)
    models = [model_options(text, args.build_dir) for text in args.models]
    if args.no_fixtures and not models:
        raise UserError("--no-fixtures without --model leaves nothing to run")
    chosen = by_name(args.consumers) if args.consumers else [
        # Every binding, opt-in ones too: the matrix is where an alternative crate shows.
        c for c in ALL_CONSUMERS if c.supports(RUNTIME_SWAP) or c.supports(REFERENCE)
    ]  # fmt: skip
    runtimes = resolve_versions(args.runtimes or [*DEFAULT_RUNTIMES, pinned_runtime()])
    settings = CompatSettings(
        run=options.run_settings(args, environment),
        consumers=on_runtimes(chosen, runtimes),
        fixtures=None if args.no_fixtures else options.fixture_selection(args),
        models=models,
        build=not args.no_build,
    )
    result = run_compat(settings, make_reporter())
    rows = [c.as_dict() for c in result.cells]
    render_matrix(rows, console)
    for error in result.model_errors:
        console.print(f"[red]model not checked:[/] {error}")
    options.finish_run(
        args,
        console,
        result.cells,
        result.environment(),
        result.timings,
        {"runtimes": [r.version for r in runtimes]},
    )
    return options.EXIT_FAILURES if result.failed else 0
