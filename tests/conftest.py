"""Shared test fixtures: the project's exports (content-cached under build/) and consumers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tfinterop import report
from tfinterop.compare import compare
from tfinterop.fixtures import Tolerance
from tfinterop.pipeline.cells import Cell

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fake_consumer.py"
BUILD = Path(os.environ.get("TFINTEROP_BUILD_DIR", ROOT / "build"))

# Same defaults the CLI gives consumer processes, before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture(scope="session")
def build_dir() -> Path:
    return BUILD


@pytest.fixture(scope="session")
def project_fixtures():
    from tfinterop.fixtures import load_fixtures

    return {f.name: f for f in load_fixtures(ROOT / "fixtures")}


@pytest.fixture(scope="session")
def export_manifests(project_fixtures):
    """``export_manifests(names)``: exports of the named built-in fixtures (reused from
    build/exports when fresh)."""
    from tfinterop.export import export_fixtures

    def export(names):
        outcomes = export_fixtures([project_fixtures[n] for n in names], BUILD / "exports")
        failed = [f"{o.fixture}: {o.error}" for o in outcomes if o.manifest is None]
        assert not failed, failed
        return {o.fixture: o.manifest for o in outcomes}

    return export


@pytest.fixture(scope="session")
def manifests(export_manifests):
    """The two foundation fixtures most tests run on; other tests export what they need."""
    return export_manifests(["linear", "mobilenet_v3"])


def _run_cli(
    *args: str, timeout: float = 1200, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m tfinterop ARGS` in a fresh process (what a user runs), output captured;
    ``env`` adds to (or overrides) this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "tfinterop", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args)``: the command line in a fresh process, output captured."""
    return _run_cli


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@dataclass(frozen=True)
class Installed:
    """tfinterop as a user installs it: the wheel in a fresh venv outside the checkout."""

    venv: Path
    wheel: Path

    def environment(self, cache: Path) -> dict[str, str]:
        """A user's environment: this venv first on PATH, nothing of the checkout's
        (virtualenv, PYTHONPATH, TFINTEROP_*, a cargo target dir), its own per-user cache."""
        environment = {
            k: v for k, v in _outside_environment().items()
            if not k.startswith("TFINTEROP_") and k != "CARGO_TARGET_DIR"
        }  # fmt: skip
        environment["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{environment.get('PATH', '')}"
        environment["TFINTEROP_CACHE_DIR"] = str(cache)
        return environment


def _outside_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}


