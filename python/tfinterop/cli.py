"""Command line: ``tfinterop {env,export,build,interop}`` (also ``python -m tfinterop``).

User-caused errors print one line and exit non-zero; tracebacks only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from rich.console import Console

from . import __version__
from . import consumers as consumer_registry
from .errors import UserError
from .tfenv import DEFAULT_CONSUMER_ENV

EXIT_FAILURES = 1
EXIT_INTERNAL = 70


def _default_build_dir() -> Path:
    configured = os.environ.get("TFINTEROP_BUILD_DIR")
    if configured:
        return Path(configured).resolve()
    from .build import project_root

    try:
        return project_root() / "build"
    except UserError:
        return Path.cwd() / "build"


def _default_fixtures_dir() -> Path:
    from .build import project_root

    try:
        return project_root() / "fixtures"
    except UserError:
        return Path.cwd() / "fixtures"


def _threads(value: str) -> tuple[int, int]:
    try:
        intra, _, inter = value.partition(",")
        result = (int(intra), int(inter or 0))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected INTRA,INTER thread counts, got {value!r}"
        ) from None
    if min(result) < 0:
        raise argparse.ArgumentTypeError("thread counts must be >= 0 (0 = TensorFlow's default)")
    return result


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return number


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where exports, builds and runs go (default: build/)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def _fixture_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fixtures-dir", type=Path, default=None, help="directory of fixture .py files (executed!)"
    )
    parser.add_argument(
        "--fixture",
        "-f",
        action="append",
        dest="fixtures",
        metavar="NAME",
        help="only these fixtures",
    )


def _shard(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 1/4), got {value!r}") from None
    if not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"shard {value}: need 1 <= K <= N")
    return shard


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--shard",
        type=_shard,
        default=None,
        metavar="K/N",
        help="run only the K-th of N deterministic slices of the fixtures (for CI matrices)",
    )
    parser.add_argument(
        "--consumer",
        "-c",
        action="append",
        dest="consumers",
        metavar="NAME",
        help="only these consumers (python, rust, c, tflite)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the machine-readable report here"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per consumer process (default 900)"
    )
    parser.add_argument(
        "-j", "--jobs", type=_positive, default=None, help="consumer processes run at once"
    )
    parser.add_argument(
        "--repeat", type=_positive, default=3, help="timed steady runs per case (default 3)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs after the first (default 1)"
    )
    parser.add_argument(
        "--threads",
        type=_threads,
        default=(0, 0),
        metavar="INTRA,INTER",
        help="TensorFlow thread pools for every consumer (0 = TF default)",
    )
    parser.add_argument(
        "--onednn",
        choices=("0", "1"),
        default=None,
        help="TF_ENABLE_ONEDNN_OPTS for export and consumers (default 0: reproducible)",
    )
    parser.add_argument(
        "--no-build", action="store_true", help="use the consumers as built; do not rebuild"
    )


def _report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="write a self-contained HTML report with plots"
    )
    parser.add_argument(
        "--junit", type=Path, metavar="FILE", help="write JUnit XML (one test case per cell)"
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="write a Markdown summary (CI job summary)"
    )


def _write_reports(args: argparse.Namespace, doc: dict, console: Console) -> None:
    """--json/--html/--junit/--markdown, whichever were given, all from one document."""
    from .report import write_reports

    try:
        written = write_reports(
            doc,
            json_path=getattr(args, "json", None),
            html=args.html,
            junit=args.junit,
            markdown=args.markdown,
        )
    except OSError as exc:
        raise UserError(f"cannot write the report {exc.filename}: {exc.strerror}") from None
    for path in written:
        console.print(f"report written to {path}", markup=False)


REPORT_OPTIONS = ("json", "html", "junit", "markdown")


def _check_report_paths(args: argparse.Namespace) -> None:
    """Fail before any work when a report file cannot be written (not after an hour's run)."""
    import tempfile

    for option in REPORT_OPTIONS:
        path = getattr(args, option, None)
        if not isinstance(path, Path):  # inspect/env take --json as a flag
            continue
        if path.is_dir():
            raise UserError(f"--{option} {path}: is a directory; give a file name")
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise UserError(f"--{option} {path}: {blocking} is a file, not a directory")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}."):
                pass
        except OSError as exc:
            raise UserError(
                f"--{option} {path}: cannot write there ({exc.strerror or exc})"
            ) from None


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfinterop",
        description="Check that TensorFlow models give the same outputs in Python, Rust and C.",
    )
    parser.add_argument("--version", action="version", version=f"tfinterop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    env = sub.add_parser("env", help="show the TensorFlow wheel the consumers link against")
    env.add_argument("--json", action="store_true", help="print JSON")
    _common(env)

    export = sub.add_parser(
        "export", help="export fixtures (frozen graph, SavedModel, inputs, references)"
    )
    _fixture_options(export)
    export.add_argument("--force", action="store_true", help="ignore the export cache")
    export.add_argument("--onednn", choices=("0", "1"), default=None)
    _common(export)

    build = sub.add_parser("build", help="build the C consumer and build+install the Rust consumer")
    build.add_argument(
        "--consumer", "-c", action="append", dest="consumers",
        choices=[c.name for c in consumer_registry.buildable()],
    )  # fmt: skip
    build.add_argument("--force", action="store_true", help="rebuild even if nothing changed")
    _common(build)

    interop = sub.add_parser("interop", help="export, build, run every consumer, compare, report")
    _fixture_options(interop)
    _run_options(interop)
    _report_options(interop)
    _common(interop)
    report = sub.add_parser(
        "report", help="re-render a saved --json result as HTML, JUnit XML or Markdown"
    )
    report.add_argument("result", type=Path, metavar="RESULT.json", help="from `interop --json`")
    _report_options(report)
    report.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    inspect_cmd = sub.add_parser(
        "inspect", help="a SavedModel's or graph's inputs, outputs, ops and missing kernels"
    )
    inspect_cmd.add_argument("path", type=Path, help="SavedModel directory or GraphDef file")
    inspect_cmd.add_argument("--json", action="store_true", help="print JSON")
    inspect_cmd.add_argument(
        "--no-kernels", action="store_true", help="skip asking the C consumer's libtensorflow"
    )
    _common(inspect_cmd)
    check = sub.add_parser(
        "check", help="run any SavedModel or graph through every consumer, compare with Python"
    )
    from .check import add_arguments as add_check_arguments

    add_check_arguments(check)
    _report_options(check)
    _common(check)
    bench = sub.add_parser(
        "bench", help="latency, load time and peak RSS per cell; Rust/C/Python ratios"
    )
    _fixture_options(bench)
    bench.add_argument("--consumer", "-c", action="append", dest="consumers", metavar="NAME")
    bench.add_argument(
        "--repeat", type=_positive, default=100, help="timed steady runs per cell (default 100)"
    )
    bench.add_argument(
        "--warmup",
        type=int,
        default=100,
        # Measured: a fresh process's first 20-80 runs of a µs-scale graph take ~90 µs, then
        # settle at 11-20 µs, in C and Rust alike; with 10 warm-up runs the p50 fell in
        # either mode at random (the "8-11x rust/c" of an earlier bench).
        help="untimed runs before timing (default 100: TensorFlow's first runs are slow)",
    )
    bench.add_argument("--threads", type=_threads, default=(0, 0), metavar="INTRA,INTER")
    bench.add_argument("--onednn", choices=("0", "1"), default=None)
    bench.add_argument("--timeout", type=float, default=900.0)
    bench.add_argument("--json", type=Path, metavar="FILE")
    bench.add_argument(
        "--write", type=Path, metavar="DIR", help="refresh committed results (benchmarks/)"
    )
    bench.add_argument("--no-build", action="store_true")
    bench.add_argument(
        "--no-interop-timing", dest="interop_timing", action="store_false",
        help="skip timing a warm `tfinterop interop` against its floor",
    )  # fmt: skip
    bench.add_argument(
        "--warm-runs", type=_positive, default=3, metavar="N",
        help="timed warm interop runs (median, min-max reported), each followed by a -j 1 run "
        "timing every consumer alone for the floor (default 3)",
    )  # fmt: skip
    bench.add_argument(
        "--interop-jobs", type=_positive, default=None, metavar="N",
        help="-j of the timed interop runs, and the floor's workers (default: interop's)",
    )  # fmt: skip
    bench.add_argument(
        "--no-profile-misses", dest="profile_misses", action="store_false",
        help="don't explain missed latency targets with callgrind instruction profiles",
    )  # fmt: skip
    bench.add_argument(
        "--rerender", type=Path, metavar="RESULTS_JSON",
        help="re-derive expectations, ratios and explanations of saved results (no measuring)",
    )  # fmt: skip
    bench.add_argument(
        "--profile-budget", type=float, default=300.0, metavar="SECONDS",
        help="skip a profile whose estimated callgrind time exceeds this (default 300)",
    )  # fmt: skip
    bench.add_argument(
        "--cold", action="store_true",
        help="also time a cold `nox -s interop` in a fresh clone of the committed tree",
    )  # fmt: skip
    bench.add_argument(
        "--no-check-timing", dest="check_timing", action="store_false",
        help="skip timing `tfinterop check` against `saved_model_cli run` (MobileNetV3)",
    )  # fmt: skip
    bench.add_argument(
        "--check-runs", type=_positive, default=3, metavar="N",
        help="alternating check / saved_model_cli runs timed (default 3)",
    )  # fmt: skip
    _common(bench)
    new = sub.add_parser("new-fixture", help="write fixtures/NAME.py, a working fixture to edit")
    new.add_argument("name", metavar="NAME", help="fixture name (also the file name)")
    new.add_argument(
        "--fixtures-dir", type=Path, default=None, help="where to write it (default: fixtures/)"
    )
    new.add_argument("--force", action="store_true", help="overwrite an existing file")
    new.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def _apply_environment(onednn: str | None) -> dict[str, str]:
    """Set consumer-process defaults here, before anything imports TensorFlow in-process."""
    environment = dict(DEFAULT_CONSUMER_ENV)
    for key in environment:
        if key in os.environ:
            environment[key] = os.environ[key]
    if onednn is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = onednn
    os.environ.update(environment)
    return environment


def cmd_env(args: argparse.Namespace, console: Console) -> int:
    from .tfenv import find_tensorflow

    tf = find_tensorflow()
    data = tf.as_dict()
    if args.json:
        print(json.dumps(data, indent=2))
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
    return 0


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    _apply_environment(args.onednn)
    from .export import export_fixtures
    from .fixtures import BrokenFixture, load_fixtures

    loaded = load_fixtures(args.fixtures_dir or _default_fixtures_dir(), args.fixtures)
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
        if outcome.error:
            failed += 1
            console.print(f"[red]ERROR[/] {outcome.fixture}: {outcome.error}")
        else:
            state = "cached" if outcome.cached else f"exported in {outcome.seconds:.1f}s"
            console.print(f"{outcome.fixture}: {state} -> {outcome.manifest.directory}")  # type: ignore[union-attr]
    return EXIT_FAILURES if failed else 0


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    from .build import build_all

    chosen = consumer_registry.by_name(args.consumers) if args.consumers else None
    for outcome in build_all(args.build_dir, force=args.force, consumers=chosen):
        state = f"built in {outcome.seconds:.1f}s" if outcome.built else "up to date"
        console.print(f"{outcome.consumer} consumer: {state} ({outcome.path})")
    return 0


def cmd_interop(args: argparse.Namespace, console: Console) -> int:
    environment = _apply_environment(args.onednn)
    from .build import build_each
    from .export import export_fixtures
    from .fixtures import BrokenFixture, load_fixtures, shard_fixtures
    from .pipeline import (
        FAILING,
        broken_fixture_cells,
        cases_from_manifest,
        environment_record,
        error_cells,
        run_consumers,
        settings_from_args,
    )
    from .progress import StartOnly, make_reporter
    from .report import document, render_table

    timings: dict[str, float] = {}
    try:  # set by `nox -s interop`: the environment set-up before this process started
        timings["install_s"] = float(os.environ["TFINTEROP_INSTALL_SECONDS"])
    except (KeyError, ValueError):
        pass
    progress = make_reporter()
    consumers = consumer_registry.by_name(args.consumers)
    started = time.perf_counter()
    loaded = load_fixtures(args.fixtures_dir or _default_fixtures_dir(), args.fixtures)
    if args.shard:
        loaded = shard_fixtures(loaded, *args.shard)
    fixtures = [f for f in loaded if not isinstance(f, BrokenFixture)]
    cells = [
        c
        for b in loaded
        if isinstance(b, BrokenFixture)
        for c in broken_fixture_cells(b, consumers)
    ]

    with progress.stage("export", len(fixtures)) as stage:
        announce = StartOnly(stage)
        outcomes = export_fixtures(
            fixtures,
            args.build_dir / "exports",
            on_start=lambda f, cached: announce(f.name, cached),
        )
        announce.finish()
        cached = sum(o.cached for o in outcomes)
        failed = sum(o.manifest is None for o in outcomes)
        stage.summary = (
            f"{len(outcomes) - cached - failed} exported, {cached} cached, {failed} failed"
        )
    timings["export_s"] = time.perf_counter() - started
    refs = []
    for fixture, outcome in zip(fixtures, outcomes, strict=True):
        if outcome.manifest is None:
            cells += error_cells(fixture.name, consumers, f"export failed: {outcome.error}")
        else:
            refs += cases_from_manifest(fixture, outcome.manifest)

    started = time.perf_counter()
    build_failures: dict[str, str] = {}
    if not args.no_build:
        wanted = consumer_registry.buildable(consumers)
        with progress.stage("build", len(wanted)) as stage:
            for outcome in build_each(
                args.build_dir, wanted, on_start=lambda name: stage.start(f"{name} consumer")
            ):
                note = "FAILED" if outcome.error else "built" if outcome.built else "up to date"
                stage.done(f"{outcome.consumer} consumer", note)
                if outcome.error:
                    build_failures[outcome.consumer] = outcome.error
    timings["build_s"] = time.perf_counter() - started

    settings = settings_from_args(args, environment, build_failures=build_failures)
    started = time.perf_counter()
    with progress.stage("run", len(consumers)) as stage:
        run_cells, consumer_info = run_consumers(
            consumers,
            refs,
            settings,
            on_start=lambda consumer, jobs: stage.start(consumer.name),
            on_done=lambda run: stage.done(
                run.consumer,
                f"{sum(j.get('status') == 'ok' for j in run.jobs.values())} jobs ok"
                + (f", {len(run.jobs)} reported" if run.failure else ""),
            ),
        )
    cells += run_cells
    timings["run_and_compare_s"] = time.perf_counter() - started
    render_table(cells, console)
    console.print(
        "time: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in timings.items()),
        markup=False,
    )
    if args.json or args.html or args.junit or args.markdown:
        doc = document(
            cells,
            environment_record(settings, consumer_info),
            {"timings": {k: round(v, 3) for k, v in timings.items()}},
        )
        _write_reports(args, doc, console)
    return EXIT_FAILURES if any(c.status in FAILING for c in cells) else 0


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """Re-render a saved result: the console table, plus any of --html/--junit/--markdown."""
    from .report import load_document, render_rows

    doc = load_document(args.result)
    render_rows(doc["rows"], console)
    _write_reports(args, doc, console)
    return 0


def cmd_inspect(args: argparse.Namespace, console: Console) -> int:
    _apply_environment(None)
    from .inspect import main as inspect_main

    return inspect_main(args, console)


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    environment = _apply_environment(args.onednn)
    from .check import main as check_main

    return check_main(
        args,
        console,
        environment,
        lambda doc: _write_reports(args, doc, console),
        args.fixtures_dir or _default_fixtures_dir(),
    )


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    environment = _apply_environment(args.onednn)
    from . import bench

    args.fixtures_dir = args.fixtures_dir or _default_fixtures_dir()
    if args.rerender:
        return bench.rerender(args, console)
    return bench.run(args, console, environment)


def cmd_new_fixture(args: argparse.Namespace, console: Console) -> int:
    from .scaffold import new_fixture

    path = new_fixture(args.name, args.fixtures_dir or _default_fixtures_dir(), force=args.force)
    console.print(f"created {path}")
    where = f" --fixtures-dir {args.fixtures_dir}" if args.fixtures_dir else ""
    console.print(f"run it through every consumer: tfinterop interop --fixture {args.name}{where}")
    return 0


COMMANDS = {
    "new-fixture": cmd_new_fixture,
    "env": cmd_env,
    "export": cmd_export,
    "build": cmd_build,
    "interop": cmd_interop,
    "report": cmd_report,
    "bench": cmd_bench,
    "inspect": cmd_inspect,
    "check": cmd_check,
}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    if not console.is_terminal:  # CI logs: 80 columns would truncate the table's cells
        console.width = max(console.width, 160)
    error_console = Console(stderr=True, highlight=False, soft_wrap=True)
    if getattr(args, "build_dir", None) is None and hasattr(args, "build_dir"):
        args.build_dir = _default_build_dir()
    try:
        _check_report_paths(args)
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
