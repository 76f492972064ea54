"""`tfinterop check` on third-party models and the built-in fixtures' exports, through every
consumer (Python, Rust, C), with known published values; `--save-fixture` into `interop`.

Needs the built consumers (`tfinterop build`; nox -s tests runs it first).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfinterop import tensors
from tfinterop.check import CheckOptions, FeatureSpec, run_check, save_fixture
from tfinterop.consumers import by_name
from tfinterop.errors import UserError
from tfinterop.pipeline.cases import cases_from_manifest
from tfinterop.pipeline.run import run_consumers
from tfinterop.pipeline.settings import RunSettings
from tfinterop.tfenv import DEFAULT_CONSUMER_ENV

e2e = pytest.mark.e2e  # runs the consumers: needs `tfinterop build`

REALWORLD = Path(__file__).resolve().parents[1].joinpath("data") / "realworld"
TF1_HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_cpu/00000123"
TF2_HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_tf2_cpu/00000123"
ADDITION = REALWORLD / "tf-rust/addition.pb"
REGRESSION = REALWORLD / "tf-rust/regression_savedmodel"
EXAMPLE_SIGNATURES = ("classify_x_to_y", "regress_x_to_y", "regress_x_to_y2")
# What `check` compares on a frozen graph or SavedModel here: every default consumer loading
# them and the opt-in crate 0.21 one (both Rust consumers, tensorflow crate 0.17 and 0.21).
RUST = ("rust", "rust-0.21")
CHECKED = {"python", *RUST, "c"}


def settings(build_dir: Path) -> RunSettings:
    return RunSettings(
        build_dir=build_dir, repeat=1, warmup=0, environment=dict(DEFAULT_CONSUMER_ENV)
    )


def check(build_dir: Path, work: Path, path: Path, **options) -> object:
    return run_check(
        CheckOptions(path=path, build_dir=build_dir, work_dir=work, **options),
        [*by_name(None), *by_name(["rust-0.21"])],
        settings(build_dir),
    )


def npz(path: Path, **arrays: np.ndarray) -> Path:
    # Keys with '/' (SIGNATURE/KEY) cannot be keyword arguments.
    np.savez(path, **{k.replace("__", "/"): v for k, v in arrays.items()})
    return path


def cells_by(result) -> dict[tuple[str, str, str], object]:
    return {(c.fixture, c.signature, c.consumer): c for c in result.cells}


def reference(result, signature: str, key: str) -> np.ndarray:
    case = next(p.case for p in result.cases if p.case.signature == signature)
    entry = next(e for e in case.outputs if e.key == key)
    return tensors.read_tensor(entry.file, entry.dtype)


def fed(result, signature: str, key: str) -> np.ndarray:
    case = next(p.case for p in result.cases if p.case.signature == signature)
    entry = next(e for e in case.inputs if e.key == key)
    return tensors.read_tensor(entry.file, entry.dtype)


def example_feature(serialized: bytes, name: str) -> list[float]:
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example()
    example.ParseFromString(serialized)
    return list(example.features.feature[name].float_list.value)


@pytest.fixture(scope="session")
def tf1_result(build_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("tf1")
    inputs = npz(
        work / "inputs.npz",
        serving_default__x=np.array([[1.0], [2.0], [5.0]], np.float32),
        regress_x2_to_y3__inputs=np.array([[2.0]]),  # float64: cast to the model's float32
    )
    expected = npz(
        work / "expected.npz",
        serving_default__y=np.array([[2.5], [3.0], [4.5]]),
        regress_x2_to_y3__outputs=np.array([[4.0]]),
    )
    return check(
        build_dir,
        work,
        TF1_HALF_PLUS_TWO,
        all_signatures=True,
        inputs_file=inputs,
        expected_file=expected,
        examples=[FeatureSpec.parse("x=float:1"), FeatureSpec.parse("x2=float:1")],
        seed=5,
    )


@pytest.fixture(scope="session")
def tf2_result(build_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("tf2")
    return check(
        build_dir,
        work,
        TF2_HALF_PLUS_TWO,
        all_signatures=True,
        inputs_file=npz(work / "in.npz", x=np.array([2.0], np.float32)),
        expected_file=npz(work / "expected.npz", serving_default__y=np.array([3.0], np.float32)),
        examples=[FeatureSpec.parse("x=float:1")],
        ranges={"x": (-4.0, 4.0)},
    )


@e2e
def test_tf1_half_plus_two_known_values_in_every_consumer(tf1_result) -> None:
    cells = cells_by(tf1_result)
    label = "saved_model_half_plus_two_cpu/00000123"
    for signature in ("serving_default", "regress_x2_to_y3", *EXAMPLE_SIGNATURES):
        for consumer in ("python", "c"):
            cell = cells[(label, signature, consumer)]
            assert cell.status == "pass", (signature, consumer, cell.message)
    for signature in ("serving_default", "regress_x2_to_y3"):
        assert cells[(label, signature, "rust")].status == "pass"
        for consumer in ("python", "rust", "c"):  # the published values, in every consumer
            cell = cells[(f"{label} vs expected", signature, consumer)]
            assert cell.status == "pass" and cell.max_abs == 0, (signature, consumer, cell)
    np.testing.assert_array_equal(
        reference(tf1_result, "serving_default", "y"), [[2.5], [3.0], [4.5]]
    )
    assert fed(tf1_result, "regress_x2_to_y3", "inputs").dtype == np.float32


@e2e
def test_tf_example_signatures_compute_half_plus_two(tf1_result, tf2_result) -> None:
    """The generated tf.Examples really carry x: the outputs follow 0.5x + 2 (or + 3)."""
    offsets = {"classify_x_to_y": 2.0, "regress_x_to_y": 2.0, "regress_x_to_y2": 3.0}
    for result in (tf1_result, tf2_result):
        for signature, offset in offsets.items():
            examples = fed(result, signature, "inputs")
            assert examples.shape == (2,)
            x = np.array([example_feature(e, "x") for e in examples], np.float32)
            assert len(set(x.reshape(-1).tolist())) == 2  # two different, generated values
            key = "scores" if signature.startswith("classify") else "outputs"
            np.testing.assert_allclose(reference(result, signature, key), 0.5 * x + offset)
    assert np.abs(fed(tf2_result, "classify_x_to_y", "inputs").size) == 2


@e2e
def test_rust_cannot_feed_serialized_examples_and_says_why(tf1_result, tf2_result) -> None:
    for result in (tf1_result, tf2_result):
        for signature in EXAMPLE_SIGNATURES:
            cell = cells_by(result)[(result.label, signature, "rust")]
            assert cell.status == "xfail", cell
            assert "rust lacks non_utf8_strings" in cell.message
            assert "serialized tf.Example" in cell.message
            assert "not valid UTF-8" in cell.message.split("observed:")[1]
            assert "\n" not in cell.message


@e2e
def test_tf2_half_plus_two_of_two_is_three(tf2_result) -> None:
    cells = cells_by(tf2_result)
    for consumer in ("python", "rust", "c"):
        assert cells[(tf2_result.label, "serving_default", consumer)].status == "pass"
        vs_expected = cells[(f"{tf2_result.label} vs expected", "serving_default", consumer)]
        assert vs_expected.status == "pass" and vs_expected.max_abs == 0
    assert reference(tf2_result, "serving_default", "y").tolist() == [3.0]
    # Every signature ran in every consumer that can feed it; nothing failed.
    statuses = {c.status for c in tf2_result.cells}
    assert statuses <= {"pass", "xfail"}, [c for c in tf2_result.cells if c.status != "pass"]
    signatures = {c.signature for c in tf2_result.cells}
    assert {"serving_default", "classify_x2_to_y3", *EXAMPLE_SIGNATURES} <= signatures
    assert "__saved_model_init_op" not in signatures


@e2e
def test_stateful_training_step_runs_from_the_same_restored_state(build_dir, tmp_path) -> None:
    import tensorflow as tf

    x = np.array([1.0, 2.0, 3.0], np.float32)
    y = np.array([3.0, 5.0, 7.0], np.float32)
    result = check(
        build_dir,
        tmp_path,
        REGRESSION,
        all_signatures=True,
        inputs_file=npz(tmp_path / "in.npz", x=x, y=y),
    )
    assert {c.status for c in result.cells} == {"pass"}, [c.message for c in result.cells]
    assert {c.consumer for c in result.cells} == CHECKED
    train = next(p for p in result.cases if p.case.signature == "train")
    assert "ResourceApplyGradientDescent" in train.state_writers
    # w and b are the checkpoint's values (no consumer carried a trained state over to them)
    checkpoint = tf.train.load_checkpoint(str(REGRESSION / "variables" / "variables"))
    w0 = checkpoint.get_tensor("w/.ATTRIBUTES/VARIABLE_VALUE")
    b0 = checkpoint.get_tensor("b/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(reference(result, "w", "output"), w0)
    np.testing.assert_array_equal(reference(result, "b", "output"), b0)
    # ... and the loss of the first training step is the loss at exactly that state.
    loss = reference(result, "train", "loss")
    assert loss.shape == ()
    np.testing.assert_allclose(loss, np.mean((w0 * x + b0 - y) ** 2), rtol=1e-6)
    from tfinterop.check import notes

    assert any(line.startswith("stateful: train writes variables") for line in notes(result))


@e2e
def test_addition_graph_through_the_cli(build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", x=np.int32(2), **{"y:0": np.int32(3)})
    expected = npz(tmp_path / "expected.npz", z=np.int32(5))
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "tfinterop", "check", str(ADDITION), "--no-build",
            "--build-dir", str(build_dir), "--work-dir", str(tmp_path / "work"),
            "--inputs", str(inputs), "--expected", str(expected), "--json", str(report),
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(report.read_text())
    rows = {(r["fixture"], r["consumer"]): r for r in data["rows"]}
    for consumer in ("python", "rust", "c"):
        assert rows[("addition.pb", consumer)]["status"] == "pass"
        assert rows[("addition.pb vs expected", consumer)]["status"] == "pass"
    (case,) = data["check"]["cases"]
    assert case["inputs"] == {
        "x:0": {"tensor": "x:0", "dtype": "int32", "shape": []},
        "y:0": {"tensor": "y:0", "dtype": "int32", "shape": []},
    }
    assert case["outputs"]["z:0"]["shape"] == []
    assert "addition.pb" in done.stdout and "PASS" in done.stdout


@e2e
def test_check_on_several_runtimes(build_dir, tmp_path) -> None:
    """`check --runtime A --runtime B`: the native consumers once per runtime, each against
    the pinned Python reference and the user's expected outputs."""
    from tfinterop.runtimes import pinned_runtime

    inputs = npz(tmp_path / "in.npz", x=np.int32(2), **{"y:0": np.int32(3)})
    expected = npz(tmp_path / "expected.npz", z=np.int32(5))
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "tfinterop", "check", str(ADDITION), "--build-dir",
            str(build_dir), "--work-dir", str(tmp_path / "work"), "--inputs", str(inputs),
            "--expected", str(expected), "--json", str(report), "-c", "python", "-c", "c",
            "--runtime", "2.12.0", "--runtime", pinned_runtime(),
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(report.read_text())
    rows = {(r["fixture"], r["consumer"]): r["status"] for r in data["rows"]}
    for consumer in ("python", "c@2.12.0", f"c@{pinned_runtime()}"):
        assert rows[("addition.pb", consumer)] == "pass", rows
        assert rows[("addition.pb vs expected", consumer)] == "pass", rows
    assert ("addition.pb", "c") not in rows
    consumers = data["environment"]["consumers"]
    assert consumers["c@2.12.0"]["tf_version"] == "2.12.0"