def _run_checked(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 3600
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-4000:]}{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="session")
def run_checked():
    """``run_checked(command, cwd, env)``: a process that must succeed, its output captured
    (the failure message holds the command and the output's tail)."""
    return _run_checked


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from the sdist (so MANIFEST.in is exercised too), installed with its
    [tf,build] extras and pytest into a fresh venv; uv links TensorFlow from its cache
    (seconds, no copy). Built once per test process for every test that needs it."""
    found = Path(sys.executable).parent / "uv"
    uv = str(found) if found.is_file() else shutil.which("uv")
    assert uv, "uv is part of the build extra (nox installs it)"
    work = tmp_path_factory.mktemp("installed")
    clean = _outside_environment()
    _run_checked([uv, "build", "--quiet", "--out-dir", str(work / "dist"), str(ROOT)], work, clean)
    (wheel,) = (work / "dist").glob("tfinterop-*.whl")
    venv = work / "venv"
    _run_checked([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], work, clean)
    _run_checked(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         f"{wheel}[tf,build]", "pytest"],
        work, clean,
    )  # fmt: skip
    return Installed(venv, wheel)


@pytest.fixture(scope="session")
def fake_consumer():
    """``fake_consumer(name, capabilities, mode="perturb")``: a consumer that runs
    tests/fake_consumer.py, which wraps the real Python consumer and then misbehaves."""
    from tfinterop.consumers import Consumer

    @dataclass(frozen=True)
    class FakeConsumer(Consumer):
        mode: str = "perturb"

        def command(self, build_dir: Path) -> list[str]:
            return [sys.executable, str(FAKE), self.mode]

    def make(name: str, capabilities: frozenset[str], mode: str = "perturb") -> Consumer:
        return FakeConsumer(name, "test double", capabilities, mode)

    return make


# --- a report document with exactly one failing cell (test_report, test_browser) -----------
_TOLERANCE = Tolerance(atol=1e-5, rtol=1e-5)
_ENVIRONMENT = {
    "tensorflow": {"version": "2.21.0", "distribution": "tensorflow-cpu"},
    "toolchain": {"c_compiler": "cc 12", "rustc": "rustc 1.95.0", "tensorflow_crate": "0.17.0"},
    "consumer_environment": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "threads": {"intra_op": 0, "inter_op": 0},
}
_FAILING_CELL = ("classifier", "frozen", "serving_default", "c")


def _report_cell(fixture, fmt, consumer, actual, expected, load_s=0.05):
    result = compare("logits", actual, expected, _TOLERANCE)
    return Cell(
        fixture,
        fmt,
        "serving_default",
        consumer,
        "pass" if result.passed else "fail",
        "" if result.passed else result.summary(),
        result.max_abs,
        result.max_rel,
        load_s,
        0.01,
        [0.002, 0.003, 0.0025],
        [result],
    )


def _failing_document() -> dict:
    """A run with exactly one deliberate failure: consumer c's classifier/frozen output has
    one logit off by 1e-3 (tolerance 1e-5); every other cell passes or is a declared xfail.
    Built from real comparison results, without TensorFlow."""
    rng = np.random.default_rng(7)
    expected = rng.standard_normal((8, 10)).astype(np.float32)
    noisy = expected + (rng.standard_normal(expected.shape) * 1e-7).astype(np.float32)
    broken = noisy.copy()
    broken[2, 5] += np.float32(1e-3)
    cells = []
    for fmt in ("frozen", "saved_model"):
        cells.append(_report_cell("classifier", fmt, "python", expected.copy(), expected, 0.2))
        cells.append(_report_cell("classifier", fmt, "rust", noisy, expected, 0.1))
        cells.append(
            _report_cell(
                "classifier", fmt, "c", broken if fmt == "frozen" else noisy, expected, 0.09
            )
        )
    xfail = Cell("strings", "frozen", "serving_default", "rust", "xfail")
    xfail.message = "expected failure: the crate cannot carry non-UTF-8 bytes — observed: ..."
    cells.append(xfail)
    return report.document(cells, _ENVIRONMENT, {"timings": {"export_s": 1.0}})


@pytest.fixture
def failing_document() -> dict:
    """A run with exactly one deliberate failure (``failing_cell``), without TensorFlow."""
    return _failing_document()


@pytest.fixture(scope="session")
def failing_cell() -> tuple[str, str, str, str]:
    """(fixture, format, signature, consumer) of ``failing_document``'s failing cell."""
    return _FAILING_CELL


def _graph_with(tmp_path: Path, name: str, op: str, *, in_function: bool = False, **attrs) -> Path:
    """A GraphDef x (float [2,4]) -> op -> out, optionally inside a library function."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    graph = graph_pb2.GraphDef()
    graph.versions.producer = 1882
    x = graph.node.add(name="x", op="Placeholder")
    x.attr["dtype"].type = types_pb2.DT_FLOAT
    for size in (2, 4):
        x.attr["shape"].shape.dim.add(size=size)
    if in_function:
        function = graph.library.function.add()
        function.signature.name = "wrapped"
        function.signature.input_arg.add(name="a", type=types_pb2.DT_FLOAT)
        function.signature.output_arg.add(name="b", type=types_pb2.DT_FLOAT)
        inner = function.node_def.add(name="inner", op=op, input=["a"])
        for key, value in attrs.items():
            inner.attr[key].i = value
        function.ret["b"] = "inner:output:0"
        call = graph.node.add(name="out", op="PartitionedCall", input=["x"])
        call.attr["f"].func.name = "wrapped"
        call.attr["Tin"].list.type.append(types_pb2.DT_FLOAT)
        call.attr["Tout"].list.type.append(types_pb2.DT_FLOAT)
    else:
        node = graph.node.add(name="out", op=op, input=["x"])
        for key, value in attrs.items():
            node.attr[key].i = value
    path = tmp_path / f"{name}.pb"
    path.write_bytes(graph.SerializeToString())
    return path


@pytest.fixture(scope="session")
def graph_with():
    """``graph_with(tmp_path, name, op, in_function=False, **attrs)``: a GraphDef file
    x (float [2,4]) -> op -> out (test_inspect, test_check)."""
    return _graph_with
