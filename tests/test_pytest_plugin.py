"""``pytest --tfinterop`` (tfinterop/pytest_plugin.py), run as a user runs it: pytest in a
fresh process inside a small project of its own (``pytester``), on the repository's builds.

The project has two tiny fixtures and, besides the python and c consumers, two test doubles
its conftest.py registers: ``perturbed`` (tests/fake_consumer.py: the Python consumer, then
1e-3 added to one element) and ``unbuildable`` (its build fails). Real consumer processes
cost seconds each: only two tests run any.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tfinterop.contract import plan as plan_format

pytest_plugins = ["pytester"]

PYTEST = ("-p", "no:cacheprovider")
# Consumers by name: a fixture's cells per consumer; each fixture exports both formats.
CONSUMERS = ("python", "c", "perturbed", "unbuildable")
FIXTURES = ("plugin_exact", "plugin_strict")
FORMATS = ("frozen", "saved_model")
TIMEOUT_S = 900

FIXTURE = '''"""{name}: y = 2x + 1, exact in every consumer that computes it honestly."""

import numpy as np

from tfinterop.fixtures import BuildContext, ExportSpec, Tolerance, fixture, skip, xfail


@fixture("{name}", seed={seed}, tolerance=Tolerance(atol=0.0, rtol=0.0), expect=[{expect}])
def build(ctx: BuildContext) -> ExportSpec:
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x):
            return {{"y": 2.0 * x + 1.0}}

    module = Model()
    x = ctx.rng.standard_normal(8).astype(np.float32)
    return ExportSpec.single(module, module.serve, {{"x": x}}, formats=("frozen", "saved_model"))
'''

EXPECT = {
    # perturbed fails as declared (xfail); c's saved_model cell is a declared skip
    "plugin_exact": 'xfail("the double adds 1e-3", consumer="perturbed"), '
    'skip("declared skip", consumer="c", format="saved_model")',
    # python passes a declared failure (strict: fails); perturbed fails undeclared
    "plugin_strict": 'xfail("declared, but it passes", consumer="python"), '
    'skip("declared skip", consumer="c")',
}

DOUBLES = """import sys
from dataclasses import dataclass
from pathlib import Path

import tfinterop.consumers as registry
from tfinterop.consumers import FROZEN, SAVED_MODEL, BuildError, Consumer


@dataclass(frozen=True)
class Perturbed(Consumer):
    def command(self, build_dir: Path) -> list[str]:
        return [sys.executable, {fake!r}, "perturb"]


@dataclass(frozen=True)
class Unbuildable(Consumer):
    needs_build = True

    def command(self, build_dir: Path) -> list[str]:
        return [str(build_dir / "never-built")]

    def build(self, build_dir: Path, *, force: bool = False):
        raise BuildError("make: *** No rule to make target 'consumer'.  Stop.")


formats = frozenset({{FROZEN, SAVED_MODEL}})
registry.ALL_CONSUMERS = (
    *registry.ALL_CONSUMERS,
    Perturbed("perturbed", "test double", formats, opt_in=True),
    Unbuildable("unbuildable", "test double", formats, opt_in=True),
)
"""


def write_fixtures(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(FIXTURES, start=3):
        text = FIXTURE.format(name=name, seed=seed, expect=EXPECT[name])
        (directory / f"{name}.py").write_text(text, encoding="utf-8")


@pytest.fixture
def cells(pytester: pytest.Pytester, project_root: Path, build_dir: Path):
    """``cells(*args, consumers=CONSUMERS)``: ``pytest --tfinterop`` in a fresh process in a
    project with the two fixtures and the two test doubles, on the repository's builds."""
    write_fixtures(pytester.path / "fixtures")
    pytester.makeconftest(DOUBLES.format(fake=str(project_root / "tests" / "fake_consumer.py")))

    def run(*args: str, consumers: tuple[str, ...] = CONSUMERS) -> pytest.RunResult:
        chosen = [f"--tfinterop-consumer={name}" for name in consumers]
        # `--option=VALUE`: a separate path argument would also move pytest's rootdir
        return pytester.runpytest_subprocess(
            *PYTEST, "--tfinterop", f"--tfinterop-build-dir={build_dir}", *chosen, *args,
            timeout=TIMEOUT_S,
        )  # fmt: skip

    return run


def cell_ids(consumers: tuple[str, ...] = CONSUMERS, formats: tuple[str, ...] = FORMATS):
    return [
        f"{fixture}/{fmt}/serving_default/{consumer}"
        for fixture, fmt, consumer in itertools.product(FIXTURES, formats, consumers)
    ]


