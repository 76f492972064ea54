"""``tfinterop interop``: the main job, ``run_interop`` on the built-in (or given) fixtures,
then the console table and whichever report files were asked for."""

from __future__ import annotations

import argparse
import os
from typing import Any

from rich.console import Console

from ..pipeline.interop import run_interop
from ..pipeline.settings import InteropSettings
from . import options
from .progress import make_reporter


def add_parser(sub: Any) -> None:
    interop = sub.add_parser("interop", help="export, build, run every consumer, compare, report")
    options.fixture_options(interop)
    interop.add_argument(
        "--export-tf",
        action="append",
        dest="export_tf",
        metavar="VERSION",
        help="export the fixtures with this tensorflow-cpu release instead of the pinned one "
        "(its own environment, made once in the user cache; its references come from it), "
        "then run the pinned consumers on those exports; cells read NAME@tfVERSION "
        "(repeatable; the pinned version is the ordinary export)",
    )
    options.run_options(interop)
    options.sandbox_options(interop, default=False)
    options.report_options(interop)
    options.common(interop)


def cmd_interop(args: argparse.Namespace, console: Console) -> int:
    environment = options.apply_environment(args.onednn)
    from ..report import render_table

    timings: dict[str, float] = {}
    try:  # set by `nox -s interop`: the environment set-up before this process started
        timings["install_s"] = float(os.environ["TFINTEROP_INSTALL_SECONDS"])
    except (KeyError, ValueError):
        pass
    settings = InteropSettings(
        run=options.run_settings(args, environment),
        fixtures=options.fixture_selection(args),
        consumers=options.consumers(args),
        build=not args.no_build,
        exporters=options.exporters(args),
        timings=timings,
    )
    result = run_interop(settings, make_reporter())
    render_table(result.cells, console)
    extra: dict[str, Any] = {}
    if exporters := [e.version for e in settings.exporters]:
        extra["exporters"] = exporters
    if args.shard:  # `report --merge` checks that every shard of the matrix is there
        extra["shard"] = {"index": args.shard[0], "count": args.shard[1]}
    options.finish_run(
        args, console, result.cells, result.environment(), result.timings, extra or None
    )
    return options.EXIT_FAILURES if result.failed else 0