@e2e
def test_unloadable_model_is_one_line_per_consumer(build_dir, tmp_path, graph_with) -> None:
    model = graph_with(tmp_path, "custom", "MyCustomOp")
    done = subprocess.run(
        [
            sys.executable, "-m", "tfinterop", "check", str(model), "--no-build",
            "--build-dir", str(build_dir), "--work-dir", str(tmp_path / "work"),
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("ERROR custom.pb")]
    assert len(lines) == 3, done.stdout
    for consumer in ("python", "rust", "c"):
        (line,) = [x for x in lines if f"/ {consumer} /" in x]
        assert "Op type not registered 'MyCustomOp'" in line, line
    assert "predicted by inspect: MyCustomOp" in done.stdout


@e2e
def test_missing_kernel_fails_at_run_as_predicted(build_dir, tmp_path, graph_with) -> None:
    model = graph_with(tmp_path, "no_kernel", "KthOrderStatistic", k=1)
    result = check(build_dir, tmp_path, model)
    assert [p.op for p in result.inspection.kernel_problems] == ["KthOrderStatistic"]
    assert {c.consumer for c in result.cells} == CHECKED
    for cell in result.cells:
        assert cell.status == "error" and "[run]" in cell.message, cell
        assert "No OpKernel was registered to support Op 'KthOrderStatistic'" in cell.message


@e2e
@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [
        ("linear", "frozen"),
        ("linear", "saved_model"),
        ("mobilenet_v3", "frozen"),
        ("mobilenet_v3", "saved_model"),
    ],
)
def test_builtin_fixture_artifacts(manifests, build_dir, tmp_path, fixture, fmt) -> None:
    """check on our own exports, fed the fixture's inputs: Python's check reference agrees
    with the export-time reference (given as --expected) and every consumer passes."""
    manifest = manifests[fixture]
    case = next(c for c in manifest.cases if c.format == fmt and c.signature == "serving_default")
    given = {e.key: tensors.read_tensor(manifest.directory / e.file) for e in case.inputs}
    known = {e.key: tensors.read_tensor(manifest.directory / e.file) for e in case.outputs}
    if fmt == "frozen":  # graph keys are tensor names: the outputs' tensors, not their labels
        known = {e.tensor: known[e.key] for e in case.outputs}
    options = {"input_names": [e.tensor for e in case.inputs]} if fmt == "frozen" else {}
    if fmt == "frozen":
        options["output_names"] = [e.tensor for e in case.outputs]
    result = check(
        build_dir,
        tmp_path,
        manifest.directory / case.model,
        inputs_file=npz(tmp_path / "in.npz", **given),
        expected_file=npz(tmp_path / "expected.npz", **known),
        tolerance=_tolerance(manifest.tolerance),
        **options,
    )
    for cell in result.cells:
        assert cell.status == "pass", (cell.fixture, cell.consumer, cell.message)
    assert {c.consumer for c in result.cells} == CHECKED
    assert len(result.cells) == 2 * len(CHECKED)  # vs Python and vs the export's reference


