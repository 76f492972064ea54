"""``pytest --tfinterop``: every cell (fixture x format x signature x consumer) as a test item.

Registered through the ``pytest11`` entry point, so every pytest run loads this module; it
does nothing until ``--tfinterop`` is given: only the options are declared, nothing of the
pipeline is imported (the project's own suite runs with the plugin installed).

When enabled it drives the pipeline's own stages, never the CLI:

- collection: ``export_cases`` (content-cached, as ``tfinterop interop`` exports) lists the
  cases; each applicable consumer x case pair is an item with the id ``JOB_ID/CONSUMER``
  (``linear/frozen/serving_default/rust``); declared skips are skip marks already.
- setup of a consumer's first item: ``build_consumers`` for that consumer (a failed build is
  an error of its items), then ``run_consumers`` once over all of that consumer's items left
  in ``session.items`` (after ``-k``, ``-m`` and ``--deselect``): one process per consumer.
- call: the item's ``Cell``, after ``apply_expectation``, decides the outcome; a failure's
  text is the cell's message (what the console report shows), without a Python traceback.

Under pytest-xdist, ``--dist load`` (what ``-n`` means by default) becomes ``loadgroup`` and
the ids carry the consumer as the group (``…/rust@rust``), so a consumer's items all go to
one worker and no consumer runs twice (docs/pytest-plugin.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .consumers import Consumer
    from .pipeline.cases import CaseRef
    from .pipeline.cells import Cell
    from .pipeline.settings import RunSettings

INI_FIXTURES = "tfinterop_fixtures"
DEFAULT_FIXTURES = "fixtures"
"""In the rootdir, when neither the option nor the ini value names a directory."""
MARKER = "tfinterop"
GROUPED = "tfinterop_grouped"
"""pytest-xdist worker input: the controller distributes by ``--dist loadgroup``."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tfinterop", "tfinterop interop cells (docs/pytest-plugin.md)")
    group.addoption(
        "--tfinterop",
        action="store_true",
        default=False,
        help="collect one test per interop cell (fixture/format/signature/consumer)",
    )
    group.addoption(
        "--tfinterop-fixtures",
        action="append",
        default=[],
        metavar="DIR",
        help=f"directory of fixture .py files (repeatable; default: the {INI_FIXTURES} ini "
        f"value, else {DEFAULT_FIXTURES}/ in the rootdir)",
    )
    group.addoption(
        "--tfinterop-consumer",
        action="append",
        default=[],
        dest="tfinterop_consumers",
        metavar="NAME",
        help="run this consumer (repeatable; default: the default set, as tfinterop interop)",
    )
    group.addoption(
        "--tfinterop-build-dir",
        default=None,
        metavar="DIR",
        help="where exports, builds and runs go (default: as the tfinterop command line)",
    )
    parser.addini(INI_FIXTURES, type="paths", default=[], help="tfinterop fixture directories")


@dataclass(frozen=True)
class PluginSettings:
    """What ``--tfinterop`` runs, resolved from pytest's options and ini values in one place
    (``plugin_settings``), so other sources (a project configuration) can join there."""

    fixture_dirs: tuple[Path, ...]
    consumers: tuple[str, ...] = ()
    """Consumer names; empty: the registry's default set."""
    build_dir: Path = Path("build")
    timeout_s: float = 900.0
    warmup: int = 1
    repeat: int = 3
    """Timeout and timing runs as ``tfinterop interop``'s defaults."""