def junit_cases(path: Path) -> dict[str, dict[str, object]]:
    """JUnit test case name -> its properties, plus what it ended as (``outcome``)."""
    cases: dict[str, dict[str, object]] = {}
    for case in ET.parse(path).iter("testcase"):
        found: dict[str, object] = {
            p.get("name", ""): p.get("value") for p in case.iter("property")
        }
        ended = [child for child in case if child.tag in ("failure", "error", "skipped")]
        found["outcome"] = ended[0].tag if ended else "passed"
        found["message"] = ended[0].get("message", "") if ended else ""
        cases[case.get("name", "")] = found
    return cases


def planned_jobs(plan: object) -> set[str]:
    text = Path(str(plan)).read_text(encoding="utf-8")
    return {job.id for job in plan_format.parse(text).jobs}


def test_without_the_flag_the_plugin_does_nothing(pytester: pytest.Pytester) -> None:
    """Installed, the plugin loads in every pytest run: without ``--tfinterop`` nothing of the
    pipeline (let alone TensorFlow) is imported and no cell is collected."""
    write_fixtures(pytester.path / "fixtures")
    pytester.makepyfile(
        test_probe="""
        import sys

        def test_nothing_imported():
            loaded = [m for m in ("tensorflow", "tfinterop.pipeline", "tfinterop.consumers")
                      if m in sys.modules]
            assert not loaded
        """
    )
    result = pytester.runpytest_subprocess(*PYTEST, timeout=TIMEOUT_S)
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"plugins:.*tfinterop"])  # loaded, and inert


def test_one_item_per_cell_with_its_id(cells) -> None:
    result = cells("--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    collected = [line for line in result.outlines if "/serving_default/" in line]
    assert sorted(collected) == sorted(cell_ids())


def test_fixture_directories_from_the_ini_file(pytester: pytest.Pytester, build_dir: Path) -> None:
    write_fixtures(pytester.path / "models")
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ntfinterop_fixtures = ["models"]\n')
    result = pytester.runpytest_subprocess(
        *PYTEST, "--tfinterop", f"--tfinterop-build-dir={build_dir}",
        "--tfinterop-consumer=c", "--collect-only", "-q", timeout=TIMEOUT_S,
    )  # fmt: skip
    assert result.ret == 0, result.stdout.str()
    assert sorted(line for line in result.outlines if "/serving_default/" in line) == sorted(
        cell_ids(("c",))
    )


def test_the_projects_configuration_and_its_own_consumers(
    pytester: pytest.Pytester, build_dir: Path
) -> None:
    """``[tool.tfinterop]`` gives the fixtures, the default consumers and the build dir, and
    its own consumer gets cells; a mistake in it is one usage line."""
    from tfinterop.consumers import by_name

    write_fixtures(pytester.path / "models")
    program = by_name(["c"])[0].command(build_dir)[0]
    pytester.makepyprojecttoml(
        f'[tool.tfinterop]\nfixtures = ["models"]\ndefault-consumers = ["mine"]\n'
        f'build-dir = "{build_dir}"\n\n[tool.tfinterop.consumer.mine]\n'
        f'command = ["{program}"]\ncapabilities = ["frozen", "saved_model"]\n'
    )
    result = pytester.runpytest_subprocess(*PYTEST, "--tfinterop", "-q", timeout=TIMEOUT_S)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=len(cell_ids(("mine",))))
    pytester.makepyprojecttoml('[tool.tfinterop]\nfixture = ["models"]\n')
    broken = pytester.runpytest_subprocess(*PYTEST, "--tfinterop", timeout=TIMEOUT_S)
    assert broken.ret == pytest.ExitCode.USAGE_ERROR
    broken.stderr.fnmatch_lines(
        ["ERROR: tfinterop: *pyproject.toml [[]tool.tfinterop[]] fixture: unknown key*"]
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--tfinterop-consumer=nope",), "tfinterop: unknown consumer(s) nope; available: *"),
        (
            ("--tfinterop-fixtures=absent",),
            "tfinterop: fixtures directory */absent does not exist*",
        ),
    ],
)
def test_bad_options_are_one_line(cells, args: tuple[str, ...], error: str) -> None:
    result = cells(*args, consumers=())
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {error}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