def _tolerance(values: dict[str, float]):
    from tfinterop.fixtures import Tolerance

    # The fixture's tolerance, at least the check default (mobilenet's frozen graph is
    # 1.3e-6 off the eager reference it was exported with).
    return Tolerance(atol=max(values["atol"], 1e-5), rtol=max(values["rtol"], 1e-4))


@e2e
def test_save_fixture_runs_in_interop(tf2_result, build_dir, tmp_path) -> None:
    from tfinterop.export import export_fixtures
    from tfinterop.fixtures import load_fixtures

    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    source = save_fixture(tf2_result, "half_plus_two_tf2", fixtures, seed=0)
    assert source == fixtures / "half_plus_two_tf2.py"
    with pytest.raises(UserError, match="already exists"):
        save_fixture(tf2_result, "half_plus_two_tf2", fixtures, seed=0)
    (fixture,) = load_fixtures(fixtures)
    assert fixture.name == "half_plus_two_tf2"
    (outcome,) = export_fixtures([fixture], tmp_path / "exports")
    assert outcome.manifest is not None, outcome.error
    assert {c.signature for c in outcome.manifest.cases} == {
        c.case.signature for c in tf2_result.cases
    }
    run = RunSettings(
        build_dir=build_dir,
        repeat=1,
        warmup=0,
        environment=dict(DEFAULT_CONSUMER_ENV),
        runs_dir=tmp_path / "runs",
    )
    cells, _, _ = run_consumers(
        [c for c in by_name([*CHECKED, "tflite"]) if c.supports("saved_model")],
        cases_from_manifest(fixture, outcome.manifest),
        run,
    )
    statuses = {(c.signature, c.consumer): c.status for c in cells}
    for rust in RUST:
        assert statuses[("serving_default", rust)] == "pass"  # the requirement is per signature
        for signature in EXAMPLE_SIGNATURES:
            assert statuses[(signature, rust)] == "xfail"
    assert {s for (sig, consumer), s in statuses.items() if consumer not in RUST} == {"pass"}
    # Re-exporting is cached; the stored reference is what the check computed.
    (again,) = export_fixtures([fixture], tmp_path / "exports")
    assert again.cached
    case = next(c for c in again.manifest.cases if c.signature == "serving_default")
    stored = tensors.read_tensor(again.manifest.directory / case.outputs[0].file)
    assert stored.tolist() == [3.0]


