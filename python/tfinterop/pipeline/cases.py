"""Fixtures -> exported cases: every fixture x format x signature the export wrote becomes a
``CaseRef`` carrying what comparison needs (tolerances, expectations, requirements)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..consumers import Consumer
from ..fixtures import BrokenFixture, Expectation, Fixture, Tolerance, runtime_version
from ..formats import TFLITE
from ..manifest import Case, Manifest
from .cells import Cell, broken_fixture_cells, error_cells
from .events import Reporter, SilentReporter, StartOnly
from .settings import FixtureSelection


@dataclass
class CaseRef:
    """A manifest case plus what the comparison needs (fixture tolerances, expectations)."""

    fixture: str
    case: Case
    directory: Path
    tolerance_for: Callable[[str, str | None], Tolerance]
    """(output key, runtime of the cell or None for the pinned one) -> tolerance."""
    expectation_for: Callable[[str, str, str, str | None], Expectation | None]
    requires: dict[str, str]
    reference_problem: str | None = None
    """Why there is no reference to compare with (``tfinterop check``: Python failed)."""
    predicted: dict[str, Expectation] = field(default_factory=dict)
    """Runtime version -> ``incompatible``: what the predict step found that runtime cannot
    load or run (``pipeline/predict.py``)."""

    @property
    def label(self) -> str:
        """The signature as the report shows it; a tag set other than ``serve`` is appended
        (``predict@serve,gpu``) so every MetaGraph's signatures get their own cells."""
        return signature_label(self.case)

    @property
    def job_id(self) -> str:
        return f"{self.fixture}/{self.case.format}/{self.label}"


def signature_label(case: Case) -> str:
    if case.tags and case.tags != ["serve"]:
        return f"{case.signature}@{','.join(case.tags)}"  # '@': no glob meaning in expect=
    return case.signature


def exported_label(fixture: str, exporter: str) -> str:
    """The report's fixture label of an export by another TensorFlow (``linear@tf2.15.1``)."""
    return f"{fixture}@tf{exporter}"


def cases_from_manifest(
    fixture: Fixture, manifest: Manifest, exporter: str | None = None
) -> list[CaseRef]:
    """``exporter``: the TensorFlow that exported ``manifest`` when it is not the pinned one
    (``--export-tf``): the cells are labelled ``NAME@tfVERSION``, and a TensorFlow cell run
    on the pinned TensorFlow against that exporter's reference uses the fixture's
    ``runtime_tolerances`` for the exporter's version: the drift between two TensorFlows'
    kernels is the same whichever of them computed the reference (measured: 2.15.1 and
    2.12.0 exports on 2.21 differ exactly as 2.15.1 and 2.12.0 runtimes do on 2.21 exports).
    A ``.tflite`` runs LiteRT's kernels, not TensorFlow's: its cells keep the usual lookup."""

    def tolerance_for(fmt: str) -> Callable[[str, str | None], Tolerance]:
        def lookup(key: str, runtime: str | None) -> Tolerance:
            pinned = runtime_version(runtime) == runtime_version(None)
            if exporter is not None and fmt != TFLITE and pinned:
                runtime = exporter  # reference from the exporter, run on the pinned one
            return fixture.tolerance_for(key, fmt, runtime)

        return lookup

    name = fixture.name if exporter is None else exported_label(fixture.name, exporter)
    return [
        CaseRef(
            name,
            case,
            manifest.directory,
            tolerance_for(case.format),
            fixture.expectation_for,
            fixture.requirements_for(case.format, signature_label(case)),
        )
        for case in manifest.cases
    ]


def applicable(consumer: Consumer, ref: CaseRef) -> bool:
    """Whether the pair is a cell at all: a consumer that does not load the case's format has
    no cell there (no job, not counted, not listed), so a ``skip`` is always a declaration
    with its reason, never the harness filling a matrix."""
    return consumer.supports(ref.case.format)


def cell_expectation(consumer: Consumer, ref: CaseRef) -> Expectation | None:
    """A declared skip/xfail, or a missing capability (strict xfail with the fixture's reason).

    Only meaningful for ``applicable`` pairs. A runtime predicted not to load the case comes
    first: that is what its cell must show, whatever else is declared."""
    if consumer.runtime is not None and consumer.runtime in ref.predicted:
        return ref.predicted[consumer.runtime]
    declared = ref.expectation_for(consumer.family, ref.case.format, ref.label, consumer.runtime)
    if declared is not None:
        return declared
    for capability, reason in ref.requires.items():
        if not consumer.supports(capability):
            return Expectation("xfail", f"{consumer.name} lacks {capability}: {reason}")
    return None


@dataclass
class ExportedCases:
    """The export stage's result: cases to run, and error cells for fixtures that failed to
    load or export (each consumer gets one, so the failure is counted)."""

    refs: list[CaseRef] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    seconds: float = 0.0


def selected_fixtures(selection: FixtureSelection) -> list[Fixture | BrokenFixture]:
    """The fixtures a selection names (all in its directory by default), its shard only."""
    from ..fixtures import load_fixtures, shard_fixtures

    loaded = load_fixtures(selection.directories, selection.names)
    return shard_fixtures(loaded, *selection.shard) if selection.shard else loaded


def export_cases(
    selection: FixtureSelection,
    exports_dir: Path,
    consumers: list[Consumer],
    progress: Reporter | None = None,
) -> ExportedCases:
    """Load the selected fixtures, export them (content-cached), list their cases."""
    from ..export import export_fixtures

    started = time.perf_counter()
    result = ExportedCases()
    loaded = selected_fixtures(selection)
    fixtures = [f for f in loaded if not isinstance(f, BrokenFixture)]
    for broken in (f for f in loaded if isinstance(f, BrokenFixture)):
        result.cells += broken_fixture_cells(broken, consumers)
    with (progress or SilentReporter()).stage("export", len(fixtures)) as stage:
        announce = StartOnly(stage)
        outcomes = export_fixtures(
            fixtures, exports_dir, on_start=lambda f, cached: announce(f.name, cached)
        )
        announce.finish()
        cached = sum(o.cached for o in outcomes)
        failed = sum(o.manifest is None for o in outcomes)
        stage.summary = (
            f"{len(outcomes) - cached - failed} exported, {cached} cached, {failed} failed"
        )
    for fixture, outcome in zip(fixtures, outcomes, strict=True):
        if outcome.manifest is None:
            result.cells += error_cells(fixture.name, consumers, f"export failed: {outcome.error}")
        else:
            result.refs += cases_from_manifest(fixture, outcome.manifest)
    result.seconds = time.perf_counter() - started
    return result
