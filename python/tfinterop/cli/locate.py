"""``tfinterop locate``: where a consumer's numbers first leave the reference's, on a
fixture cell (frozen graph, or a SavedModel cell through its frozen graph) or on any model
as ``check`` takes it (``locate MODEL``); ``tfinterop reduce``: the repro of what was found,
or with ``--fail-regex`` the smallest subgraph that still fails that way."""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ..consumers import FETCHES_TENSORS, FETCHES_TFLITE_TENSORS, by_name, first_with, on_runtimes
from ..consumers import REFERENCE as REFERENCE_CAPABILITY
from ..errors import UserError
from ..fixtures import Tolerance
from ..formats import FROZEN, TFLITE
from ..pipeline.settings import FixtureSelection, RunSettings
from . import options


def add_parser(sub: Any) -> None:
    locate = sub.add_parser(
        "locate",
        help="find the first node where a consumer diverges from the reference (every tensor "
        "fetched, then suspects re-run with the reference's inputs fed)",
    )
    _cell_options(locate)
    reduce = sub.add_parser(
        "reduce",
        help="locate, then write the first node that computes differently by itself as a "
        "self-contained repro (graph, inputs, reference, the check command) and confirm it fails",
    )
    _cell_options(reduce)
    reduce.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="where the repro goes (default build/reduce/FIXTURE-FORMAT-SIGNATURE-CONSUMER)",
    )  # fmt: skip
    reduce.add_argument(
        "--fail-regex", metavar="REGEX", default=None,
        help="reduce a failure instead of a divergence: the smallest subgraph (delta debugging "
        "over its nodes) on which the consumer's job still fails with an error matching REGEX",
    )  # fmt: skip
    reduce.add_argument(
        "--max-tests", type=options.positive, default=200, metavar="N",
        help="--fail-regex: run the consumer at most N times (default 200), then keep the "
        "smallest failing subgraph found",
    )  # fmt: skip
    reduce.add_argument(
        "--save-fixture", metavar="NAME", default=None,
        help="also save the repro as fixture NAME (in --fixtures-dir), as check --save-fixture",
    )  # fmt: skip


MODEL_OPTIONS = ("tags", "inputs", "input", "output", "dim", "shape", "range", "example")
"""Options for a model PATH only (as ``check`` reads them)."""


def _cell_options(locate: argparse.ArgumentParser) -> None:
    locate.add_argument(
        "path", nargs="?", type=Path, default=None, metavar="MODEL",
        help="any SavedModel directory or GraphDef (.pb, .pbtxt), as check takes it "
        "(instead of --fixture)",
    )  # fmt: skip
    locate.add_argument("--fixture", "-f", metavar="NAME", help="the cell's fixture")
    locate.add_argument(
        "--format", default=None,
        help="with --fixture: frozen, saved_model (via its frozen graph), tflite (the "
        "interpreter's tensors mapped onto the frozen graph's)",
    )  # fmt: skip
    locate.add_argument("--signature", default=None, help="signature (default: the only/first one)")
    model = locate.add_argument_group("a model PATH (as check reads them)")
    model.add_argument("--tags", help="SavedModel tag set, comma-separated (default: serve)")
    model.add_argument("--inputs", type=Path, metavar="FILE.npz", help="input values")
    model.add_argument("--input", action="append", metavar="NAME", help="graph: tensor to feed")
    model.add_argument("--output", action="append", metavar="NAME", help="graph: tensor to fetch")
    model.add_argument("--seed", type=int, default=0, help="seed of generated inputs (default 0)")
    model.add_argument("--dim", action="append", metavar="[KEY=]N", help="unknown dimensions")
    model.add_argument("--shape", action="append", metavar="KEY=D0,D1", help="one input's shape")
    model.add_argument("--range", action="append", metavar="[KEY=]LOW,HIGH", help="value range")
    model.add_argument("--example", action="append", metavar="NAME=TYPE:LEN", help="tf.Example")
    # What check's options_from_args reads that locate does not offer.
    locate.set_defaults(all_signatures=False, expected=None, python_loader="auto", work_dir=None)
    locate.add_argument(
        "--consumer", "-c", action="append", dest="consumers", metavar="NAME",
        help="consumers to locate (default: every one declaring fetches_tensors, "
        "fetches_tflite_tensors for --format tflite, but the reference)",
    )  # fmt: skip
    options.runtime_option(locate)
    locate.add_argument("--atol", type=float, default=None, help="default: the fixture's")
    locate.add_argument("--rtol", type=float, default=None, help="default: the fixture's")
    locate.add_argument(
        "--onednn", choices=("0", "1"), default=None,
        help="TF_ENABLE_ONEDNN_OPTS of the located consumers only; the reference keeps 0",
    )  # fmt: skip
    locate.add_argument(
        "--max-nodes", type=options.positive, default=2000, metavar="N",
        help="fetch at most N nodes at once: evenly spread, then refined (default 2000)",
    )  # fmt: skip
    locate.add_argument(
        "--isolate", type=int, default=3, metavar="K",
        help="re-run the first K diverging nodes with the reference's inputs fed (default 3)",
    )  # fmt: skip
    locate.add_argument(
        "--node", action="append", default=[], metavar="NAME",
        help="also isolate this node (its inputs fed with the reference's values)",
    )  # fmt: skip
    locate.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
    locate.add_argument(
        "--html", type=Path, metavar="FILE",
        help="a self-contained page: the error along the graph per consumer, suspects",
    )  # fmt: skip
    locate.add_argument("--fixtures-dir", type=Path, default=None)
    locate.add_argument("--timeout", type=float, default=900.0)
    locate.add_argument("--threads", type=options.threads, default=(0, 0), metavar="INTRA,INTER")
    locate.add_argument("--no-build", action="store_true")
    options.common(locate)