def test_user_errors(build_dir, tmp_path) -> None:
    with pytest.raises(UserError, match="signature 'nope' not found; available: "):
        check(build_dir, tmp_path, TF2_HALF_PLUS_TWO, signature="nope")
    with pytest.raises(UserError, match="has no serving_default signature; choose one"):
        check(build_dir, tmp_path, REGRESSION)
    with pytest.raises(UserError, match=r"--inputs has array\(s\) z that match no input"):
        check(build_dir, tmp_path, ADDITION, inputs_file=npz(tmp_path / "a.npz", z=np.ones(1)))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([object()], dtype=object))
    with pytest.raises(UserError, match=r"holds Python objects \(dtype object\).*refused"):
        check(build_dir, tmp_path, ADDITION, inputs_file=pickled)
    with pytest.raises(UserError, match="input 'x:0' has dtype float32, the model expects int32"):
        check(build_dir, tmp_path, ADDITION, inputs_file=npz(tmp_path / "f.npz", x=np.float32(1)))
    with pytest.raises(UserError, match="input 'inputs' has unknown rank"):
        check(build_dir, tmp_path, TF1_HALF_PLUS_TWO, signature="classify_x_to_y")
    with pytest.raises(UserError, match="--tags/--signature/--all-signatures are for SavedModels"):
        check(build_dir, tmp_path, ADDITION, signature="serving_default")


