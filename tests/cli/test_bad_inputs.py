"""The bad-input catalogue (issue 7): every way a user can hand tfinterop something wrong.

Each case drives the real command line (``cli.main`` in-process, so TensorFlow is imported
once per worker; one case runs ``python -m tfinterop`` to show ``--debug``) and asserts the
outcome: a non-zero exit with exactly one actionable line naming the problem, or for the
"compared, not crashed" / "only that fixture fails" cases the stated result; never a
traceback. docs/bad-inputs.md lists every case with the line the user sees; each test checks
its row against what it observed (``TFINTEROP_UPDATE_DOC=1`` rewrites the rows instead).

Needs the built C consumer (`tfinterop build`), like tests/check/test_check.py.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tfinterop import consumers
from tfinterop.cli import main
from tfinterop.consumers import FROZEN, SAVED_MODEL

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "bad-inputs.md"
REALWORLD = Path(__file__).resolve().parents[1].joinpath("data") / "realworld"
TF1_HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_cpu/00000123"
TF2_HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_tf2_cpu/00000123"
ADDITION = REALWORLD / "tf-rust/addition.pb"
PROBLEM_PREFIXES = ("tfinterop: error:", "tfinterop: internal error", "ERROR ", "FAIL ", "XPASS ")

FIXTURE = '''"""{name}: y = x + 1 (a bad-input test fixture)."""
import numpy as np
from tfinterop.fixtures import ExportSpec, Signature, Tolerance, fixture
{at_import}

@fixture({name!r}, seed=1, tolerance=Tolerance())
def build(ctx):
    import tensorflow as tf
    {in_build}

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name={input!r})])
        def serve(self, x):
            return {{{output!r}: x + 1.0}}

    m = M()
    inputs = {{{input!r}: np.arange(4, dtype=np.float32)}}
    return ExportSpec(m, {{{signature!r}: Signature(m.serve, inputs)}}, formats=("frozen",))
'''


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    @property
    def problems(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.startswith(PROBLEM_PREFIXES)]

    def line(self, prefix: str) -> str:
        (found,) = [line for line in self.text.splitlines() if line.startswith(prefix)]
        return found


def tfinterop(capfd: pytest.CaptureFixture[str], *args: object) -> Outcome:
    capfd.readouterr()
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return Outcome(code, out, err)


def normalise(line: str, tmp: Path) -> str:
    """The line with this machine's paths and times replaced by stable placeholders: every
    temporary directory of the session is TMP (``tmp`` is one of them)."""
    line = re.sub(re.escape(str(tmp.parent)) + r"/[^/\s`]+", "TMP", line)
    line = line.replace(sys.executable, "python").replace(sysconfig.get_paths()["purelib"], "SITE")
    line = line.replace(str(ROOT) + "/", "")
    line = re.sub(r"c_consumer/[0-9a-f]{12}/", "c_consumer/WHEEL/", line)
    line = re.sub(r"\.tmp\d+\b", ".tmpPID", line)
    line = re.sub(r"(__inference_\w+?)_\d+\b", r"\1_N", line)  # TensorFlow's function counter
    return re.sub(r"\d{8}-\d{6}-\d+", "RUN", line)


def _doc_row(case: str, what: str, code: int, line: str) -> str:
    return f"| `{case}` | {what} | {code} | `` {line.replace('|', chr(92) + '|')} `` |"


def documented(case: str, what: str, outcome: Outcome, line: str, tmp: Path) -> None:
    """The case's row in docs/bad-inputs.md shows this exit status and exactly this line."""
    row = _doc_row(case, what, outcome.code, normalise(line, tmp))
    if os.environ.get("TFINTEROP_UPDATE_DOC"):
        with open(DOC, "r+", encoding="utf-8") as handle:  # xdist workers share the file
            fcntl.flock(handle, fcntl.LOCK_EX)
            lines = handle.read().splitlines()
            index = next(i for i, x in enumerate(lines) if x.startswith(f"| `{case}` |"))
            lines[index] = row
            handle.seek(0)
            handle.truncate()
            handle.write("\n".join(lines) + "\n")
        return
    rows = [x for x in DOC.read_text(encoding="utf-8").splitlines() if x.startswith(f"| `{case}`")]
    assert rows == [row], f"docs/bad-inputs.md is stale for {case} (TFINTEROP_UPDATE_DOC=1)"