def plugin_settings(config: pytest.Config) -> PluginSettings | None:
    """The plugin's settings, or None when ``--tfinterop`` is not given. A mistake in them is
    a ``pytest.UsageError``: one line, exit status 4."""
    if not config.getoption("tfinterop"):
        return None
    from .consumers import register_project
    from .errors import UserError
    from .paths import default_build_dir
    from .project import load_config

    here = config.invocation_params.dir
    try:  # the project's [tool.tfinterop]: its fixtures, consumers and build dir
        project = load_config(config.rootpath)
        register_project(project.consumers)
    except UserError as exc:
        raise pytest.UsageError(f"tfinterop: {exc}") from None
    given = [here / d for d in config.getoption("tfinterop_fixtures")]
    configured = [Path(p) for p in config.getini(INI_FIXTURES)]
    fixture_dirs = given or configured or project.fixtures or [config.rootpath / DEFAULT_FIXTURES]
    missing = [str(d) for d in fixture_dirs if not d.is_dir()]
    if missing:
        raise pytest.UsageError(
            f"tfinterop: fixtures directory {', '.join(missing)} does not exist "
            f"(--tfinterop-fixtures DIR or the {INI_FIXTURES} ini value)"
        )
    build = config.getoption("tfinterop_build_dir")
    try:
        build_dir = here / build if build else project.build_dir or default_build_dir()
        names = tuple(config.getoption("tfinterop_consumers") or project.default_consumers)
        _consumers(names)  # an unknown name fails here, before anything is exported
    except UserError as exc:
        raise pytest.UsageError(f"tfinterop: {exc}") from None
    return PluginSettings(tuple(d.resolve() for d in fixture_dirs), names, build_dir.resolve())


def _consumers(names: Iterable[str]) -> list[Consumer]:
    from .consumers import by_name

    return by_name(list(names) or None)


def pytest_configure(config: pytest.Config) -> None:
    settings = plugin_settings(config)
    if settings is None:
        return
    config.addinivalue_line("markers", f"{MARKER}: an interop cell collected by --tfinterop")
    # `-n N` means `--dist load`, which would spread a consumer's items over the workers and
    # start the consumer once per worker; loadgroup keeps each consumer on one worker.
    if getattr(config.option, "dist", "no") == "load" and getattr(config.option, "tx", None):
        config.option.dist = "loadgroup"
    config.pluginmanager.register(CellSession(settings), "tfinterop-cells")


class ConsumerUnavailable(Exception):
    """The consumer cannot run (its build failed, it is not installed, its run could not
    start): its items are errors, with this message."""


class CellFailed(Exception):
    """The cell failed (fail, error, or an expected failure that passed): its message."""


@dataclass
class ConsumerResult:
    """One consumer's run in this process: its cells by job id, or why there are none."""

    cells: dict[str, Cell] = field(default_factory=dict)
    plan: str = ""
    """The plan file it ran (empty: nothing to run)."""
    jobs: int = 0
    problem: str | None = None
    seconds: float = 0.0