def test_generated_inputs_follow_dtype_shape_and_options() -> None:
    from tfinterop.check.inputs import generate_input

    options = CheckOptions(
        path=Path("m"),
        build_dir=Path("b"),
        dims={None: 3, "t": 1},
        ranges={"x": (5.0, 6.0), "i": (-2.0, 2.0)},
        examples=[FeatureSpec.parse("f=int:2")],
    )
    rng = np.random.default_rng(0)
    x, how = generate_input("x", "float32", [-1, 4], options, rng)
    assert x.shape == (3, 4) and x.dtype == np.float32 and 5 <= x.min() and x.max() < 6
    assert "uniform in [5, 6)" in how
    i, _ = generate_input("i", "int64", [-1], options, rng)
    assert i.dtype == np.int64 and set(i.tolist()) <= {-2, -1, 0, 1, 2}
    scalar, _ = generate_input("s", "bool", [], options, rng)
    assert scalar.shape == () and scalar.dtype == bool
    examples, how = generate_input("t", "string", None, options, rng)
    assert examples.shape == (1,) and "tf.Example (f=int:2)" in how
    from tensorflow.core.example import example_pb2

    parsed = example_pb2.Example.FromString(examples[0])
    assert len(parsed.features.feature["f"].int64_list.value) == 2
    with pytest.raises(UserError, match="cannot carry"):
        generate_input("r", "resource", [], options, rng)
    with pytest.raises(UserError, match="unknown rank: give its shape with --shape u="):
        generate_input("u", "float32", None, options, rng)