def _model_cell(args: argparse.Namespace) -> Any:
    """``locate MODEL``: the case prepared through the check API, a SavedModel's signature
    frozen (``locate/model.py``): (ModelCell, reference)."""
    from ..check import DEFAULT_TOLERANCE
    from ..locate.model import model_cell
    from .check import options_from_args

    if args.format is not None:
        raise UserError("--format is for --fixture: a model's format is what MODEL is")
    # check's own parsing of --dim/--shape/--range/--example; the tolerance is settled later.
    check_options = options_from_args(
        argparse.Namespace(**{**vars(args), "atol": DEFAULT_TOLERANCE.atol,
                              "rtol": DEFAULT_TOLERANCE.rtol})
    )  # fmt: skip
    return model_cell(check_options, args.build_dir / "locate" / "models")


def _cell(args: argparse.Namespace, environment: dict[str, str]) -> Any:
    from ..pipeline.cases import export_cases

    if args.path is not None and args.fixture is not None:
        raise UserError("give a model PATH or --fixture NAME, not both")
    if args.path is None and args.fixture is None:
        raise UserError("give a model PATH (SavedModel directory or GraphDef) or --fixture NAME")
    if args.path is not None:
        cell = _model_cell(args)
        return cell.wanted, cell.frozen, first_with(REFERENCE_CAPABILITY), cell
    given = [f"--{name}" for name in MODEL_OPTIONS if getattr(args, name) not in (None, [])]
    if given:
        raise UserError(f"{', '.join(given)}: for a model PATH, not --fixture")
    if args.format is None:
        raise UserError("--fixture needs --format (frozen, or saved_model via its frozen graph)")
    reference = first_with(REFERENCE_CAPABILITY)
    first, *more = options.fixture_dirs(args)
    selection = FixtureSelection(first, [args.fixture], more=more)
    exported = export_cases(selection, args.build_dir / "exports", [reference])
    if exported.cells:
        raise UserError(exported.cells[0].message)
    signatures = sorted({r.label for r in exported.refs if r.case.format == args.format})
    if args.format != FROZEN and not signatures:
        known = sorted({r.case.format for r in exported.refs})
        raise UserError(
            f"--format {args.format}: {args.fixture} exports no such model; "
            f"locate works on {', '.join(known)}"
        )
    label = args.signature or (signatures[0] if signatures else None)
    if label not in signatures:
        near = difflib.get_close_matches(str(label), signatures, n=3) or signatures
        raise UserError(f"--signature {label}: not a signature of {args.fixture} {args.format}; "
                        f"did you mean {', '.join(near)}?")  # fmt: skip
    wanted = next(r for r in exported.refs if r.case.format == args.format and r.label == label)
    frozen = next(
        (
            r
            for r in exported.refs
            if r.case.format == FROZEN and r.case.signature == wanted.case.signature
        ),
        None,
    )
    if frozen is None:
        raise UserError(f"{args.fixture} exports no frozen graph of {label}: nothing to fetch from")
    return wanted, frozen, reference, None


def _located(args: argparse.Namespace, console: Console) -> tuple[Any, Any, dict[str, str]]:
    """Locate the cell the arguments name: (LocateSettings, LocateResult, environment)."""
    from ..locate import locate
    from ..locate.tflite import locate_tflite

    settings, environment, notes = _settings(args)
    console.print(
        f"[dim]locating {settings.ref.fixture}/{settings.cell_format}/{settings.ref.label} ...[/]"
    )
    # A .tflite's tensors are the interpreter's, mapped onto the frozen graph's first.
    result = locate_tflite(settings) if settings.cell_format == TFLITE else locate(settings)
    result.notes += notes
    if args.onednn is not None:
        result.notes.append(
            f"located consumers ran with TF_ENABLE_ONEDNN_OPTS={args.onednn}, the reference with "
            f"{environment.get('TF_ENABLE_ONEDNN_OPTS', '?')}"
        )
    return settings, result, environment


