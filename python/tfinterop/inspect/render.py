"""Rich console rendering of an ``Inspection`` (``tfinterop inspect`` without ``--json``)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..formats import SAVED_MODEL
from .analyse import Inspection, MetaGraphReport, format_shape
from .compat import ERROR, INFO, WARNING
from .savedmodel import TensorInfo


def _histogram(histogram: dict[str, int], limit: int = 12) -> str:
    items = list(histogram.items())
    shown = ", ".join(f"{op} {count}" for op, count in items[:limit])
    return shown + (f", … (+{len(items) - limit} op types)" if len(items) > limit else "")


def _signature_table(meta: MetaGraphReport) -> Table:
    table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
    for column in ("signature", "method", "", "key", "tensor", "op", "dtype", "shape"):
        table.add_column(column, no_wrap=column not in ("method",))
    for signature in meta.signatures:
        style = "" if signature.callable else "dim"
        rows: list[tuple[str, str, TensorInfo | None]]
        rows = [("in", k, t) for k, t in sorted(signature.inputs.items())]
        rows += [("out", k, t) for k, t in sorted(signature.outputs.items())]
        if not rows:
            rows = [("", "", None)]
        for index, (kind, key, info) in enumerate(rows):
            table.add_row(
                Text(signature.key if index == 0 else "", style=style or "bold"),
                Text(signature.method_name if index == 0 else "", style="dim"),
                kind,
                key,
                info.name if info else "",
                info.op if info else "",
                info.dtype if info else "",
                format_shape(info.shape) if info else "",
                style=style,
            )
    return table


def _kernel_lines(inspection: Inspection, console: Console) -> None:
    kernels = inspection.kernels
    if not kernels.checked:
        console.print(Text("Kernels: not checked: ", style="yellow") + Text(kernels.reason))
        return
    problems = inspection.kernel_problems
    head = (
        f"Kernels: {kernels.ops_checked} op types checked against the consumers' "
        f"libtensorflow (TensorFlow {kernels.tf_version})"
    )
    if not problems:
        console.print(Text(head + ": all registered, all with CPU kernels", style="green"))
        return
    console.print(Text(head + f": {len(problems)} will not load or run", style="bold red"))
    for problem in problems:
        console.print(Text("  ✗ ", style="bold red") + Text(problem.describe()))


_MARKS = {ERROR: ("✗ ", "bold red"), WARNING: ("! ", "yellow")}


def _runtime_lines(inspection: Inspection, console: Console) -> None:
    """One header per other runtime (``inspect --runtime``), then one line per problem; attrs
    the runtime ignores without effect are only counted."""
    several = len(inspection.meta_graphs) > 1
    for check in inspection.runtimes:
        problems = [p for p in check.problems if p.severity != INFO]
        ignored = sum(p.count for p in check.problems if p.severity == INFO)
        errors = sum(1 for p in problems if p.fatal)
        verdict = (
            f"{errors} problem{'s' * (errors != 1)} will fail loading or running"
            if errors
            else "loads and runs"
        )
        warnings = len(problems) - errors
        extra = [f"{warnings} warning{'s' * (warnings != 1)}"] if warnings else []
        if ignored:
            extra.append(f"{ignored} attr{'s' * (ignored != 1)} it ignores harmlessly")
        console.print(
            Text(f"Runtime TensorFlow {check.runtime}: ", style="bold")
            + Text(verdict, style="bold red" if errors else "green")
            + Text(f" ({', '.join(extra)})" if extra else "")
        )
        for problem in problems:
            mark, style = _MARKS[problem.severity]
            where = f"[{problem.meta_graph}] " if several and problem.meta_graph else ""
            console.print(Text("  " + mark, style=style) + Text(where + problem.message))


def render(inspection: Inspection, console: Console) -> None:
    title = "SavedModel" if inspection.format == SAVED_MODEL else "GraphDef (frozen graph)"
    console.print(Text(f"{title}: {inspection.path}", style="bold"))
    if inspection.format == SAVED_MODEL:
        for meta in inspection.meta_graphs:
            graph = meta.graph
            git_version = meta.tensorflow_git_version
            git = f" ({git_version})" if git_version and git_version != "unknown" else ""
            console.print(
                Text(f"\nMetaGraph tags: {','.join(meta.tags)}", style="bold cyan")
                + Text(
                    f"  written by TensorFlow {meta.tensorflow_version or 'unknown'}{git}, "
                    f"{meta.style}"
                )
            )
            console.print(_signature_table(meta))
            console.print(
                f"graph: {graph.node_count} nodes, {len(graph.functions)} functions "
                f"({graph.function_op_count} nodes), GraphDef producer {graph.producer}; "
                f"control flow: {', '.join(graph.control_flow) or 'none'}"
            )
            console.print(
                f"ops: {_histogram(graph.op_histogram)}; "
                f"{len(graph.ops_used)} op types with the function library"
            )
            for signature in meta.signatures:
                if signature.callable and signature.stateful:
                    console.print(
                        Text(f"stateful: {signature.key}", style="yellow")
                        + Text(f" writes variables ({', '.join(signature.state_writers)})")
                    )
                for note in signature.notes:
                    console.print(Text(f"note: {signature.key}: ", style="dim") + Text(note))
        assets = ", ".join(inspection.assets) or "none"
        console.print(f"\nassets: {assets}")
        if inspection.variables:
            total = sum(inspection.variables.values())
            console.print(f"variables: {len(inspection.variables)} files, {total} bytes")
        else:
            console.print("variables: none")
    else:
        graph_analysis = inspection.graph
        assert graph_analysis is not None
        graph = graph_analysis
        table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
        for column in ("", "tensor", "op", "dtype", "shape", "note"):
            table.add_column(column, no_wrap=column != "note")
        for kind, items in (
            ("input", graph.inputs),
            ("optional", graph.optional_inputs),
            ("output", graph.outputs),
        ):
            for info in items:
                table.add_row(
                    kind,
                    info.name,
                    info.op,
                    info.dtype or "?",
                    format_shape(info.shape) if info.dtype else "?",
                    info.note,
                )
        console.print(Text("likely inputs and outputs", style="bold cyan"))
        console.print(table)
        console.print(
            f"graph: {graph.node_count} nodes, {len(graph.functions)} functions "
            f"({graph.function_op_count} nodes), GraphDef producer {graph.producer}; "
            f"control flow: {', '.join(graph.control_flow) or 'none'}; "
            f"frozen: {'yes' if graph.frozen else 'NO'}"
        )
        console.print(f"ops: {_histogram(graph.op_histogram)}")
    _kernel_lines(inspection, console)
    _runtime_lines(inspection, console)
    for warning in inspection.warnings:
        console.print(Text("warning: ", style="bold yellow") + Text(warning))