def test_option_parsing_errors_are_user_errors() -> None:
    import argparse

    from tfinterop.cli.check import add_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument("--build-dir", type=Path, default=Path("build"))
    parsed = options_from_args(
        parser.parse_args(
            ["m.pb", "--dim", "4", "--dim", "x:0=2", "--shape", "s=", "--range", "y=0,1"]
        )
    )
    assert parsed.dims == {None: 4, "x:0": 2} and parsed.shapes == {"s": []}
    assert parsed.ranges == {"y": (0.0, 1.0)}
    for bad in (["--dim", "x=a"], ["--range", "2,1"], ["--shape", "5"], ["--example", "x=f:1"]):
        with pytest.raises(UserError):
            options_from_args(parser.parse_args(["m.pb", *bad]))


def test_npz_string_tensors_keep_every_byte(tmp_path) -> None:
    from tfinterop.check.inputs import load_npz

    values = [b"a\x00", b"\xff\x00\x00", b""]  # trailing NULs, not UTF-8, empty
    lengths = np.array([len(v) for v in values], np.int64)
    blob = np.frombuffer(b"".join(values), np.uint8)
    path = tmp_path / "s.npz"
    np.savez(path, **{"s": lengths, "s.bytes": blob, "t": np.array([b"plain"])})
    loaded = load_npz(path, "--inputs")
    assert sorted(loaded) == ["s", "t"]
    assert loaded["s"].tolist() == values and loaded["t"].tolist() == [b"plain"]


# ------------------------------------------------------------------ models from the wild

WILD = Path(__file__).resolve().parents[1].joinpath("data") / "wild"


@pytest.fixture(scope="session")
def wild(tmp_path_factory) -> dict[str, Path]:
    """The wild test models: two written now by tests/data/wild/make_models.py, the Keras 2
    legacy-optimizer model as TensorFlow 2.12 wrote it (committed archive, extracted)."""
    import runpy
    import tarfile

    out = tmp_path_factory.mktemp("wild")
    models = runpy.run_path(str(WILD / "make_models.py"))["build_all"](out)
    with tarfile.open(WILD / "legacy_optimizer_tf212.tar.xz") as archive:
        archive.extractall(out, filter="data")
    return {**models, "legacy_optimizer": out / "legacy_optimizer"}


def tf1_ref_values(tmp_path: Path) -> tuple[Path, Path]:
    """Inputs and the values tf1_ref_output must return: y = x @ w + b, w, and 'two' -> 2."""
    x = np.array([[1.0, 2.0], [3.0, -4.0], [0.5, 0.25]], np.float32)
    w, b = np.array([[2.0], [-1.0]], np.float32), np.array([0.5], np.float32)
    inputs = npz(tmp_path / "in.npz", x=x)
    return inputs, npz(tmp_path / "expected.npz", y=x @ w + b, w=w, two=np.int64(2))


def every_row_passes(result, consumers=("python", "rust", "c"), expected: bool = True) -> None:
    rows = cells_by(result)
    for consumer in consumers:
        for fixture in (result.label, f"{result.label} vs expected")[: 2 if expected else 1]:
            cell = rows[(fixture, "serving_default", consumer)]
            assert cell.status == "pass", (fixture, consumer, cell.message)


