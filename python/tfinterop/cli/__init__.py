"""Command line: ``tfinterop <command>`` (also ``python -m tfinterop``).

The only place argparse lives: one module per command builds its parser and turns the parsed
options into the core's settings objects. User-caused errors print one line and exit
non-zero; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console

from .. import __version__
from ..consumers import register_project
from ..errors import UserError
from ..project import load_config
from . import basic, bench, check, compat, inspect, interop, locate, options

EXIT_INTERNAL = 70


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfinterop",
        description="Check that TensorFlow models give the same outputs in Python, Rust and C.",
    )
    parser.add_argument("--version", action="version", version=f"tfinterop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    basic.add_parsers(sub)
    interop.add_parser(sub)
    basic.add_report_parser(sub)
    inspect.add_parser(sub)
    check.add_parser(sub)
    compat.add_parser(sub)
    bench.add_parser(sub)
    locate.add_parser(sub)
    basic.add_new_fixture_parser(sub)
    basic.add_new_consumer_parser(sub)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "new-fixture": basic.cmd_new_fixture,
    "new-consumer": basic.cmd_new_consumer,
    "env": basic.cmd_env,
    "export": basic.cmd_export,
    "build": basic.cmd_build,
    "interop": interop.cmd_interop,
    "report": basic.cmd_report,
    "bench": bench.cmd_bench,
    "inspect": inspect.cmd_inspect,
    "check": check.cmd_check,
    "compat": compat.cmd_compat,
    "locate": locate.cmd_locate,
    "reduce": locate.cmd_reduce,
}


def main(argv: list[str] | None = None) -> int:
    error_console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        # Before the parser: the project's consumers are among its choices.
        project = load_config()
        register_project(project.consumers)
    except UserError as exc:
        error_console.print(f"tfinterop: error: {exc}", markup=False)
        return exc.exit_code
    parser = make_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    if not console.is_terminal:  # CI logs: 80 columns would truncate the table's cells
        console.width = max(console.width, 160)
    options.apply_project(args, project)
    options.resolve_build_dir(args)
    try:
        options.check_report_paths(args)
        return COMMANDS[args.command](args, console)
    except UserError as exc:
        if args.debug:
            raise
        error_console.print(f"tfinterop: error: {exc}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        error_console.print("tfinterop: interrupted")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        error_console.print(
            f"tfinterop: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
            markup=False,
        )
        return EXIT_INTERNAL