class CellSession:
    """The plugin's state for one session (one per xdist worker): exported cases, builds and
    consumer runs, each done at most once."""

    def __init__(self, settings: PluginSettings) -> None:
        self.settings = settings
        self.refs: dict[str, CaseRef] = {}
        self.consumers: dict[str, Consumer] = {}
        self.built: dict[str, str | None] = {}
        self.results: dict[str, ConsumerResult] = {}
        self._run_settings: RunSettings | None = None

    def pytest_report_header(self, config: pytest.Config) -> str:
        chosen = ", ".join(self.settings.consumers) or "the default set"
        dirs = ", ".join(str(d) for d in self.settings.fixture_dirs)
        return (
            f"tfinterop: fixtures {dirs}; consumers {chosen}; build dir {self.settings.build_dir}"
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Each consumer process this session started (none in an xdist controller: its
        workers ran them)."""
        if not self.results:
            return
        terminalreporter.section("tfinterop consumer runs", sep="-")
        for name, result in self.results.items():
            ran = result.problem or f"{result.jobs} jobs in one process, {result.seconds:.1f} s"
            terminalreporter.line(
                f"{name}: {ran}" + (f" (plan {result.plan})" if result.plan else "")
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """pytest-xdist, in the controller: tell each worker whether items are grouped (a
        worker re-parses the command line, where ``-n`` alone does not say loadgroup)."""
        node.workerinput[GROUPED] = node.config.getoption("dist") == "loadgroup"

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        # The cells join the session's own collection (not appended to the items later), so
        # they are counted, selectable with -k/-m and listed by --collect-only like any test.
        report = yield
        if isinstance(collector, pytest.Session) and report.passed:
            report.result.append(
                CellCollector.from_parent(collector, name=MARKER, nodeid=MARKER, cells=self)
            )
        return report

    def run_settings(self) -> RunSettings:
        if self._run_settings is None:
            from .pipeline.settings import RunSettings
            from .tfenv import DEFAULT_CONSUMER_ENV

            # The command line's defaults (oneDNN off, quiet logs) unless this environment
            # sets them; set here too, since the export imports TensorFlow in this process.
            for key, value in DEFAULT_CONSUMER_ENV.items():
                os.environ.setdefault(key, value)
            self._run_settings = RunSettings(
                build_dir=self.settings.build_dir,
                timeout_s=self.settings.timeout_s,
                warmup=self.settings.warmup,
                repeat=self.settings.repeat,
                environment={key: os.environ[key] for key in DEFAULT_CONSUMER_ENV},
            )
        return self._run_settings

    def collect(self, parent: CellCollector) -> list[CellItem]:
        from .pipeline.cases import applicable, cell_expectation, export_cases
        from .pipeline.settings import FixtureSelection

        run_settings = self.run_settings()
        consumers = _consumers(self.settings.consumers)
        self.consumers = {c.name: c for c in consumers}
        first, *more = self.settings.fixture_dirs
        exported = export_cases(
            FixtureSelection(first, more=more), run_settings.build_dir / "exports", consumers
        )
        # Under loadgroup the id carries the group itself: xdist's own xdist_group mark
        # renames items through a field pytest 9.2 no longer reads (pytest-xdist#1386).
        group = getattr(parent.config, "workerinput", {}).get(GROUPED, False)
        items: list[CellItem] = []

        def item(job_id: str, consumer: str, path: Path, known: Cell | None = None) -> CellItem:
            name = f"{job_id}/{consumer}"
            made = CellItem.from_parent(
                parent,
                name=name,
                nodeid=f"{name}@{consumer}" if group else name,
                path=path,
                job_id=job_id,
                consumer=consumer,
                known=known,
            )
            made.add_marker(MARKER)
            items.append(made)
            return made

        for ref in exported.refs:
            self.refs[ref.job_id] = ref
            for consumer in consumers:
                if not applicable(consumer, ref):
                    continue
                made = item(ref.job_id, consumer.name, self._source(ref.fixture))
                expectation = cell_expectation(consumer, ref)
                if expectation is not None and expectation.kind == "skip":
                    made.add_marker(pytest.mark.skip(reason=expectation.reason))
        for cell in exported.cells:  # fixtures that failed to load or export
            job_id = f"{cell.fixture}/{cell.format}/{cell.signature}"
            item(job_id, cell.consumer, self._source(cell.fixture), cell)
        return items

    def _source(self, fixture: str) -> Path:
        """Where an item points: the fixture's file when it is named after the fixture (as
        ``tfinterop new-fixture`` writes it), else the first fixtures directory. Inside the
        project either way, so pytest applies the project's conftest.py files to the item."""
        for directory in self.settings.fixture_dirs:
            if (directory / f"{fixture}.py").is_file():
                return directory / f"{fixture}.py"
        return self.settings.fixture_dirs[0]

    def prepare(self, name: str) -> None:
        """Build ``name`` once (raises ``ConsumerUnavailable`` when it cannot run)."""
        from .errors import UserError
        from .pipeline.build import build_consumers

        consumer = self.consumers[name]
        run_settings = self.run_settings()
        if name not in self.built:
            try:
                failures = build_consumers(run_settings.build_dir, [consumer]).failures
                self.built[name] = failures.get(name)
            except UserError as exc:  # e.g. no compiler: this consumer's items, not the session
                self.built[name] = str(exc)
            if self.built[name]:
                run_settings.build_failures[name] = self.built[name] or ""
        problem = run_settings.unavailable(consumer)
        if problem:
            raise ConsumerUnavailable(f"{name}: {problem}")

    def cell(self, item: CellItem) -> Cell:
        """The item's cell, running its consumer first if this process has not yet."""
        result = self.results.get(item.consumer)
        if result is None:
            result = self.results[item.consumer] = self._run(item.consumer, item.session.items)
        if result.problem is not None:
            raise ConsumerUnavailable(result.problem)
        if item.job_id not in result.cells:  # not among session.items when the consumer ran
            extra = self._run(item.consumer, [item])
            if extra.problem is not None:
                raise ConsumerUnavailable(extra.problem)
            result.cells.update(extra.cells)
        return result.cells[item.job_id]

    def _run(self, name: str, selected: list[pytest.Item]) -> ConsumerResult:
        """One process of consumer ``name`` over every item of it still selected."""
        from .errors import UserError
        from .pipeline.run import run_consumers

        wanted = dict.fromkeys(
            i.job_id
            for i in selected
            if isinstance(i, CellItem) and i.consumer == name and i.known is None
        )
        started = time.perf_counter()
        try:
            cells, _, runs = run_consumers(
                [self.consumers[name]], [self.refs[j] for j in wanted], self.run_settings()
            )
        except UserError as exc:
            return ConsumerResult(problem=f"{name}: {exc}")
        run = runs.get(name)
        command = run.command if run else []
        return ConsumerResult(
            {f"{c.fixture}/{c.format}/{c.signature}": c for c in cells},
            plan=command[command.index("--plan") + 1] if "--plan" in command else "",
            jobs=len(run.plan.jobs) if run and run.plan else 0,
            seconds=time.perf_counter() - started,
        )


