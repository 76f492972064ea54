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
from ..project import ProjectConfig
from ..sandbox import (
    DEFAULT_MEMORY_FRACTION,
    DEFAULT_OUTPUT_BYTES,
    MIB,
    Limits,
    SandboxPolicy,
    default_memory_bytes,
    unavailable,
)
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


_SIZE_UNITS = {"": MIB, "K": 1 << 10, "M": MIB, "G": 1 << 30, "T": 1 << 40}


def size(value: str) -> int | None:
    """``512M``, ``4G``, ``2048`` (MiB); ``none`` or ``0``: no limit."""
    text = value.strip().upper().removesuffix("IB").removesuffix("B")
    if text in ("NONE", "0"):
        return None
    unit = text[-1:] if text[-1:] in _SIZE_UNITS else ""
    try:
        number = float(text[: len(text) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a size such as 512M or 4G (or none), got {value!r}"
        ) from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"a size must be > 0 (or none), got {value!r}")
    return int(number * _SIZE_UNITS[unit])


def seconds_limit(value: str) -> int | None:
    if value.strip().lower() in ("none", "0"):
        return None
    try:
        return positive(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole seconds >= 1 (or none), got {value!r}"
        ) from None


def sandbox_options(parser: Any, *, default: bool) -> None:
    """The consumer sandbox (on by default for ``check``: a model is a program) and the
    per-process resource limits (sandbox.py)."""
    if default:
        parser.add_argument(
            "--no-sandbox", dest="sandbox", action="store_false",
            help="run the consumers with your full rights: file system, network (only for "
            "models you trust; default: each consumer process in a bubblewrap sandbox)",
        )  # fmt: skip
    else:
        parser.add_argument(
            "--sandbox", action="store_true",
            help="run each consumer process in a bubblewrap sandbox: no network, nothing "
            "writable but its run directory, nothing of your home visible",
        )  # fmt: skip
    parser.set_defaults(sandbox_flag="--no-sandbox" if default else "--sandbox")
    parser.add_argument(
        "--memory-limit", type=size, default=default_memory_bytes(), metavar="SIZE",
        help="data memory per consumer process, e.g. 2G (none: unlimited; default "
        f"{DEFAULT_MEMORY_FRACTION * 100:.0f}%% of RAM, {default_memory_bytes() / (1 << 30):.1f} GiB)",
    )  # fmt: skip
    parser.add_argument(
        "--cpu-limit", type=seconds_limit, default=None, metavar="SECONDS",
        help="CPU time per consumer process (default: none; --timeout bounds the wall time)",
    )  # fmt: skip
    parser.add_argument(
        "--output-limit", type=size, default=DEFAULT_OUTPUT_BYTES, metavar="SIZE",
        help="bytes a consumer process may write (each file and its run directory; "
        f"default {DEFAULT_OUTPUT_BYTES >> 30}G; none: unlimited)",
    )  # fmt: skip


def sandbox_policy(args: argparse.Namespace) -> SandboxPolicy:
    """The sandbox and limits asked for; a sandbox this machine cannot make is refused."""
    limits = Limits(args.memory_limit, args.cpu_limit, args.output_limit)
    if args.sandbox:
        problem = unavailable()
        if problem:
            hint = (
                "pass --no-sandbox to run the consumers with your full rights (only for models "
                "you trust)"
                if args.sandbox_flag == "--no-sandbox"
                else "run without --sandbox"
            )
            raise UserError(f"cannot run the consumers in a sandbox: {problem}; {hint}")
    return SandboxPolicy(args.sandbox, limits)


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
        help="only these consumers (built in: "
        + ", ".join(c.name for c in ALL_CONSUMERS)
        + "; default: all but the opt-in ones, or the project's default-consumers)",
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
    if hasattr(args, "sandbox"):
        values["sandbox"] = sandbox_policy(args)
    values.update(overrides)
    return RunSettings(**values)


def fixture_dirs(args: argparse.Namespace) -> list[Path]:
    """``--fixtures-dir``, else the project's ``fixtures``, else the built-in fixtures; the
    first is where new fixtures are written."""
    if getattr(args, "fixtures_dir", None):
        return [args.fixtures_dir]
    project: ProjectConfig = getattr(args, "project", None) or ProjectConfig()
    return project.fixtures or [default_fixtures_dir()]


def fixture_selection(args: argparse.Namespace) -> FixtureSelection:
    first, *more = fixture_dirs(args)
    return FixtureSelection(first, args.fixtures, getattr(args, "shard", None), more)


def apply_project(args: argparse.Namespace, project: ProjectConfig) -> None:
    """The project configuration's values for the options the command line left unset,
    and where each setting came from (``args.origins``, shown by ``tfinterop env``)."""
    args.project = project
    origins: dict[str, str] = {}
    if hasattr(args, "build_dir"):
        if args.build_dir is not None:
            origins["build-dir"] = "command line (--build-dir)"
        elif project.build_dir is not None:
            args.build_dir = project.build_dir
            origins["build-dir"] = project.where("build-dir")
        elif os.environ.get("TFINTEROP_BUILD_DIR"):
            origins["build-dir"] = "environment (TFINTEROP_BUILD_DIR)"
    if getattr(args, "fixtures_dir", None):
        origins["fixtures"] = "command line (--fixtures-dir)"
    elif project.fixtures:
        origins["fixtures"] = project.where("fixtures")
    for key, attribute, option, values in (
        ("default-consumers", "consumers", "-c", project.default_consumers),
        ("runtimes", "runtimes", "--runtime", project.runtimes),
    ):
        if not hasattr(args, attribute):
            if values:  # this command has no such option: still the project's (for env)
                origins[key] = project.where(key)
            continue
        if getattr(args, attribute):
            origins[key] = f"command line ({option})"
        elif values:
            setattr(args, attribute, list(values))
            origins[key] = project.where(key)
    if project.atol is not None:
        origins["tolerance"] = project.where("tolerance")
    for key in ("atol", "rtol"):
        if not hasattr(args, f"project_{key}"):
            continue  # only commands whose --atol/--rtol default to the project's
        given = getattr(args, key)
        configured = getattr(project, key)
        if given is not None:
            origins["tolerance"] = f"command line (--{key})"
        elif configured is not None:
            setattr(args, key, configured)
        else:
            setattr(args, key, getattr(args, f"project_{key}"))
    args.origins = origins


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