def _settings(args: argparse.Namespace) -> tuple[Any, dict[str, str], list[str]]:
    """The cell the arguments name, ready to locate or reduce: (LocateSettings,
    environment, notes about the cell)."""
    environment = options.apply_environment(None)
    from ..locate import LocateSettings
    from ..pipeline.build import build_each

    wanted, frozen, reference, model = _cell(args, environment)
    fetches = FETCHES_TFLITE_TENSORS if wanted.case.format == TFLITE else FETCHES_TENSORS
    if wanted.case.format == TFLITE and getattr(args, "command", "") == "reduce":
        raise UserError("reduce writes TensorFlow graph repros; a tflite divergence is located "
                        "(locate --format tflite), its op run alone there")  # fmt: skip
    located = by_name(args.consumers) if args.consumers else [
        c for c in by_name(None) if c.supports(fetches) and c is not reference
    ]  # fmt: skip
    if args.runtimes:  # the located consumers on those runtimes; the reference stays pinned
        from ..runtimes import resolve_versions

        located = on_runtimes(located, resolve_versions(args.runtimes))
    lacking = [c.name for c in located if not c.supports(fetches)]
    if lacking:
        raise UserError(
            f"{', '.join(lacking)} cannot be located: no capability {fetches} "
            f"(fetching intermediate tensors{' by name' if fetches == FETCHES_TENSORS else ''})"
        )
    if not args.no_build:
        for outcome in build_each(args.build_dir, [reference, *located]):
            if outcome.error:
                raise UserError(f"build of the {outcome.consumer} consumer failed: {outcome.error}")
    run = RunSettings(
        build_dir=args.build_dir, timeout_s=args.timeout, warmup=0, repeat=1,
        threads=args.threads, environment=environment,
    )  # fmt: skip
    for consumer in [reference, *located]:
        missing = run.unavailable(consumer)
        if missing:
            raise UserError(f"{consumer.name}: {missing}")
    declared = wanted.tolerance_for(wanted.case.outputs[0].key, None)
    tolerance = Tolerance(
        atol=declared.atol if args.atol is None else args.atol,
        rtol=declared.rtol if args.rtol is None else args.rtol,
    )
    name = model.name if model else f"{args.fixture}-{args.format}-{wanted.label}"
    settings = LocateSettings(
        run=run, ref=frozen, reference=reference, consumers=located, tolerance=tolerance,
        work_dir=args.build_dir / "locate" / name,
        max_nodes=args.max_nodes, isolate=max(0, args.isolate),
        consumer_environment={} if args.onednn is None else {"TF_ENABLE_ONEDNN_OPTS": args.onednn},
        cell_format=wanted.case.format, nodes=args.node,
    )  # fmt: skip
    return settings, environment, model.notes if model else []


def _write_json(path: Path | None, data: dict[str, Any], console: Console) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n")
        console.print(f"written to {path}", markup=False)


def _write_html(path: Path | None, result: Any, console: Console) -> None:
    if path is not None:
        from ..locate.html import render_html

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(result), encoding="utf-8")
        console.print(f"written to {path}", markup=False)


def cmd_locate(args: argparse.Namespace, console: Console) -> int:
    from ..locate.result import summary_lines

    _settings, result, _environment = _located(args, console)
    for line in summary_lines(result):
        console.print(line, markup=False)
    _write_json(args.json, result.as_dict(), console)
    _write_html(args.html, result, console)
    return 1 if result.failed else 0


def _check_arguments(args: argparse.Namespace, consumer: Any, tolerance: Any) -> list[str]:
    """The repro's ``tfinterop check`` options: the consumer's family and runtime, oneDNN,
    and the tolerance (None: a failure to reproduce, no numbers compared)."""
    return [
        "-c", consumer.family,
        *(("--runtime", consumer.runtime) if consumer.runtime is not None else ()),
        *(("--atol", f"{tolerance.atol:g}", "--rtol", f"{tolerance.rtol:g}") if tolerance else ()),
        "--no-build",
        *(("--onednn", args.onednn) if args.onednn is not None else ()),
    ]  # fmt: skip


