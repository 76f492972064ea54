"""The ``bench`` command: export (cached), build, measure every cell, derive the ratios, time
interop and check, print and write; and ``--rerender`` of a saved results.json.

(Named ``command``, not ``run``: ``bench.run`` is the function, re-exported by the package.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import consumers as registry
from ..consumers import BuildError, Consumer
from ..errors import UserError
from ..pipeline.build import build_each
from ..pipeline.cases import CaseRef, applicable, cell_expectation, export_cases
from ..pipeline.cells import Cell, apply_expectation
from ..pipeline.settings import FixtureSelection, RunSettings
from .gaps import PerRunGap, measure_gaps
from .interop_timing import cold_interop, interop_lines, time_warm_interop, with_floor
from .measure import BenchRow, bench_cell, machine_description
from .ratios import explain_with_profiles, ratios
from .render import BenchResult, render, write_benchmarks
from .settings import BenchSettings

# How the export stage words a failed export in its error cells (pipeline/cases.py).
_EXPORT_FAILED = "export failed: "


def cell_key(ref: CaseRef) -> tuple[str, str, str]:
    """A case's (fixture, format, signature label): how rows and ratios name their cell."""
    return (ref.fixture, ref.case.format, ref.label)


def exported_cases(
    selection: FixtureSelection,
    build_dir: Path,
    consumers: list[Consumer],
    console: Any = None,
) -> list[CaseRef]:
    """The cases of the selected fixtures, exported (cached); a fixture that fails to load or
    export is left out, a failed export said on ``console`` when one is given."""
    # One consumer is enough for the export stage to give one error cell per failed fixture.
    exported = export_cases(selection, build_dir / "exports", consumers[:1])
    if console is not None:
        for cell in exported.cells:
            if cell.message.startswith(_EXPORT_FAILED):
                error = cell.message.removeprefix(_EXPORT_FAILED)
                console.print(f"[red]export of {cell.fixture} failed:[/] {error}")
    return exported.refs


def _all_passed(rows: list[BenchRow]) -> int:
    return 0 if all(r.status in ("pass", "skip", "xfail", "incompatible") for r in rows) else 1


def rerender(settings: BenchSettings, console: Any) -> int:
    """``bench --rerender FILE``: rebuild rows' expectations, ratios and explanations from a
    saved results.json (no re-measuring; successful profiles are reused, failed ones are
    retried under --profile-budget) and print/write it again."""
    from .profile import SteadyProfile

    source = settings.rerender
    if source is None:
        raise ValueError("rerender needs BenchSettings.rerender (the saved results.json)")
    try:
        saved = json.loads(source.read_text())
        rows = [BenchRow(**r) for r in saved["rows"]]
        interop = dict(saved.get("interop") or {})
        if "isolated_runs" in interop:
            interop = with_floor(interop)  # the floor is derived, so it is re-derived
        interop_lines(interop)  # an old file's floor is shown as recorded, and said to be old
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"cannot re-render {source}: not a results.json written by `tfinterop bench` "
            f"({type(exc).__name__}: {exc})"
        ) from None
    selection = FixtureSelection(
        settings.fixtures.directory, sorted({r.fixture for r in rows}), more=settings.fixtures.more
    )
    refs = {cell_key(ref): ref for ref in exported_cases(selection, settings.build_dir, [])}
    consumers = {c.name: c for c in registry.ALL_CONSUMERS}
    for row in rows:
        ref, consumer = (
            refs.get((row.fixture, row.format, row.signature)),
            consumers.get(row.consumer),
        )
        if ref is not None and consumer is not None and row.status in ("error", "fail"):
            cell = Cell(
                row.fixture, row.format, row.signature, row.consumer, row.status, row.message
            )
            cell = apply_expectation(cell, cell_expectation(consumer, ref))
            row.status, row.message = cell.status, cell.message
    known = {
        (r["fixture"], r["format"], r["signature"], name): SteadyProfile(
            **{
                **p,
                "runs": tuple(p["runs"]),
                "top_functions": [tuple(t) for t in p["top_functions"]],
            }
        )
        for r in saved["ratios"]
        for name, p in (r.get("profiles") or {}).items()
        if not p.get("error")
    }
    result_ratios = ratios(rows)
    recorded = saved["settings"]
    # The settings hold the run options (numbers) and the consumers' environment (strings).
    run_settings = RunSettings(
        build_dir=settings.build_dir,
        threads=(recorded.get("intra_op_threads", 0), recorded.get("inter_op_threads", 0)),
        environment={k: v for k, v in recorded.items() if isinstance(v, str)},
    )
    explain_with_profiles(
        result_ratios, rows, refs, consumers, run_settings, settings.build_dir / "bench",
        lambda text: console.print(f"[dim]{text}[/]"), settings.profile_budget_s, known,
        new_profiles=settings.profile_misses,
    )  # fmt: skip
    gaps = [PerRunGap.from_dict(g) for g in saved.get("per_run_gaps") or []]
    result = BenchResult(rows, result_ratios, saved["settings"], saved["machine"], interop, gaps)
    render(result, console)
    if settings.write:
        write_benchmarks(
            result,
            settings.write,
            "Re-rendered from a saved results.json by `tfinterop bench --rerender` "
            "(expectations, ratios and explanations re-derived; nothing re-measured).",
        )
        console.print(f"benchmarks written to {settings.write}")
    return _all_passed(rows)


