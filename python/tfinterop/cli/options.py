"""Options several commands share, their argparse types, and the step from parsed
arguments to the core's settings objects (the only place argparse meets the core)."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from ..consumers import ALL_CONSUMERS, Consumer, by_name, on_runtimes
from ..errors import UserError
from ..exporters import Exporter
from ..paths import default_build_dir, default_fixtures_dir
from ..pipeline.settings import FixtureSelection, RunSettings
from ..tfenv import DEFAULT_CONSUMER_ENV

EXIT_FAILURES = 1


def threads(value: str) -> tuple[int, int]:
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


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return number


def common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="where exports, builds and runs go (default: build/)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")


def fixture_options(parser: argparse.ArgumentParser) -> None:
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


def shard(value: str) -> tuple[int, int]:
    index, _, count = value.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 1/4), got {value!r}") from None
    if not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"shard {value}: need 1 <= K <= N")
    return shard


def runtime_option(parser: Any, default: str = "the pinned wheel") -> None:
    parser.add_argument(
        "--runtime",
        action="append",
        dest="runtimes",
        metavar="VERSION",
        help="run the C and Rust consumers against this tensorflow-cpu wheel's C API "
        f"(repeatable; installed once into the user cache; default: {default})",
    )


def run_options(parser: argparse.ArgumentParser) -> None:
    runtime_option(parser)
    parser.add_argument(
        "--shard",
        type=shard,
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
        help="only these consumers (" + ", ".join(c.name for c in ALL_CONSUMERS) + ")",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the machine-readable report here"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per consumer process (default 900)"
    )
    parser.add_argument(
        "-j", "--jobs", type=positive, default=None, help="consumer processes run at once"
    )
    parser.add_argument(
        "--repeat", type=positive, default=3, help="timed steady runs per case (default 3)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed runs after the first (default 1)"
    )
    parser.add_argument(
        "--threads",
        type=threads,
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


def report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="write a self-contained HTML report with plots"
    )
    parser.add_argument(
        "--junit", type=Path, metavar="FILE", help="write JUnit XML (one test case per cell)"
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="write a Markdown summary (CI job summary)"
    )


def finish_run(
    args: argparse.Namespace,
    console: Console,
    cells: list[Any],
    environment: dict[str, Any],
    timings: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> None:
    """After a run's table: its stage timings, then the report files asked for, all from
    one document (``extra`` adds top-level keys, e.g. the runtimes or exporters)."""
    console.print(
        "time: " + ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in timings.items()),
        markup=False,
    )
    if args.json or args.html or args.junit or args.markdown:
        from ..report import document

        rounded = {k: round(v, 3) for k, v in timings.items()}
        doc = document(cells, environment, {"timings": rounded, **(extra or {})})
        write_report_files(args, doc, console)


def write_report_files(args: argparse.Namespace, doc: dict[str, Any], console: Console) -> None:
    """--json/--html/--junit/--markdown, whichever were given, all from one document."""
    from ..report import write_reports

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


def check_report_paths(args: argparse.Namespace) -> None:
    """Fail before any work when a report file cannot be written (not after an hour's run)."""
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


def apply_environment(onednn: str | None) -> dict[str, str]:
    """Set consumer-process defaults here, before anything imports TensorFlow in-process."""
    environment = dict(DEFAULT_CONSUMER_ENV)
    for key in environment:
        if key in os.environ:
            environment[key] = os.environ[key]
    if onednn is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = onednn
    os.environ.update(environment)
    return environment


def run_settings(
    args: argparse.Namespace, environment: dict[str, str], **overrides: Any
) -> RunSettings:
    """RunSettings from the run options the interop, check and bench commands share."""
    values: dict[str, Any] = {
        "build_dir": args.build_dir,
        "timeout_s": args.timeout,
        "warmup": args.warmup,
        "repeat": args.repeat,
        "threads": args.threads,
        "environment": environment,
    }
    if getattr(args, "jobs", None):
        values["jobs"] = args.jobs
    values.update(overrides)
    return RunSettings(**values)


def fixture_selection(args: argparse.Namespace) -> FixtureSelection:
    return FixtureSelection(
        args.fixtures_dir or default_fixtures_dir(), args.fixtures, getattr(args, "shard", None)
    )


def consumers(args: argparse.Namespace) -> list[Consumer]:
    """The chosen consumers, each native one once per ``--runtime`` (``c@2.15.1``)."""
    chosen = by_name(args.consumers)
    versions = getattr(args, "runtimes", None)
    if not versions:
        return chosen
    from ..runtimes import resolve_versions

    return on_runtimes(chosen, resolve_versions(versions))


def exporters(args: argparse.Namespace) -> list[Exporter]:
    """``--export-tf``: validated like ``--runtime`` (one line listing what exists)."""
    versions = getattr(args, "export_tf", None)
    if not versions:
        return []
    from ..exporters import resolve_exporters

    return resolve_exporters(versions)


def resolve_build_dir(args: argparse.Namespace) -> None:
    if hasattr(args, "build_dir") and args.build_dir is None:
        args.build_dir = default_build_dir()