def _fixture_arguments(args: argparse.Namespace) -> tuple[list[str], Path | None]:
    """``--save-fixture NAME`` refused now if it cannot be written (before a long reduction);
    the arguments that make the confirming check save it, and the fixture file."""
    if args.save_fixture is None:
        return [], None
    from ..fixtures import NAME_PATTERN

    directory = options.fixture_dirs(args)[0]
    if not NAME_PATTERN.match(args.save_fixture):
        raise UserError(f"--save-fixture {args.save_fixture!r} must match {NAME_PATTERN.pattern}")
    if not directory.is_dir():
        raise UserError(f"--save-fixture: fixtures directory {directory} does not exist")
    source = directory / f"{args.save_fixture}.py"
    if source.exists() or (directory / "data" / args.save_fixture).exists():
        raise UserError(f"--save-fixture: {source} already exists: choose another name")
    return ["--save-fixture", args.save_fixture, "--fixtures-dir", str(directory)], source


def _saved(repro: Any, source: Path | None, console: Console) -> None:
    """Say where the fixture went; a repro that does not fail on its own is not kept."""
    if source is None:
        return
    if repro.reproduces and source.exists():
        console.print(f"fixture saved: {source} (data under {source.parent / 'data' / source.stem})",
                      markup=False)  # fmt: skip
        return
    import shutil

    source.unlink(missing_ok=True)
    shutil.rmtree(source.parent / "data" / source.stem, ignore_errors=True)
    console.print(f"fixture {source.stem} not saved: the repro does not fail on its own",
                  markup=False)  # fmt: skip


def cmd_reduce(args: argparse.Namespace, console: Console) -> int:
    from ..locate.reduce import reduce_location
    from ..locate.result import summary_lines
    from ..tensors import safe_file_name

    if args.consumers is not None and len(args.consumers) != 1:
        raise UserError("reduce works on one consumer: give one -c NAME")
    fixture_arguments, fixture_source = _fixture_arguments(args)
    if args.fail_regex is not None:
        return _reduce_failure(args, console, fixture_arguments, fixture_source)
    settings, result, _environment = _located(args, console)
    for line in summary_lines(result):
        console.print(line, markup=False)
    location = next(
        (loc for loc in result.locations if loc.status == "diverges"), result.locations[0]
    )
    out = args.out or args.build_dir / "reduce" / safe_file_name(
        f"{result.fixture}-{result.format}-{result.signature}-{location.consumer}"
    )
    consumer = next(c for c in settings.consumers if c.name == location.consumer)
    repro = reduce_location(
        settings.ref.directory / settings.ref.case.model, location, out,
        _check_arguments(args, consumer, settings.tolerance), fixture_arguments,
    )  # fmt: skip
    for line in repro.lines():
        console.print(line, markup=False)
    _saved(repro, fixture_source, console)
    _write_html(args.html, result, console)
    _write_json(args.json, {**result.as_dict(), "repro": repro.as_dict()}, console)
    return 0 if repro.reproduces else 1


def _reduce_failure(
    args: argparse.Namespace, console: Console, fixture_arguments: list[str],
    fixture_source: Path | None,
) -> int:  # fmt: skip
    """``reduce --fail-regex``: delta debugging to the smallest failing subgraph."""
    from ..locate.failing import compile_pattern, reduce_failure
    from ..tensors import safe_file_name

    compile_pattern(args.fail_regex)  # refused before anything runs
    if args.html is not None:
        raise UserError("--html shows a located divergence; --fail-regex reduces a failure")
    if args.consumers is None or (args.runtimes is not None and len(args.runtimes) != 1):
        raise UserError("--fail-regex reduces one consumer's failure: give one -c NAME "
                        "(and at most one --runtime VERSION)")  # fmt: skip
    settings, _environment, notes = _settings(args)
    (consumer,) = settings.consumers
    cell = f"{settings.ref.fixture}/{settings.cell_format}/{settings.ref.label}"
    console.print(f"[dim]reducing {cell} in {consumer.name} to what fails with "
                  f"/{args.fail_regex}/ ...[/]", highlight=False)  # fmt: skip
    for note in notes:
        console.print(note, markup=False)
    out = args.out or args.build_dir / "reduce" / safe_file_name(
        f"{settings.ref.fixture}-{settings.cell_format}-{settings.ref.label}-{consumer.name}-fails"
    )

    def progress(number: int, nodes: int, outcome: Any) -> None:
        verdict = "fails that way" if outcome.matched else "does not"
        what = f"the full graph ({nodes} nodes)" if number == 0 else f"{nodes} kept"
        console.print(f"[dim]  test {number + 1}: {what}: {verdict}[/]")

    reduction = reduce_failure(
        settings, consumer, args.fail_regex, out, _check_arguments(args, consumer, None),
        max_tests=args.max_tests, confirm_arguments=fixture_arguments, on_test=progress,
    )  # fmt: skip
    for line in reduction.lines():
        console.print(line, markup=False)
    assert reduction.repro is not None
    _saved(reduction.repro, fixture_source, console)
    _write_json(args.json, {"cell": cell, "notes": notes, **reduction.as_dict()}, console)
    return 0 if reduction.repro.reproduces else 1
