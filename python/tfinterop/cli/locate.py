"""``tfinterop locate``: where a consumer's numbers first leave the reference's, on a
fixture cell (frozen graph, or a SavedModel cell through its frozen graph)."""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from ..consumers import FETCHES_TENSORS, by_name, first_with
from ..consumers import REFERENCE as REFERENCE_CAPABILITY
from ..errors import UserError
from ..fixtures import Tolerance
from ..formats import FROZEN, TFLITE
from ..paths import default_fixtures_dir
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


def _cell_options(locate: argparse.ArgumentParser) -> None:
    locate.add_argument("--fixture", "-f", required=True, metavar="NAME", help="the cell's fixture")
    locate.add_argument(
        "--format", required=True, help="frozen, saved_model (via its frozen graph)"
    )
    locate.add_argument("--signature", default=None, help="signature (default: the only/first one)")
    locate.add_argument(
        "--consumer", "-c", action="append", dest="consumers", metavar="NAME",
        help="consumers to locate (default: every one declaring fetches_tensors but the reference)",
    )  # fmt: skip
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


def _cell(args: argparse.Namespace, environment: dict[str, str]) -> Any:
    from ..pipeline.cases import export_cases

    reference = first_with(REFERENCE_CAPABILITY)
    selection = FixtureSelection(args.fixtures_dir or default_fixtures_dir(), [args.fixture])
    exported = export_cases(selection, args.build_dir / "exports", [reference])
    if exported.cells:
        raise UserError(exported.cells[0].message)
    signatures = sorted({r.label for r in exported.refs if r.case.format == args.format})
    if args.format == TFLITE or (args.format != FROZEN and not signatures):
        known = sorted({r.case.format for r in exported.refs})
        raise UserError(
            f"--format {args.format}: no consumer fetches intermediate tensors of it "
            f"(capability {FETCHES_TENSORS}); locate works on {', '.join(f for f in known if f != TFLITE)}"
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
    return wanted, frozen, reference


def _located(args: argparse.Namespace, console: Console) -> tuple[Any, Any, dict[str, str]]:
    """Locate the cell the arguments name: (LocateSettings, LocateResult, environment)."""
    environment = options.apply_environment(None)
    from ..locate import LocateSettings, locate
    from ..pipeline.build import build_each

    wanted, frozen, reference = _cell(args, environment)
    located = by_name(args.consumers) if args.consumers else [
        c for c in by_name(None) if c.supports(FETCHES_TENSORS) and c is not reference
    ]  # fmt: skip
    lacking = [c.name for c in located if not c.supports(FETCHES_TENSORS)]
    if lacking:
        raise UserError(
            f"{', '.join(lacking)} cannot be located: no capability {FETCHES_TENSORS} "
            "(fetching intermediate tensors by name)"
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
    settings = LocateSettings(
        run=run, ref=frozen, reference=reference, consumers=located, tolerance=tolerance,
        work_dir=args.build_dir / "locate" / f"{args.fixture}-{args.format}-{wanted.label}",
        max_nodes=args.max_nodes, isolate=max(0, args.isolate),
        consumer_environment={} if args.onednn is None else {"TF_ENABLE_ONEDNN_OPTS": args.onednn},
        cell_format=args.format, nodes=args.node,
    )  # fmt: skip
    console.print(f"[dim]locating {args.fixture}/{args.format}/{wanted.label} ...[/]")
    result = locate(settings)
    if args.onednn is not None:
        result.notes.append(
            f"located consumers ran with TF_ENABLE_ONEDNN_OPTS={args.onednn}, the reference with "
            f"{environment.get('TF_ENABLE_ONEDNN_OPTS', '?')}"
        )
    return settings, result, environment


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


def cmd_reduce(args: argparse.Namespace, console: Console) -> int:
    from ..locate.reduce import reduce_location
    from ..locate.result import summary_lines

    if args.consumers is not None and len(args.consumers) != 1:
        raise UserError("reduce works on one consumer: give one -c NAME")
    settings, result, _environment = _located(args, console)
    for line in summary_lines(result):
        console.print(line, markup=False)
    location = next(
        (loc for loc in result.locations if loc.status == "diverges"), result.locations[0]
    )
    out = args.out or args.build_dir / "reduce" / (
        f"{result.fixture}-{result.format}-{result.signature}-{location.consumer}"
    )
    check_arguments = [
        "-c", location.consumer, "--atol", f"{settings.tolerance.atol:g}",
        "--rtol", f"{settings.tolerance.rtol:g}", "--no-build",
        *(("--onednn", args.onednn) if args.onednn is not None else ()),
    ]  # fmt: skip
    repro = reduce_location(
        settings.ref.directory / settings.ref.case.model, location, out, check_arguments
    )
    for line in repro.lines():
        console.print(line, markup=False)
    _write_html(args.html, result, console)
    _write_json(
        args.json,
        {**result.as_dict(), "repro": {
            "directory": str(repro.directory), "node": repro.node, "op": repro.op,
            "graph_nodes": repro.graph_nodes, "command": repro.command,
            "reproduces": repro.reproduces, "notes": repro.notes,
        }},
        console,
    )  # fmt: skip
    return 0 if repro.reproduces else 1