@e2e
def test_tf1_saved_model_with_a_ref_typed_output(build_dir, tmp_path, wild) -> None:
    """A compat.v1 builder SavedModel returning a VariableV2 directly (float32_ref) and a
    table filled from its asset by the init op: Python loads it as TF1 serving does."""
    inputs, expected = tf1_ref_values(tmp_path)
    result = check(
        build_dir, tmp_path, wild["tf1_ref_output"], inputs_file=inputs, expected_file=expected
    )
    every_row_passes(result)
    assert {c.status for c in result.cells} == {"pass"}, [c.message for c in result.cells]
    (case,) = result.cases
    assert case.python_load.startswith("v1 Session: a TF1 SavedModel (no object graph)")
    assert {e.key: e.dtype for e in case.case.outputs} == {
        "y": "float32",
        "w": "float32",
        "two": "int64",
    }


@e2e
def test_signature_without_shapes_takes_the_graphs(build_dir, tmp_path, wild) -> None:
    """TensorInfos without tensor_shape: a correct (3, 1) input is accepted, not refused as
    'does not fit the model's ()'; generated inputs follow the graph's (-1, 1)."""
    x = np.array([[1.0], [2.0], [-3.0]], np.float32)
    result = check(
        build_dir,
        tmp_path,
        wild["shapeless"],
        inputs_file=npz(tmp_path / "in.npz", x=x),
        expected_file=npz(tmp_path / "expected.npz", y=2 * x + 1),
    )
    every_row_passes(result)
    generated = check(build_dir, tmp_path / "generated", wild["shapeless"], dims={None: 4})
    assert fed(generated, "serving_default", "x").shape == (4, 1)
    assert {c.status for c in generated.cells} == {"pass"}


@e2e
def test_keras2_legacy_optimizer_saved_model(build_dir, tmp_path, wild) -> None:
    """TF 2.12 Keras model.save() with tf.keras.optimizers.legacy.Adam: tf.saved_model.load
    cannot revive the optimizer in TF 2.21; Python falls back to a v1 Session over the
    MetaGraph and every consumer reproduces what Keras 2.12 predicted."""
    recorded = np.load(WILD / "legacy_optimizer_io.npz")
    result = check(
        build_dir,
        tmp_path,
        wild["legacy_optimizer"],
        inputs_file=npz(tmp_path / "in.npz", x=recorded["x"]),
        expected_file=npz(tmp_path / "expected.npz", dense_1=recorded["dense_1"]),
    )
    every_row_passes(result)
    (case,) = result.cases
    assert case.python_load.startswith("v1 Session, because tf.saved_model.load failed:")
    assert "add_slot" in case.python_load
    from tfinterop.check import notes

    assert any(
        line.startswith("python loaded serving_default: v1 Session") for line in notes(result)
    )


@e2e
def test_without_a_reference_consumers_are_compared_by_consensus(build_dir, tmp_path, wild) -> None:
    """--python-loader object cannot load a ref-typed TF1 output: Rust and C, which ran, are
    compared with each other and with --expected, and the rows say there is no reference."""
    inputs, expected = tf1_ref_values(tmp_path)
    result = check(
        build_dir,
        tmp_path,
        wild["tf1_ref_output"],
        inputs_file=inputs,
        expected_file=expected,
        python_loader="object",
    )
    rows = cells_by(result)
    python = rows[(result.label, "serving_default", "python")]
    assert python.status == "error" and "Encountered while creating function" in python.message
    for consumer in ("rust", "c"):
        row = rows[(result.label, "serving_default", consumer)]
        assert row.status == "skip" and row.message.startswith("no Python reference (python")
        assert rows[(f"{result.label} vs expected", "serving_default", consumer)].status == "pass"
    consensus = rows[(f"{result.label} consensus", "serving_default", "rust vs c")]
    assert consensus.status == "pass" and consensus.max_abs == 0
    assert consensus.message.startswith("no Python reference: rust and c agree (equal")
    assert sorted(o.key for o in consensus.outputs) == ["two", "w", "y"]