class CellCollector(pytest.Collector):
    """The cells of the fixture directories (one collector for all of them)."""

    def __init__(self, *, cells: CellSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cells = cells

    def collect(self) -> list[CellItem]:
        return self.cells.collect(self)

    def repr_failure(  # type: ignore[override]  # pytest's Collector narrows Node's signature
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> Any:
        from .errors import UserError

        if isinstance(excinfo.value, UserError):  # e.g. an unwritable build directory
            return f"tfinterop: {excinfo.value}"
        return super().repr_failure(excinfo)


class CellItem(pytest.Item):
    """One cell: fixture/format/signature (the job id) run by one consumer."""

    def __init__(
        self, *, job_id: str, consumer: str, known: Cell | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.consumer = consumer
        self.known = known
        """The cell already decided at collection (its fixture failed to load or export)."""
        self.cell: Cell | None = known

    @property
    def cells(self) -> CellSession:
        assert isinstance(self.parent, CellCollector)
        return self.parent.cells

    def setup(self) -> None:
        if self.known is not None:
            return
        from .errors import UserError

        problem = None
        try:
            self.cells.prepare(self.consumer)
            self.cell = self.cells.cell(self)
        except ConsumerUnavailable as exc:
            problem = str(exc)
        except UserError as exc:
            problem = f"tfinterop: {exc}"
        if problem is not None:
            # In setup, so the item is an error (the harness could not run it), not a failure;
            # raised outside the except clause and without pytrace: the message is the report.
            pytest.fail(problem, pytrace=False)
        self.user_properties.append(("plan", self.cells.results[self.consumer].plan))

    def runtest(self) -> None:
        cell = self.cell
        assert cell is not None
        # Recorded before the verdict, so skips and expected failures carry them as well.
        self.user_properties += [("consumer", self.consumer), ("status", cell.status)]
        self.user_properties += [
            (key, value)
            for key, value in (("max_abs", cell.max_abs), ("max_rel", cell.max_rel))
            if value is not None
        ]
        if cell.status == "pass":
            return
        if cell.status == "skip":
            pytest.skip(cell.message)
        if cell.status in ("xfail", "incompatible"):
            pytest.xfail(cell.message)
        # fail, error, xpass (a declared failure that passed: strict, like xfail_strict)
        raise CellFailed(cell.message or cell.status)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CellFailed):
            return str(excinfo.value)  # the report's text; a traceback of the plugin says nothing
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        # A line number: pytest reports a skip mark at the item's location. The name: the
        # heading of the item's section in the failure report.
        return self.path, 0, self.name
