"""``tfinterop check PATH``: any SavedModel or graph through every consumer, compared with
Python's outputs (or ``--expected``); options become ``CheckOptions`` here."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..check import (
    DEFAULT_DIM,
    DEFAULT_SIGNATURE,
    DEFAULT_TOLERANCE,
    CheckOptions,
    FeatureSpec,
    notes,
    run_check,
    save_fixture,
)
from ..consumers import Consumer
from ..errors import UserError
from ..fixtures import Tolerance
from . import options as cli_options


def add_parser(sub: Any) -> None:
    check = sub.add_parser(
        "check", help="run any SavedModel or graph through every consumer, compare with Python"
    )
    add_arguments(check)
    cli_options.report_options(check)
    cli_options.common(check)


def _key_value(text: str, option: str) -> tuple[str | None, str]:
    """``KEY=VALUE`` -> (KEY, VALUE); plain ``VALUE`` -> (None, VALUE). Keys may hold ':'."""
    key, equals, value = text.rpartition("=")
    if not equals:
        return None, text
    if not key:
        raise UserError(f"{option} {text!r}: empty name before '='")
    return key, value


def _numbers(text: str, option: str, kind: type = int) -> list[Any]:
    try:
        return [kind(part) for part in text.split(",") if part.strip() != ""]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def options_from_args(args: Any) -> CheckOptions:
    dims: dict[str | None, int] = {}
    for text in args.dim or []:
        key, value = _key_value(text, "--dim")
        numbers = _numbers(value, "--dim")
        if len(numbers) != 1 or numbers[0] < 0:
            raise UserError(f"--dim {text!r}: expected N or KEY=N with N >= 0")
        dims[key] = numbers[0]
    shapes: dict[str, list[int]] = {}
    for text in args.shape or []:
        key, value = _key_value(text, "--shape")
        if key is None:
            raise UserError(f"--shape {text!r}: expected KEY=D0,D1,... (KEY= for a scalar)")
        shapes[key] = _numbers(value, "--shape")
        if any(d < 0 for d in shapes[key]):
            raise UserError(f"--shape {text!r}: dimensions must be >= 0")
    ranges: dict[str | None, tuple[float, float]] = {}
    for text in args.range or []:
        key, value = _key_value(text, "--range")
        numbers = _numbers(value, "--range", float)
        if len(numbers) != 2 or numbers[0] > numbers[1]:
            raise UserError(f"--range {text!r}: expected [KEY=]LOW,HIGH with LOW <= HIGH")
        ranges[key] = (numbers[0], numbers[1])
    split = [n for text in args.input or [] for n in text.split(",") if n]
    outputs = [n for text in args.output or [] for n in text.split(",") if n]
    return CheckOptions(
        path=args.path,
        build_dir=args.build_dir,
        work_dir=args.work_dir,
        tags=[t for t in args.tags.split(",") if t] if args.tags else None,
        signature=args.signature,
        all_signatures=args.all_signatures,
        inputs_file=args.inputs,
        expected_file=args.expected,
        input_names=split,
        output_names=outputs,
        seed=args.seed,
        dims=dims,
        shapes=shapes,
        ranges=ranges,
        examples=[FeatureSpec.parse(text) for text in args.example or []],
        # None: not given and no project tolerance applied (apply_project fills them in).
        tolerance=Tolerance(
            atol=DEFAULT_TOLERANCE.atol if args.atol is None else args.atol,
            rtol=DEFAULT_TOLERANCE.rtol if args.rtol is None else args.rtol,
        ),
        python_loader=args.python_loader,
    )


def add_arguments(parser: Any) -> None:
    parser.add_argument("path", type=Path, help="SavedModel directory or GraphDef (.pb, .pbtxt)")
    model = parser.add_argument_group("what to run")
    model.add_argument("--tags", help="SavedModel tag set, comma-separated (default: serve)")
    model.add_argument("--signature", help=f"signature key (default: {DEFAULT_SIGNATURE})")
    model.add_argument("--all-signatures", action="store_true", help="check every signature")
    model.add_argument(
        "--input", action="append", metavar="NAME", help="graph: tensor to feed (x or x:0)"
    )
    model.add_argument(
        "--output", action="append", metavar="NAME", help="graph: tensor to fetch (y or y:0)"
    )
    data = parser.add_argument_group("inputs and expected outputs")
    data.add_argument("--inputs", type=Path, metavar="FILE.npz", help="input values (no pickles)")
    data.add_argument(
        "--expected", type=Path, metavar="FILE.npz", help="outputs recorded elsewhere"
    )
    data.add_argument("--seed", type=int, default=0, help="seed of generated inputs (default 0)")
    data.add_argument(
        "--dim",
        action="append",
        metavar="[KEY=]N",
        help=f"size of unknown dimensions (default {DEFAULT_DIM})",
    )
    data.add_argument(
        "--shape", action="append", metavar="KEY=D0,D1", help="full shape of one input"
    )
    data.add_argument(
        "--range",
        action="append",
        metavar="[KEY=]LOW,HIGH",
        help="value range of generated inputs/features (floats [-1,1), ints [0,9])",
    )
    data.add_argument(
        "--example",
        action="append",
        metavar="NAME=TYPE:LEN",
        help="string inputs become serialized tf.Example with this feature (float|int|bytes)",
    )
    compare = parser.add_argument_group("comparison")
    compare.add_argument(
        "--atol", type=float, default=None,
        help="absolute tolerance: |actual - expected| <= atol + rtol * |expected| "
        f"(default: the project's [tool.tfinterop] tolerance, else {DEFAULT_TOLERANCE.atol:g})",
    )  # fmt: skip
    compare.add_argument(
        "--rtol", type=float, default=None,
        help="relative tolerance (default: the project's tolerance, else "
        f"{DEFAULT_TOLERANCE.rtol:g})",
    )  # fmt: skip
    parser.set_defaults(project_atol=DEFAULT_TOLERANCE.atol, project_rtol=DEFAULT_TOLERANCE.rtol)
    run = parser.add_argument_group("running")
    run.add_argument(
        "--consumer", "-c", action="append", dest="consumers", metavar="NAME",
        help="only these consumers (the python reference always runs)",
    )  # fmt: skip
    run.add_argument(
        "--python-loader", choices=("auto", "object", "session"), default="auto",
        help="how Python loads SavedModels: tf.saved_model.load (object), a v1 Session over "
        "the MetaGraph as TF1 serving and the C API do (session), or auto: session for TF1 "
        "SavedModels and when the object graph cannot be revived, else object (default)",
    )  # fmt: skip
    run.add_argument("--timeout", type=float, default=900.0, help="seconds per consumer process")
    run.add_argument("-j", "--jobs", type=cli_options.positive, default=None)
    # check compares first runs; more runs only time them (`tfinterop bench` measures
    # latency), and cost ~10% of a MobileNetV3 check's CPU: one timed run by default.
    run.add_argument(
        "--repeat",
        type=cli_options.positive,
        default=1,
        help="timed runs after the first (default 1)",
    )
    run.add_argument(
        "--warmup", type=int, default=0, help="untimed runs after the first (default 0)"
    )
    run.add_argument("--threads", type=cli_options.threads, default=(0, 0), metavar="INTRA,INTER")
    run.add_argument("--onednn", choices=("0", "1"), default=None)
    run.add_argument("--no-build", action="store_true", help="use the consumers as built")
    cli_options.runtime_option(run)
    cli_options.sandbox_options(run, default=True)
    run.add_argument(
        "--work-dir", type=Path, default=None, help="working files (default: build/check/)"
    )
    out = parser.add_argument_group("results")
    out.add_argument("--json", type=Path, metavar="FILE", help="machine-readable report")
    out.add_argument(
        "--save-fixture", metavar="NAME", help="save model, inputs and reference as a fixture"
    )
    out.add_argument("--fixtures-dir", type=Path, default=None, help="where --save-fixture writes")


def _build(consumers: list[Consumer], build_dir: Path, console: Any) -> dict[str, str]:
    """Build what needs it; returns the failed builds' errors by consumer."""
    from ..pipeline.build import build_each

    failures: dict[str, str] = {}
    for outcome in build_each(build_dir, consumers):
        name = outcome.consumer
        if outcome.error:
            console.print(f"[red]build of the {name} consumer failed:[/] {outcome.error}")
            failures[name] = outcome.error
        elif outcome.built:
            console.print(f"[dim]built the {name} consumer in {outcome.seconds:.1f}s[/]")
    return failures