@pytest.mark.e2e
def test_outcomes_messages_selection_and_junit(cells, pytester: pytest.Pytester) -> None:
    """One session over every outcome, ``-k`` keeping only the frozen cells: each consumer
    runs once, on exactly the selected jobs, and each cell reports what the console report
    shows for it."""
    result = cells("-k", "not saved_model", "-rA", "--junitxml=cells.xml")
    result.assert_outcomes(passed=2, failed=2, skipped=1, xfailed=1, errors=2, deselected=8)
    output = result.stdout.str()
    # The cell's message is the whole failure text: no traceback of the plugin.
    assert "Traceback" not in output and "pytest_plugin.py" not in output
    result.stdout.fnmatch_lines(
        [
            "*_ ERROR at setup of plugin_exact/frozen/serving_default/unbuildable _*",
            "unbuildable: build failed: make: *** No rule to make target 'consumer'.  Stop.",
            "*_ plugin_strict/frozen/serving_default/perturbed _*",
            "output y: 1/8 elements differ beyond atol=0 rtol=0; *; would pass with *",
        ]
    )
    assert "During handling" not in output

    cases = junit_cases(pytester.path / "cells.xml")
    name = {cell: cell.replace("/", ".") for cell in cell_ids()}  # JUnit's mangling of ids
    assert set(cases) == {name[cell] for cell in cell_ids(formats=("frozen",))}
    outcome = {cell: cases[name[cell]]["outcome"] for cell in cell_ids(formats=("frozen",))}
    assert outcome == {
        "plugin_exact/frozen/serving_default/python": "passed",
        "plugin_exact/frozen/serving_default/c": "passed",
        "plugin_exact/frozen/serving_default/perturbed": "skipped",  # xfail
        "plugin_exact/frozen/serving_default/unbuildable": "error",
        "plugin_strict/frozen/serving_default/python": "failure",  # xpass, strict
        "plugin_strict/frozen/serving_default/c": "skipped",
        "plugin_strict/frozen/serving_default/perturbed": "failure",
        "plugin_strict/frozen/serving_default/unbuildable": "error",
    }
    failed = cases[name["plugin_strict/frozen/serving_default/perturbed"]]
    assert failed["consumer"] == "perturbed" and failed["status"] == "fail"
    assert float(str(failed["max_abs"])) == pytest.approx(1e-3, rel=1e-3)  # the double's drift
    assert str(failed["message"]).startswith("output y: 1/8 elements differ")
    xpassed = cases[name["plugin_strict/frozen/serving_default/python"]]
    assert xpassed["status"] == "xpass" and "remove the declaration" in str(xpassed["message"])
    xfailed = cases[name["plugin_exact/frozen/serving_default/perturbed"]]
    assert xfailed["status"] == "xfail"
    assert str(xfailed["message"]).startswith("expected failure: the double adds 1e-3")
    assert "build failed" in str(
        cases[name["plugin_strict/frozen/serving_default/unbuildable"]]["message"]
    )

    # One process per consumer (one plan for all its cells), over the selected jobs only.
    runs = re.findall(r"^(\S+): (\d+) jobs in one process", output, re.MULTILINE)
    assert sorted(runs) == [("c", "1"), ("perturbed", "2"), ("python", "2")]
    for consumer, ran in (("python", FIXTURES), ("c", ("plugin_exact",)), ("perturbed", FIXTURES)):
        plans = {cases[name[cell]].get("plan") for cell in cell_ids((consumer,), ("frozen",))} - {
            None
        }
        assert len(plans) == 1, (consumer, plans)
        assert planned_jobs(plans.pop()) == {f"{f}/frozen/serving_default" for f in ran}


def test_a_fixture_that_fails_to_load_is_a_failing_item(cells, pytester: pytest.Pytester):
    (pytester.path / "fixtures" / "plugin_broken.py").write_text(
        'raise RuntimeError("no model here")\n', encoding="utf-8"
    )
    result = cells("-k", "plugin_broken", consumers=("c",))
    result.assert_outcomes(failed=1, deselected=len(cell_ids(("c",))))
    result.stdout.fnmatch_lines(
        [
            "*_ plugin_broken/[*]/[*]/c _*",
            "fixture failed to load: plugin_broken.py:1: RuntimeError: no model here",
        ]
    )


def test_exitfirst_stops_at_the_first_broken_cell(cells) -> None:
    """``-x``: a build failure errors the consumer's first item and ends the session."""
    result = cells("-x", consumers=("unbuildable",))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


@pytest.mark.e2e
def test_xdist_sends_each_consumer_to_one_worker(cells, pytester: pytest.Pytester) -> None:
    """``-n 2``: the items of a consumer go to one worker (``--dist loadgroup`` set by the
    plugin, the consumer as the group in the id), so no consumer runs twice."""
    pytest.importorskip("xdist")
    result = cells("-n", "2", "-v", "--junitxml=cells.xml", consumers=("python", "c"))
    # plugin_exact: 3 pass, c's saved_model skipped; plugin_strict: python's 2 xpass, c skipped
    result.assert_outcomes(passed=3, failed=2, skipped=3)
    cases = junit_cases(pytester.path / "cells.xml")
    ids = cell_ids(("python", "c"))
    assert set(cases) == {f"{cell}@{cell.rsplit('/', 1)[1]}".replace("/", ".") for cell in ids}
    for consumer in ("python", "c"):
        plans = {p.get("plan") for n, p in cases.items() if n.endswith(f"@{consumer}")} - {None}
        assert len(plans) == 1, (consumer, plans)
    assert re.search(
        r"\[gw\d\].*PASSED plugin_exact/frozen/serving_default/c@c", result.stdout.str()
    )