def refused(outcome: Outcome, *needles: str, code: int = 2) -> str:
    """The one problem line of a refused input: non-zero exit, no traceback, every needle."""
    assert "Traceback" not in outcome.text, outcome.text
    assert outcome.code == code, outcome.text
    (line,) = outcome.problems or [""]
    assert len(outcome.problems) == 1, outcome.text
    assert "internal error" not in line, line
    for needle in needles:
        assert needle in line, line
    return line


# ------------------------------------------------------------------------------ models


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Broken and hostile inputs, made once per worker (no TensorFlow needed for most)."""
    from tensorflow.core.framework import graph_pb2, types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    root = tmp_path_factory.mktemp("models")
    made: dict[str, Path] = {"root": root}
    (root / "empty.pb").write_bytes(b"")
    made["empty"] = root / "empty.pb"
    graph = ADDITION.read_bytes()
    made["truncated"] = root / "truncated.pb"
    made["truncated"].write_bytes(graph[: len(graph) // 2])
    made["random"] = root / "random.pb"
    made["random"].write_bytes(np.random.default_rng(7).bytes(4096))
    made["novars"] = root / "novars"
    shutil.copytree(TF2_HALF_PLUS_TWO, made["novars"])
    shutil.rmtree(made["novars"] / "variables")

    # A TF1 SavedModel (no object graph: keys come from the SignatureDef alone) whose
    # signature and output keys climb out of any directory they are joined to.
    made["escape"] = root / "escaped"
    climbing = "../" * 24 + str(made["escape"]).lstrip("/")
    made["traversal"] = root / "traversal"
    shutil.copytree(TF1_HALF_PLUS_TWO, made["traversal"])
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((made["traversal"] / "saved_model.pb").read_bytes())
    signatures = proto.meta_graphs[0].signature_def
    signature = signatures["serving_default"]
    signature.outputs[climbing].CopyFrom(signature.outputs["y"])
    del signature.outputs["y"]
    signatures[climbing].CopyFrom(signature)
    del signatures["serving_default"]
    (made["traversal"] / "saved_model.pb").write_bytes(proto.SerializeToString())
    made["climbing"] = Path(climbing)

    def graph_def(name: str, inputs: dict[str, list[int] | None]) -> Path:
        """Placeholders (float, given shape; None = unknown rank) added up into y."""
        g = graph_pb2.GraphDef()
        g.versions.producer = 1882
        for input_name, shape in inputs.items():
            node = g.node.add(name=input_name, op="Placeholder")
            node.attr["dtype"].type = types_pb2.DT_FLOAT
            if shape is None:
                node.attr["shape"].shape.unknown_rank = True
            else:
                for size in shape:
                    node.attr["shape"].shape.dim.add(size=size)
        y = g.node.add(name="y", op="AddN", input=list(inputs))
        y.attr["N"].i = len(inputs)
        y.attr["T"].type = types_pb2.DT_FLOAT
        path = root / f"{name}.pb"
        path.write_bytes(g.SerializeToString())
        return path

    made["huge"] = graph_def("huge", {"x": [2**40]})
    made["two_inputs"] = graph_def("two_inputs", {"a": [2], "b": None})
    made["unknown_rank"] = graph_def("unknown_rank", {"x": None})
    return made


def npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def check_args(tmp_path: Path, build_dir: Path, model: Path, *more: object) -> list[object]:
    return [
        "check", model, *more, "--no-build", "--build-dir", build_dir,
        "--work-dir", tmp_path / "work", "-c", "c", "--repeat", "1", "--warmup", "0",
    ]  # fmt: skip


# ------------------------------------------------------------------ fixtures and interop


@pytest.fixture(scope="session")
def interop_build(tmp_path_factory, build_dir) -> Path:
    """A build dir of its own (exports of the test fixtures) using the built C consumer."""
    root = tmp_path_factory.mktemp("interop-build")
    (root / "c_consumer").symlink_to(build_dir / "c_consumer")
    return root


def fixtures_dir(tmp_path: Path, **files: dict[str, str]) -> Path:
    """A --fixtures-dir with one tiny fixture per keyword (file stem -> template fields)."""
    directory = tmp_path / "fixtures"
    directory.mkdir()
    for stem, fields in files.items():
        values = {
            "name": stem, "signature": "serving_default", "input": "x", "output": "y",
            "at_import": "", "in_build": "", **fields,
        }  # fmt: skip
        (directory / f"{stem}.py").write_text(FIXTURE.format(**values))
    return directory


def interop(capfd, build: Path, directory: Path, *more: object) -> Outcome:
    return tfinterop(
        capfd, "interop", "--fixtures-dir", directory, "--build-dir", build, "--no-build",
        "--repeat", "1", "--warmup", "0", *more,
    )  # fmt: skip


@pytest.fixture
def fake_consumers(monkeypatch, fake_consumer) -> None:
    """Misbehaving consumers selectable with -c fake-MODE (tests/fake_consumer.py)."""
    fakes = tuple(
        fake_consumer(f"fake-{mode}", frozenset({FROZEN, SAVED_MODEL}), mode)
        for mode in ("crash", "hang", "wrong_dtype", "wrong_shape")
    )
    monkeypatch.setattr(consumers, "ALL_CONSUMERS", (*consumers.ALL_CONSUMERS, *fakes))


# ----------------------------------------------------------------------- model files


def test_missing_path(capfd, tmp_path) -> None:
    outcome = tfinterop(capfd, "inspect", tmp_path / "missing", "--no-kernels")
    line = refused(outcome, "missing does not exist")
    documented("missing_path", "`inspect` a path that does not exist", outcome, line, tmp_path)


def test_empty_file(capfd, models, tmp_path) -> None:
    outcome = tfinterop(capfd, "inspect", models["empty"], "--no-kernels")
    line = refused(outcome, "empty.pb holds no graph nodes: not a GraphDef")
    documented("empty_file", "an empty `.pb`", outcome, line, models["root"])


def test_truncated_pb(capfd, models, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, models["truncated"]))
    line = refused(outcome, "truncated.pb is not a binary GraphDef")
    documented("truncated_pb", "a GraphDef cut in half", outcome, line, models["root"])


def test_random_bytes_pb(capfd, models) -> None:
    outcome = tfinterop(capfd, "inspect", models["random"], "--no-kernels")
    line = refused(outcome, "random.pb is not a binary GraphDef")
    documented("random_bytes_pb", "4 KiB of random bytes as `.pb`", outcome, line, models["root"])


def test_saved_model_without_variables(capfd, models, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, models["novars"]))
    line = refused(outcome, "no variables/variables.index: its weights are missing")
    assert "running" not in outcome.out  # refused before any consumer started
    what = "a SavedModel whose `variables/` was not copied"
    documented("saved_model_without_variables", what, outcome, line, models["root"])


def test_wrong_tag_set(capfd, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--tags", "gpu"))
    line = refused(outcome, "no MetaGraph with tag set 'gpu'; available tag sets: serve")
    documented("wrong_tag_set", "`--tags gpu` on a serve-only model", outcome, line, tmp_path)


def test_unknown_signature(capfd, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--signature", "serve_default")
    outcome = tfinterop(capfd, *args)
    line = refused(outcome, "signature 'serve_default' not found; available: serving_default")
    documented("unknown_signature", "`--signature` typo", outcome, line, tmp_path)


def test_input_name_typo(capfd, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--input", "xx"))
    line = refused(outcome, "addition.pb has no op 'xx'")
    documented("input_name_typo", "graph `--input` naming no op", outcome, line, tmp_path)


def test_input_key_typo_in_npz(capfd, build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", xx=np.float32([1.0]))
    args = check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--inputs", inputs)
    outcome = tfinterop(capfd, *args)
    line = refused(outcome, "--inputs has array(s) xx that match no input (expected keys: x")
    documented("input_key_typo", "`--inputs` array named `xx`, not `x`", outcome, line, tmp_path)


def test_output_name_typo(capfd, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--output", "zz"))
    line = refused(outcome, "addition.pb has no op 'zz'")
    documented("output_name_typo", "graph `--output` naming no op", outcome, line, tmp_path)


# ----------------------------------------------------------------------------- inputs


def test_dtype_mismatch(capfd, build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", x=np.float32(1.5))
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--inputs", inputs))
    line = refused(outcome, "input 'x:0' has dtype float32, the model expects int32")
    documented("dtype_mismatch", "float32 values for an int32 input", outcome, line, tmp_path)


def test_rank_mismatch(capfd, build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", x=np.float32([[1.0]]))
    outcome = tfinterop(
        capfd, *check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--inputs", inputs)
    )
    line = refused(outcome, "shape (1, 1) does not fit the model's (1,)")
    documented("rank_mismatch", "a (1, 1) array for a (1,) input", outcome, line, tmp_path)


def test_shape_mismatch(capfd, build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", x=np.float32([1.0, 2.0]))
    outcome = tfinterop(
        capfd, *check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--inputs", inputs)
    )
    line = refused(outcome, "shape (2,) does not fit the model's (1,)")
    documented("shape_mismatch", "a (2,) array for a (1,) input", outcome, line, tmp_path)


def test_npz_object_array_is_never_unpickled(capfd, build_dir, tmp_path, monkeypatch) -> None:
    import pickle

    marker = tmp_path / "unpickled"

    class Trap:  # unpickling this would create the marker file
        def __reduce__(self):
            return (Path.touch, (marker,))

    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.array([Trap()], dtype=object))
    monkeypatch.setattr(pickle, "loads", None)  # any unpickling would crash loudly
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--inputs", inputs))
    line = refused(outcome, "array 'x' holds Python objects (dtype object)", "refused")
    assert not marker.exists()
    documented(
        "npz_object_array", "`--inputs` with a pickled object array", outcome, line, tmp_path
    )


def test_npz_missing_key(capfd, models, build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", a=np.float32([1.0, 2.0]))
    args = check_args(tmp_path, build_dir, models["two_inputs"], "--inputs", inputs)
    outcome = tfinterop(capfd, *args)
    line = refused(outcome, "--inputs has no array for input 'b:0'", "--shape b:0=")
    what = "`--inputs` lacks an input that cannot be generated (unknown rank)"
    documented("npz_missing_key", what, outcome, line, tmp_path)


def test_npz_header_lies_about_its_size(capfd, build_dir, tmp_path) -> None:
    import zipfile

    header = tmp_path / "x.npy"
    with open(header, "wb") as handle:  # declares 2**40 float32 values, holds 4 bytes
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (2**40,)}
        )
        handle.write(b"\0\0\0\0")
    inputs = tmp_path / "in.npz"
    with zipfile.ZipFile(inputs, "w") as archive:
        archive.write(header, "x.npy")
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--inputs", inputs))
    line = refused(outcome, "array 'x' declares shape (1099511627776,)", "truncated or corrupt")
    what = "`.npy` header in the `.npz` declaring 4 TiB"
    documented("npz_header_too_large", what, outcome, line, tmp_path)


def test_npz_expanding_past_the_limit(capfd, build_dir, tmp_path, monkeypatch) -> None:
    """A compressed archive far larger unpacked than on disk (a zip bomb, scaled down: the
    limit is lowered to 1 MiB so the test need not compress gigabytes)."""
    monkeypatch.setenv("TFINTEROP_MAX_INPUT_BYTES", str(1 << 20))
    inputs = tmp_path / "in.npz"
    np.savez_compressed(inputs, x=np.zeros((1 << 20,), np.int32))
    assert inputs.stat().st_size < 10_000
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--inputs", inputs))
    line = refused(outcome, "its arrays expand to 4,194,432 bytes, over the 1,048,576-byte limit")
    what = "a compressed `.npz` expanding 500x (limit lowered to 1 MiB)"
    documented("npz_expands_past_limit", what, outcome, line, tmp_path)


def test_npy_instead_of_npz(capfd, build_dir, tmp_path) -> None:
    inputs = tmp_path / "in.npy"
    np.save(inputs, np.int32(1))
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--inputs", inputs))
    line = refused(outcome, "in.npy: not an .npz archive")
    documented("npy_not_npz", "a plain `.npy` given as `--inputs`", outcome, line, tmp_path)


def test_nan_and_infinity_inputs_are_compared(capfd, build_dir, tmp_path) -> None:
    x = np.array([[np.nan], [np.inf], [-np.inf], [1.0]], np.float32)
    inputs = npz(tmp_path / "in.npz", x=x)
    report = tmp_path / "report.json"
    args = check_args(tmp_path, build_dir, TF1_HALF_PLUS_TWO, "--inputs", inputs)
    outcome = tfinterop(capfd, *args, "--json", report)
    assert outcome.code == 0 and not outcome.problems, outcome.text
    assert "Traceback" not in outcome.text
    import json

    (row,) = json.loads(report.read_text())["rows"]
    assert (row["consumer"], row["status"]) == ("c", "pass"), row
    (case,) = json.loads(report.read_text())["check"]["cases"]
    assert case["input_source"] == {"x": "--inputs x"}
    (reference,) = (tmp_path / "work").glob("*/*/reference/serving_default/y.npy")
    np.testing.assert_array_equal(np.load(reference).reshape(-1), [np.nan, np.inf, -np.inf, 2.5])
    line = outcome.line("1 cells:")
    what = "NaN, +Inf, -Inf inputs: compared (NaN where NaN, equal infinities), pass"
    documented("nan_inf_inputs", what, outcome, line, tmp_path)


def test_zero_size_tensors(capfd, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, TF1_HALF_PLUS_TWO, "--dim", "0")
    outcome = tfinterop(capfd, *args)
    assert "Traceback" not in outcome.text
    assert "input serving_default/x: generated (0, 1) float32" in outcome.out, outcome.text
    line = outcome.line("1 cells:")
    assert outcome.code == 0 and line == "1 cells: 1 pass", outcome.text
    (reference,) = (tmp_path / "work").glob("*/*/reference/serving_default/y.npy")
    assert np.load(reference).shape == (0, 1)
    what = "`--dim 0`: zero-size input and output, compared"
    documented("zero_size_tensors", what, outcome, line, tmp_path)


def test_absurd_dimension_is_refused_before_allocation(capfd, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, TF1_HALF_PLUS_TWO, "--dim", f"x={10**12}")
    outcome = tfinterop(capfd, *args)
    line = refused(outcome, "generating shape (1000000000000, 1)", "--dim/--shape")
    documented("absurd_dim", "`--dim x=10**12`", outcome, line, tmp_path)


def test_absurd_declared_shape_is_refused(capfd, models, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, models["huge"]))
    line = refused(outcome, "generating shape (1099511627776,)", "needs more than 1 GiB")
    documented("absurd_model_shape", "a model whose input is (2**40,)", outcome, line, tmp_path)


def test_absurd_shape_option_is_refused(capfd, models, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, models["unknown_rank"], "--shape", f"x:0={2**40}")
    outcome = tfinterop(capfd, *args)
    line = refused(outcome, "generating shape (1099511627776,)")
    documented("absurd_shape_option", "`--shape x:0=2**40`", outcome, line, tmp_path)


def test_dim_that_sizes_nothing_warns(capfd, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--dim", "x=4")
    outcome = tfinterop(capfd, *args)
    assert outcome.code == 0 and not outcome.problems, outcome.text
    line = outcome.line("warning:")
    assert "--dim x=4 does nothing: input 'x' of serving_default has shape (1,)" in line
    what = "`--dim x=4` where `x` is (1,): nothing to size, said, and run"
    documented("dim_sizes_nothing", what, outcome, line, tmp_path)


def test_dim_naming_no_input_is_refused(capfd, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, TF2_HALF_PLUS_TWO, "--dim", "xx=4"))
    line = refused(outcome, "--dim xx=4: the model has no input 'xx' (inputs: x)")
    documented("dim_names_no_input", "`--dim xx=4`: no input `xx`", outcome, line, tmp_path)


# ------------------------------------------------------------------ models from the wild

WILD = Path(__file__).resolve().parents[1].joinpath("data") / "wild"


@pytest.fixture(scope="session")
def wild(tmp_path_factory) -> dict[str, Path]:
    """Models other exporters wrote (tests/data/wild/README.md): two built now, the Keras 2
    legacy-optimizer one as TensorFlow 2.12 wrote it."""
    import runpy
    import tarfile

    out = tmp_path_factory.mktemp("wild")
    models = runpy.run_path(str(WILD / "make_models.py"))["build_all"](out)
    with tarfile.open(WILD / "legacy_optimizer_tf212.tar.xz") as archive:
        archive.extractall(out, filter="data")
    return {**models, "legacy_optimizer": out / "legacy_optimizer", "root": out}


def test_signature_without_shapes(capfd, wild, build_dir, tmp_path) -> None:
    inputs = npz(tmp_path / "in.npz", x=np.float32([[1.0], [2.0], [3.0]]))
    outcome = tfinterop(
        capfd, *check_args(tmp_path, build_dir, wild["shapeless"], "--inputs", inputs)
    )
    line = outcome.line("1 cells:")
    assert outcome.code == 0 and line == "1 cells: 1 pass", outcome.text
    what = "TF 1.0-era SignatureDef without `tensor_shape`, fed (3, 1): the graph's (-1, 1) is used"
    documented("signature_without_shapes", what, outcome, line, wild["root"])


def test_ref_typed_signature_output(capfd, wild, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, wild["tf1_ref_output"]))
    line = outcome.line("1 cells:")
    assert outcome.code == 0 and line == "1 cells: 1 pass", outcome.text
    assert "python loaded serving_default: v1 Session: a TF1 SavedModel" in outcome.out
    what = (
        "TF1 SavedModel returning a `VariableV2` (`float32_ref`): Python loads it in a v1 Session"
    )
    documented("ref_typed_output", what, outcome, line, wild["root"])


def test_keras2_legacy_optimizer(capfd, wild, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, wild["legacy_optimizer"]))
    line = outcome.line("1 cells:")
    assert outcome.code == 0 and line == "1 cells: 1 pass", outcome.text
    assert (
        "because tf.saved_model.load failed: '_UserObject' object has no attribute" in outcome.out
    )
    what = "Keras 2 `model.save()` with a legacy optimizer (TF 2.12): Python falls back to a v1 Session"
    documented("legacy_optimizer", what, outcome, line, wild["root"])


def test_no_python_reference(capfd, wild, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, wild["tf1_ref_output"], "--python-loader", "object")
    outcome = tfinterop(capfd, *args, "-c", "rust")
    line = refused(outcome, "/ python (reference) /", "Encountered while creating function", code=1)
    assert "no Python reference for serving_default: the consumers that ran it are compared" in (
        outcome.out
    )
    what = "the Python reference fails (`--python-loader object`): Rust and C compared by consensus"
    documented("no_python_reference", what, outcome, line, wild["root"])


# -------------------------------------------------------------------------- consumers


def test_consumer_binary_missing(capfd, tmp_path) -> None:
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = interop(capfd, tmp_path / "nothing-built", directory, "-c", "c")
    line = refused(outcome, "tfinterop-c-consumer is not built (run `tfinterop build`)", code=1)
    documented("consumer_missing", "the C consumer was never built", outcome, line, tmp_path)


def test_consumer_build_fails(capfd, tmp_path, monkeypatch) -> None:
    compiler = tmp_path / "cc"
    compiler.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && { echo "broken-cc 1.0"; exit 0; }\n'
        "echo \"main.c:12:5: error: expected ';' before 'return'\" >&2\nexit 1\n"
    )
    compiler.chmod(0o755)
    monkeypatch.setenv("CC", str(compiler))
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = tfinterop(
        capfd, "interop", "--fixtures-dir", directory, "--build-dir", tmp_path / "build",
        "-c", "c", "--repeat", "1", "--warmup", "0",
    )  # fmt: skip
    line = refused(
        outcome,
        "tiny / c / frozen / serving_default: build failed: C consumer build failed: ",
        "exited with status 1; stderr tail: main.c:12:5: error: expected ';' before 'return'",
        code=1,
    )
    documented(
        "consumer_build_failed",
        "the C compiler fails (`CC=` a broken compiler)",
        outcome,
        line,
        tmp_path,
    )


def test_consumer_killed_by_signal(capfd, interop_build, tmp_path, fake_consumers) -> None:
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = interop(capfd, interop_build, directory, "-c", "fake-crash")
    line = refused(outcome, "was killed by SIGSEGV", "stderr tail: fake consumer: about", code=1)
    documented("consumer_signal", "a consumer dies of SIGSEGV", outcome, line, tmp_path)


def test_consumer_hang_is_killed_at_the_timeout(
    capfd, interop_build, tmp_path, fake_consumers
) -> None:
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = interop(capfd, interop_build, directory, "-c", "fake-hang", "--timeout", "2")
    line = refused(outcome, "timed out after 2s and was killed", "fake consumer: hanging", code=1)
    documented("consumer_hang", "a consumer hangs (`--timeout 2`)", outcome, line, tmp_path)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # Declaring a dtype other than the graph's breaks the contract (an error, not a
        # numeric failure); a wrong shape is the consumer's numbers being wrong.
        (
            "wrong_dtype",
            "ERROR tiny / fake-wrong_dtype / frozen / serving_default: output y: fake-wrong_dtype "
            "broke the contract: the result record declares dtype float64, but the graph's "
            "output is float32",
        ),
        (
            "wrong_shape",
            "FAIL tiny / fake-wrong_shape / frozen / serving_default: output y: shape (3,) != "
            "expected (4,)",
        ),
    ],
)
def test_consumer_writes_wrong_dtype_or_shape(
    capfd, interop_build, tmp_path, fake_consumers, mode, expected
) -> None:
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = interop(capfd, interop_build, directory, "-c", f"fake-{mode}")
    line = refused(outcome, expected, code=1)
    assert line.startswith(expected)
    what = f"a consumer writes y with the wrong {mode[6:]}"
    documented(f"consumer_{mode}", what, outcome, line, tmp_path)


# --------------------------------------------------------------------------- fixtures


def test_fixture_raising_at_import_fails_alone(capfd, interop_build, tmp_path) -> None:
    at_import = "raise RuntimeError('cannot reach the model server')"
    directory = fixtures_dir(tmp_path, good={}, broken={"at_import": at_import})
    outcome = interop(capfd, interop_build, directory, "-c", "c")
    line = refused(outcome, "broken.py:4: RuntimeError: cannot reach the model server", code=1)
    assert line.startswith("ERROR broken / c / ")
    assert outcome.line("2 cells:") == "2 cells: 1 pass, 1 error"  # `good` ran and passed
    what = "a fixture file raising at import, next to a good one"
    documented("fixture_raises_at_import", what, outcome, line, tmp_path)


def test_fixture_raising_in_build_fails_alone(capfd, interop_build, tmp_path) -> None:
    in_build = "raise ValueError('weights file not found')"
    directory = fixtures_dir(tmp_path, good={}, broken={"in_build": in_build})
    outcome = interop(capfd, interop_build, directory, "-c", "c")
    line = refused(outcome, "export failed: ValueError (broken.py:9): weights file", code=1)
    assert outcome.line("2 cells:") == "2 cells: 1 pass, 1 error"
    what = "a fixture's `build()` raising, next to a good one"
    documented("fixture_raises_in_build", what, outcome, line, tmp_path)


def test_duplicate_fixture_names(capfd, interop_build, tmp_path) -> None:
    directory = fixtures_dir(
        tmp_path, first={"name": "same"}, second={"name": "same"}, other={"name": "other"}
    )
    outcome = interop(capfd, interop_build, directory, "-c", "c")
    assert "2 cells: 1 pass, 1 error" in outcome.text, outcome.text  # `other` still ran
    line = refused(
        outcome,
        "ERROR same / c / * / *: fixture failed to load: duplicate fixture name 'same' in "
        "second.py and first.py; fixture names must be unique",
        code=1,
    )
    what = "two files declare `same` (a third fixture still runs)"
    documented("duplicate_fixture_names", what, outcome, line, tmp_path)


@pytest.mark.parametrize(
    ("case", "fields", "expected"),
    [
        ("fixture_name", {"name": "../x"}, "fixture name '../x' must match"),
        ("signature_key", {"signature": "../../etc"}, "signature key '../../etc' must match"),
        ("input_name", {"input": "../../etc"}, "input name '../../etc' must match"),
        ("output_key", {"output": "../../etc"}, "output key '../../etc' must match"),
    ],
)
def test_path_traversal_in_fixture_names(
    capfd, interop_build, tmp_path, case, fields, expected
) -> None:
    directory = fixtures_dir(tmp_path, climber=fields)
    outcome = interop(capfd, interop_build, directory, "-c", "c")
    line = refused(outcome, expected, code=1)
    assert not list(interop_build.glob("**/etc*")) and not list(tmp_path.glob("**/etc*"))
    what = f"a fixture's {case.replace('_', ' ')} is `{next(iter(fields.values()))}`"
    documented(
        f"traversal_{case}",
        what,
        outcome,
        line,
        tmp_path,
    )


def test_path_traversal_in_a_checked_model_stays_inside(capfd, models, build_dir, tmp_path) -> None:
    """Someone else's SavedModel may name a signature or output anything: the names are
    data, the files they map to stay in the work directory, and the check runs."""
    args = check_args(
        tmp_path, build_dir, models["traversal"], "--signature", str(models["climbing"])
    )
    outcome = tfinterop(capfd, *args)
    assert "Traceback" not in outcome.text
    assert not models["escape"].exists(), "a file escaped the work directory"
    line = outcome.line("1 cells:")
    assert outcome.code == 0 and line == "1 cells: 1 pass", outcome.text
    what = "a SavedModel whose signature and output keys are `../../…/escaped`: runs, writes nothing outside"
    documented("traversal_in_model", what, outcome, line, tmp_path)


# ----------------------------------------------------------------------------- output


def test_unwritable_report_path(capfd, build_dir, tmp_path) -> None:
    outcome = tfinterop(capfd, *check_args(tmp_path, build_dir, ADDITION, "--json", "/proc/x.json"))
    line = refused(outcome, "--json /proc/x.json: cannot write there")
    assert "running" not in outcome.out  # refused before any work
    documented("unwritable_report", "`--json /proc/x.json`", outcome, line, tmp_path)


def test_report_path_under_a_file(capfd, interop_build, tmp_path) -> None:
    (tmp_path / "file").write_text("")
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = interop(
        capfd, interop_build, directory, "-c", "c", "--markdown", tmp_path / "file/r.md"
    )
    line = refused(outcome, "is a file, not a directory")
    documented("report_under_a_file", "`--markdown FILE/r.md`", outcome, line, tmp_path)


def test_unwritable_work_dir(capfd, build_dir, tmp_path) -> None:
    args = check_args(tmp_path, build_dir, ADDITION)
    args[args.index("--work-dir") + 1] = "/proc/tfinterop-work"
    outcome = tfinterop(capfd, *args)
    line = refused(outcome, "cannot write working files under /proc/tfinterop-work")
    documented("unwritable_work_dir", "`check --work-dir /proc/…`", outcome, line, tmp_path)


def test_unwritable_build_dir(capfd, tmp_path) -> None:
    directory = fixtures_dir(tmp_path, tiny={})
    outcome = interop(capfd, Path("/proc/tfinterop-build"), directory, "-c", "c")
    line = refused(outcome, "cannot write exports under /proc/tfinterop-build/exports")
    documented("unwritable_build_dir", "`interop --build-dir /proc/…`", outcome, line, tmp_path)


# ---------------------------------------------------------------------------- --debug


def test_debug_shows_the_traceback_and_only_then(tmp_path) -> None:
    """Through a real `python -m tfinterop` process: one line, and with --debug the trace."""
    command = [sys.executable, "-m", "tfinterop", "inspect", str(tmp_path / "nothing")]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.strip().splitlines() == [
        f"tfinterop: error: {tmp_path / 'nothing'} does not exist"
    ]
    debug = subprocess.run(
        [*command, "--debug"], capture_output=True, text=True, timeout=300, check=False
    )
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "UserError" in debug.stderr and "does not exist" in debug.stderr
