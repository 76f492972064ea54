"""The small commands: ``env``, ``export``, ``build``, ``report``, ``new-fixture``,
``new-consumer``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from ..consumers import buildable, by_name, on_runtimes, project_consumers
from ..errors import UserError
from . import options


def add_parsers(sub: Any) -> None:
    env = sub.add_parser(
        "env",
        help="show the TensorFlow wheel the consumers link against, and each setting's origin",
    )
    env.add_argument("--json", action="store_true", help="print JSON")
    options.common(env)

    export = sub.add_parser(
        "export", help="export fixtures (frozen graph, SavedModel, inputs, references)"
    )
    options.fixture_options(export)
    export.add_argument("--force", action="store_true", help="ignore the export cache")
    export.add_argument("--onednn", choices=("0", "1"), default=None)
    options.common(export)

    build = sub.add_parser("build", help="build the C consumer and build+install the Rust consumer")
    build.add_argument(
        "--consumer", "-c", action="append", dest="consumers",
        choices=[c.name for c in buildable()],
    )  # fmt: skip
    build.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    build.add_argument(
        "--all", action="store_true",
        help="also the opt-in consumers (default: those interop and check run unless named)",
    )  # fmt: skip
    options.runtime_option(build)
    options.common(build)


def add_report_parser(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="re-render a saved --json result as HTML, JUnit XML or Markdown, "
        "or merge the results of a sharded run (--merge)",
    )
    from pathlib import Path

    report.add_argument(
        "result", type=Path, nargs="?", metavar="RESULT.json", help="from `interop --json`"
    )
    report.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="RESULT.json",
        help="merge these results (the shards of `interop --shard K/N --json`) into one report; "
        "every shard must be there once, run with the same settings; exit 1 when a merged "
        "cell fails",
    )
    report.add_argument(
        "--json", type=Path, metavar="FILE", help="write the (merged) JSON result here"
    )
    options.report_options(report)
    report.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def add_new_fixture_parser(sub: Any) -> None:
    from pathlib import Path

    new = sub.add_parser("new-fixture", help="write fixtures/NAME.py, a working fixture to edit")
    new.add_argument("name", metavar="NAME", help="fixture name (also the file name)")
    new.add_argument(
        "--fixtures-dir", type=Path, default=None, help="where to write it (default: fixtures/)"
    )
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def add_new_consumer_parser(sub: Any) -> None:
    from pathlib import Path

    from ..newconsumer import LANGUAGES

    new = sub.add_parser(
        "new-consumer",
        help="write a consumer program of your own (Rust or C) on the shipped contract code, "
        "with a marked place for your inference code",
    )
    new.add_argument("language", metavar="LANGUAGE", help=f"one of {', '.join(LANGUAGES)}")
    new.add_argument("name", metavar="NAME", help="the consumer's name (also its directory)")
    new.add_argument("--dir", type=Path, default=None, help="where to write it (default: ./NAME)")
    new.add_argument("--force", action="store_true", help="write into a non-empty directory")
    new.add_argument(
        "--register",
        action="store_true",
        help="append its [tool.tfinterop.consumer.NAME] table to the project configuration "
        "(default: print it)",
    )
    new.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def cmd_env(args: argparse.Namespace, console: Console) -> int:
    from ..tfenv import find_tensorflow

    tf = find_tensorflow()
    data = tf.as_dict()
    settings = _settings(args)
    if args.json:
        print(json.dumps({**data, "settings": settings}, indent=2))
        return 0
    pin = tf.pinned or "unknown"
    console.print(f"TensorFlow      {tf.version} ({tf.distribution}; pinned {pin})")
    if tf.pinned and tf.pinned != tf.version:
        console.print(
            f"[bold red]warning:[/] installed {tf.version} differs from the pin {tf.pinned}"
        )
    console.print(f"library dir     {tf.library_dir}")
    console.print(f"include dir     {tf.include_dir}")
    console.print(f"C flags         {' '.join(tf.c_flags())}")
    console.print(f"link flags      {' '.join(tf.link_flags())}")
    project = args.project.path or "none (no tfinterop.toml or [tool.tfinterop] found)"
    console.print(f"project config  {project}", markup=False)
    for key, entry in settings.items():
        if key != "config":
            console.print(f"{key:<18}{entry['value']}  ({entry['from']})", markup=False)
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """Each setting's value and where it came from: command line, project file,
    environment, or the built-in default."""
    from ..check.options import DEFAULT_TOLERANCE

    origins: dict[str, str] = args.origins
    project = args.project
    consumers = [c.name for c in by_name(project.default_consumers or None)]
    tolerance = (
        f"atol={project.atol:g} rtol={project.rtol:g}"
        if project.atol is not None and project.rtol is not None
        else f"per fixture; check: atol={DEFAULT_TOLERANCE.atol:g} rtol={DEFAULT_TOLERANCE.rtol:g}"
    )
    values = {
        "config": str(project.path) if project.path else None,
        "build-dir": str(args.build_dir),
        "fixtures": ", ".join(str(p) for p in options.fixture_dirs(args)),
        "default-consumers": ", ".join(consumers),
        "runtimes": ", ".join(project.runtimes) or "the pinned wheel",
        "tolerance": tolerance,
        "project-consumers": ", ".join(c.name for c in project_consumers()) or "none",
    }
    sources = {
        "project-consumers": project.where("consumer") if project.consumers else "",
    }
    return {
        key: {"value": value, "from": origins.get(key) or sources.get(key) or "default"}
        for key, value in values.items()
    }


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    options.apply_environment(args.onednn)
    from ..export import export_fixtures
    from ..fixtures import BrokenFixture, load_fixtures

    loaded = load_fixtures(options.fixture_dirs(args), args.fixtures)
    failed = 0
    for broken in [f for f in loaded if isinstance(f, BrokenFixture)]:
        console.print(f"[red]ERROR[/] {broken.name}: {broken.error}")
        failed += 1
    fixtures = [f for f in loaded if not isinstance(f, BrokenFixture)]
    outcomes = export_fixtures(
        fixtures,
        args.build_dir / "exports",
        force=args.force,
        on_start=lambda f, cached: None if cached else console.print(f"exporting {f.name} ..."),
    )
    for outcome in outcomes:
        if outcome.manifest is None:
            failed += 1
            console.print(f"[red]ERROR[/] {outcome.fixture}: {outcome.error}")
        else:
            state = "cached" if outcome.cached else f"exported in {outcome.seconds:.1f}s"
            console.print(f"{outcome.fixture}: {state} -> {outcome.manifest.directory}")
    return options.EXIT_FAILURES if failed else 0


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    from ..pipeline.build import build_each

    if args.consumers and args.all:
        raise UserError("--all builds every consumer: drop -c, or drop --all")
    chosen = buildable(None if args.all else by_name(args.consumers))
    if args.runtimes:
        from ..runtimes import resolve_versions

        chosen = buildable(on_runtimes(chosen, resolve_versions(args.runtimes)))
    for outcome in build_each(args.build_dir, chosen, force=args.force):
        if outcome.error:  # the command's job is this build: stop at the first failure
            from ..consumers import BuildError

            raise BuildError(outcome.error)
        state = (
            "up to date"
            if not outcome.built
            else f"installed the shared build in {outcome.seconds:.1f}s"
            if outcome.shared
            else f"built in {outcome.seconds:.1f}s"
        )
        console.print(f"{outcome.consumer} consumer: {state} ({outcome.path})")
    return 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Re-render a saved result, or merge several (``--merge``): the console table, plus any
    of --json/--html/--junit/--markdown."""
    from ..report import load_document, render_rows

    if (args.result is None) == (args.merge is None):
        raise UserError("give one RESULT.json to re-render, or --merge RESULT.json ... (not both)")
    if args.merge is None:
        doc = load_document(args.result)
        render_rows(doc["rows"], console)
        options.write_report_files(args, doc, console)
        return 0
    from ..report.merge import merge_files

    merged = merge_files(args.merge)
    doc = merged.document()
    render_rows(doc["rows"], console)
    options.write_report_files(args, doc, console)
    return options.EXIT_FAILURES if merged.failed else 0


def cmd_new_fixture(args: argparse.Namespace, console: Console) -> int:
    from ..scaffold import new_fixture

    path = new_fixture(args.name, options.fixture_dirs(args)[0], force=args.force)
    console.print(f"created {path}")
    where = f" --fixtures-dir {args.fixtures_dir}" if args.fixtures_dir else ""
    console.print(f"run it through every consumer: tfinterop interop --fixture {args.name}{where}")
    return 0


def cmd_new_consumer(args: argparse.Namespace, console: Console) -> int:
    from ..newconsumer import new_consumer

    made = new_consumer(
        args.language, args.name, args.dir, force=args.force, register=args.register
    )
    console.print(f"created {made.directory}", markup=False)
    console.print(
        f"your inference code goes in {made.directory / made.language.edit}", markup=False
    )
    if made.registered is not None:
        console.print(f"registered in {made.registered}:", markup=False)
    else:
        console.print(f"add this to {made.config} (or rerun with --register):", markup=False)
    console.print(made.table, markup=False, end="")
    console.print(
        f"then: tfinterop build -c {made.name}; tfinterop interop -c {made.name} -c python",
        markup=False,
    )
    return 0