def test_consensus_row_names_the_pair_and_its_worst_difference(tmp_path) -> None:
    from tfinterop.check.consensus import consensus_cells
    from tfinterop.contract.records import JobRecord
    from tfinterop.fixtures import Tolerance
    from tfinterop.manifest import Case, TensorEntry
    from tfinterop.pipeline.cases import CaseRef

    case = Case(
        "saved_model", "serving_default", "m", [], [TensorEntry("y", "y:0", "float32", [], "")]
    )
    ref = CaseRef(
        "m", case, tmp_path, lambda key, runtime: Tolerance(), lambda *a: None, {}, "python failed"
    )
    records = {}
    for name, values in (("rust", [1.0, 2.0]), ("c", [1.0, 2.5])):
        path = tmp_path / f"{name}.npy"
        np.save(path, np.array(values, np.float32))
        out = [{"key": "y", "dtype": "float32", "file": str(path)}]
        records[name] = {
            ref.job_id: JobRecord.from_json({"id": ref.job_id, "status": "ok", "outputs": out})
        }
    (cell,) = consensus_cells([ref], records, ["python", "rust", "c"], Tolerance(atol=0.1))
    assert (cell.fixture, cell.consumer, cell.status) == ("m consensus", "rust vs c", "fail")
    assert cell.max_abs == pytest.approx(0.5)
    assert cell.message.startswith("no Python reference: c vs rust: output y: 1/2 elements")
    ok = consensus_cells([ref], records, ["rust", "c"], Tolerance(atol=0.5))
    assert ok[0].status == "pass" and "worst |diff| 0.5" in ok[0].message


@e2e
def test_one_python_process_computes_reference_and_row(build_dir, tmp_path) -> None:
    """The reference and the python row come from one process (one `import tensorflow`);
    the row reruns the reference's load when no signature writes state."""
    inputs = npz(tmp_path / "in.npz", x=np.array([[1.0], [2.0]], np.float32))
    result = check(build_dir, tmp_path, TF1_HALF_PLUS_TWO, inputs_file=inputs)
    assert {c.status for c in result.cells} == {"pass"}
    assert result.shared_load
    (results,) = result.work.glob("**/python*/results.jsonl")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["record"] for r in records] == ["consumer", "job", "job", "done"]
    assert "reusing this process's earlier load" in records[2]["loader"]
    python = cells_by(result)[(result.label, "serving_default", "python")]
    assert python.load_s == records[1]["load_s"]  # the load the row shares


def test_dim_that_can_size_nothing_says_why() -> None:
    from tfinterop.check.notes import dim_warnings
    from tfinterop.check.specs import Spec

    spec = Spec(
        "serving_default", ["serve"], "", [
            ("fixed", "a:0", "float32", [1]),
            ("batch", "b:0", "float32", [-1, 3]),
            ("free", "c:0", "float32", None),
        ], [], [], [],
    )  # fmt: skip

    def warnings(**options) -> list[str]:
        return dim_warnings(
            [spec], CheckOptions(path=Path("m"), build_dir=Path("b"), **options), None, False
        )

    assert warnings(dims={None: 4}) == []  # 'batch' has an unknown dimension to size
    (fixed,) = warnings(dims={"fixed": 4})
    assert (
        fixed
        == "--dim fixed=4 does nothing: input 'fixed' of serving_default has shape (1,), no unknown dimension"
    )
    (free,) = warnings(dims={"free": 4})
    assert "has unknown rank (give --shape free=D0,D1,...)" in free
    (shaped,) = warnings(dims={"batch": 4}, shapes={"batch": [2, 3]})
    assert "has its whole shape from --shape" in shaped
    (bare,) = warnings(dims={None: 4, "batch": 2})
    assert bare.startswith("--dim 4 does nothing: ") and "input 'batch' takes --dim batch=2" in bare
    given = {"batch": np.zeros((2, 3), np.float32)}
    (from_file,) = dim_warnings(
        [spec], CheckOptions(path=Path("m"), build_dir=Path("b"), dims={"batch": 5}), given, False
    )
    assert "comes from --inputs" in from_file
    with pytest.raises(
        UserError,
        match=r"--dim nope=4: the model has no input 'nope' \(inputs: batch, fixed, free\)",
    ):
        warnings(dims={"nope": 4})