def run(settings: BenchSettings, console: Any, environment: dict[str, str]) -> int:
    """The ``bench`` command: export (cached), build, measure every cell, print, write."""
    from ..report import write_json

    consumers = registry.by_name(settings.consumers)
    refs = exported_cases(settings.fixtures, settings.build_dir, consumers, console)
    if settings.build:
        for outcome in build_each(settings.build_dir, consumers):
            if outcome.error:  # measuring a stale binary would publish wrong figures
                raise BuildError(outcome.error)
    run_settings = RunSettings(
        build_dir=settings.build_dir,
        timeout_s=settings.timeout_s,
        jobs=1,
        warmup=settings.warmup,
        repeat=settings.repeat,
        threads=settings.threads,
        environment=environment,
    )
    work_root = settings.build_dir / "bench"
    rows = []
    for ref in refs:
        for consumer in (c for c in consumers if applicable(c, ref)):  # other pairs: no cell
            work = work_root / consumer.name / ref.job_id.replace("/", "__")
            console.print(f"[dim]bench {ref.job_id} on {consumer.name} ...[/]")
            rows.append(bench_cell(consumer, ref, run_settings, work))
    result_ratios = ratios(rows)
    case_refs = {cell_key(r): r for r in refs}
    gaps = (
        measure_gaps(
            rows,
            case_refs,
            {c.name: c for c in consumers},
            run_settings,
            work_root,
            settings.gap_processes,
            lambda text: console.print(f"[dim]{text}[/]"),
        )
        if settings.gap_processes > 0
        else []
    )
    if settings.profile_misses:
        explain_with_profiles(
            result_ratios,
            rows,
            case_refs,
            {c.name: c for c in consumers},
            run_settings,
            work_root,
            lambda text: console.print(f"[dim]{text}[/]"),
            profile_budget_s=settings.profile_budget_s,
        )
    result = BenchResult(
        rows=rows,
        ratios=result_ratios,
        settings={
            "repeat": settings.repeat,
            "warmup": settings.warmup,
            "intra_op_threads": settings.threads[0],
            "inter_op_threads": settings.threads[1],
            **environment,
        },
        machine=machine_description(),
        gaps=gaps,
    )
    if settings.interop_timing:
        result.interop = time_warm_interop(settings, work_root)
    if settings.cold:
        console.print("[dim]cold `nox -s interop` in a fresh clone (several minutes) ...[/]")
        result.interop["cold"] = cold_interop(work_root)
    if settings.locate_timing:  # `locate` and `reduce` on MobileNetV3: locate_timing.py
        from .locate_timing import run as time_locate

        result.interop["locate"] = time_locate(settings, refs, console)
    if settings.runtime_timing:  # one more `--runtime`: runtime_timing.py
        from .runtime_timing import run as time_runtime

        result.interop["runtime"] = time_runtime(settings, console)
    if settings.sandbox_timing:  # the consumer sandbox's start and per-run cost
        from .sandbox_timing import run as time_sandbox

        result.interop["sandbox"] = time_sandbox(settings, refs, run_settings, console)
    if settings.check_timing:  # `check` vs `saved_model_cli run`: check_timing.py
        from .check_timing import run as time_check

        result.interop["check"] = time_check(settings, refs, environment, console)
    render(result, console)
    if settings.json:
        write_json(settings.json, result.as_dict())
    if settings.write:
        write_benchmarks(result, settings.write)
        console.print(f"benchmarks written to {settings.write}")
    return _all_passed(rows)