def _sandbox_note(record: dict[str, Any]) -> str:
    limits = record["limits"]
    shown = ", ".join(
        f"{name} {value}{unit}"
        for name, value, unit in (
            ("memory", limits["memory_mib"], " MiB"),
            ("CPU", limits["cpu_s"], " s"),
            ("output", limits["output_mib"], " MiB"),
        )
        if value is not None
    )
    where = (
        f"each consumer ran in {record['tool']} (no network, only its run directory writable)"
        if record["enabled"]
        else "none (--no-sandbox): the consumers ran with your rights"
    )
    return f"{where}; limits per process: {shown or 'none'}"


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    environment = cli_options.apply_environment(args.onednn)
    fixtures_dir = cli_options.fixture_dirs(args)[0]
    from rich.text import Text

    from ..pipeline.cells import FAILING
    from ..pipeline.environment import environment_record
    from ..report import document, render_table

    options = options_from_args(args)
    consumers = cli_options.consumers(args)
    failures = {} if args.no_build else _build(consumers, args.build_dir, console)
    settings = cli_options.run_settings(args, environment, build_failures=failures)
    result = run_check(
        options,
        consumers,
        settings,
        on_phase=lambda text: console.print(f"[dim]{text} ...[/]"),
        on_warning=lambda text: console.print(Text("warning: ", style="bold yellow") + Text(text)),
    )
    render_table(result.cells, console)
    if any(c.runtime is not None for c in consumers):  # --runtime: the matrix too
        from ..report.matrix import render_matrix

        render_matrix([c.as_dict() for c in result.cells], console)
    for line in notes(result):
        head, _, rest = line.partition(": ")
        console.print(Text(f"{head}: ", style="dim") + Text(rest))
    console.print(Text("sandbox: ", style="dim") + Text(_sandbox_note(settings.sandbox.as_dict())))
    doc = document(
        result.cells,
        environment_record(settings, result.consumer_info),
        {"check": result.as_dict()},
    )
    cli_options.write_report_files(args, doc, console)
    failing = [c for c in result.cells if c.status in FAILING]
    if args.save_fixture:
        path = save_fixture(result, args.save_fixture, fixtures_dir, options.seed)
        console.print(
            f"fixture saved: {path} (data under {path.parent / 'data' / args.save_fixture})"
        )
        if failing:
            console.print(
                f"[yellow]warning:[/] {len(failing)} cell(s) fail: declare them in {path.name} "
                "(expect=[xfail(...)]) or `interop` will fail"
            )
    return 1 if failing else 0
