"""Fixtures -> exported cases: every fixture x format x signature the export wrote becomes a
``CaseRef`` carrying what comparison needs (tolerances, expectations, requirements)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..consumers import Consumer
from ..fixtures import BrokenFixture, Expectation, Fixture, Tolerance
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
    tolerance_for: Callable[[str], Tolerance]
    expectation_for: Callable[[str, str, str], Expectation | None]
    requires: dict[str, str]
    reference_problem: str | None = None
    """Why there is no reference to compare with (``tfinterop check``: Python failed)."""

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


def cases_from_manifest(fixture: Fixture, manifest: Manifest) -> list[CaseRef]:
    def tolerance_for(fmt: str) -> Callable[[str], Tolerance]:
        return lambda key: fixture.tolerance_for(key, fmt)

    return [
        CaseRef(
            fixture.name,
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

    Only meaningful for ``applicable`` pairs."""
    declared = ref.expectation_for(consumer.name, ref.case.format, ref.label)
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


def export_cases(
    selection: FixtureSelection,
    exports_dir: Path,
    consumers: list[Consumer],
    progress: Reporter | None = None,
) -> ExportedCases:
    """Load the selected fixtures, export them (content-cached), list their cases."""
    from ..export import export_fixtures
    from ..fixtures import load_fixtures, shard_fixtures

    started = time.perf_counter()
    result = ExportedCases()
    loaded = load_fixtures(selection.directory, selection.names)
    if selection.shard:
        loaded = shard_fixtures(loaded, *selection.shard)
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
