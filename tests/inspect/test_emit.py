"""`tfinterop inspect MODEL --emit rust|c`: the printed program compiles (C with -Werror, Rust
with cargo against the wheel's libtensorflow), runs, and prints every output of the signature
with the shape the SignatureDef gives and the values Python computes for zeros."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from tfinterop.inspect import inspect_model
from tfinterop.inspect.emit import emit
from tfinterop.tfenv import find_tensorflow

REALWORLD = Path(__file__).resolve().parents[1].joinpath("data") / "realworld"
HALF_PLUS_TWO = REALWORLD / "tf-serving/saved_model_half_plus_two_cpu/00000123"  # TF1, x (-1, 1)
ADDITION = REALWORLD / "tf-rust/addition.pb"  # frozen GraphDef, int32 scalars
LINE = re.compile(r"^output (\S+) \((\S+)\): dtype (\S+) shape \[([^\]]*)\] first \[(.*)\]$")
NUMERIC = frozenset(
    "float16 float32 float64 int8 int16 int32 int64 uint8 uint16 uint32 uint64 bool".split()
)
# fixture, format (or a real-world model), signature
FIXTURE_CASES = [
    ("linear", "saved_model", None),
    ("linear", "frozen", None),
    ("dtypes", "saved_model", "batch_n"),  # every dtype, scalars, strings, empty tensors
]


def _unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool, except under CI, which installs it: fail there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it (see .ci/run)")
    pytest.skip(reason)


def model_path(export_manifests, fixture: str, fmt: str) -> Path:
    directory = export_manifests([fixture])[fixture].directory
    return (
        directory / "saved_model"
        if fmt == "saved_model"
        else directory / "frozen" / "serving_default.pb"
    )


def python_outputs(path: Path, signature: str | None) -> dict[str, np.ndarray]:
    """What TensorFlow in Python returns for zeros of the emitted programs' shapes
    (free dimensions 1), by the names the programs print: signature keys, or for a
    GraphDef the output node names."""
    import tensorflow as tf

    inspection = inspect_model(path, None)
    program = emit(inspection, "c", signature).program
    feeds = {
        port.tensor: (
            np.full([1 if d < 0 else d for d in port.shape or []], b"", dtype=object)
            if port.dtype.name == "string"
            else np.zeros([1 if d < 0 else d for d in port.shape or []], dtype=port.dtype.name)
        )
        for port in program.inputs
    }
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        if program.saved_model:
            tf.compat.v1.saved_model.loader.load(session, program.tags, str(path))
        else:
            graph_def = tf.compat.v1.GraphDef.FromString(path.read_bytes())
            tf.compat.v1.import_graph_def(graph_def, name="")
        values = session.run([p.tensor for p in program.outputs], feed_dict=feeds)
    return {p.key: np.asarray(v) for p, v in zip(program.outputs, values, strict=True)}


def split_values(text: str) -> list[str]:
    """``1, (0, 0), Complex { re: 0.0, im: 1.0 }``: split at commas outside brackets."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += (char in "({[") - (char in ")}]")
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    return [*values, current.strip()] if current.strip() else values


def parse(stdout: str) -> dict[str, tuple[str, list[int], list[str]]]:
    printed = {}
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not an output line: {line!r}"
        key, _, dtype, shape, first = match.groups()
        dims = [int(d) for d in shape.split(",") if d.strip()]
        values = split_values(first)
        printed[key] = (dtype, dims, values)
    return printed


def check_printed(stdout: str, path: Path, signature: str | None) -> None:
    """Every output printed once, with the SignatureDef's dtype, a shape that its known
    dimensions admit and equal to Python's, and Python's first values."""
    program = emit(inspect_model(path, None), "c", signature).program
    expected = python_outputs(path, signature)
    printed = parse(stdout)
    assert set(printed) == {p.key for p in program.outputs}, stdout
    for port in program.outputs:
        dtype, dims, values = printed[port.key]
        assert dtype == port.dtype.name, (port.key, dtype)
        if port.shape is not None:
            assert len(dims) == len(port.shape)
            assert all(s in (-1, d) for s, d in zip(port.shape, dims, strict=True)), (port, dims)
        reference = expected[port.key]
        assert dims == list(reference.shape), (port.key, dims, reference.shape)
        first = reference.reshape(-1)[: len(values)]
        assert len(values) == min(5, reference.size), (port.key, values)
        if dtype == "bool":
            assert values == ["true" if v else "false" for v in first], (port.key, values)
        elif dtype in NUMERIC:
            np.testing.assert_allclose(
                np.array([float(v) for v in values]), first.astype(np.float64), rtol=1e-6,
                err_msg=port.key,
            )  # fmt: skip
        elif dtype.startswith("complex"):  # C: (re, im); Rust: Complex { re: .., im: .. }
            parts = [re.findall(r"[-+]?[\d.]+(?:e[-+]?\d+)?|[-+]?inf|nan", v) for v in values]
            assert all(len(p) == 2 for p in parts), (port.key, values)
            np.testing.assert_allclose(
                np.array([complex(float(a), float(b)) for a, b in parts]), first, rtol=1e-6,
                err_msg=port.key,
            )  # fmt: skip
        elif dtype == "string":
            assert values == [f'"{v.decode()}"' for v in first], (port.key, values)


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **kwargs.pop("env", {})}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=1200, check=False, env=env, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    return result


def emit_cli(run_cli, path: Path, *args: str) -> str:
    result = run_cli("inspect", str(path), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# --- C ----------------------------------------------------------------------------------------


def compile_c(source: str, directory: Path) -> Path:
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        _unavailable(f"no C compiler ({cc})")
    tf = find_tensorflow()
    (directory / "main.c").write_text(source)
    binary = directory / "program"
    run(
        [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", *tf.c_flags(),
         str(directory / "main.c"), *tf.link_flags(), "-o", str(binary)]
    )  # fmt: skip
    return binary


@pytest.mark.parametrize(("fixture", "fmt", "signature"), FIXTURE_CASES)
def test_emitted_c_runs_a_fixture(
    fixture, fmt, signature, export_manifests, run_cli, tmp_path
) -> None:
    path = model_path(export_manifests, fixture, fmt)
    source = emit_cli(
        run_cli, path, "--emit", "c", *(["--signature", signature] if signature else [])
    )
    binary = compile_c(source, tmp_path)
    check_printed(run([str(binary)]).stdout, path, signature)


@pytest.mark.parametrize(
    "path", [HALF_PLUS_TWO, ADDITION], ids=["half_plus_two_tf1", "addition_pb"]
)
def test_emitted_c_runs_a_real_world_model(path, run_cli, tmp_path) -> None:
    source = emit_cli(run_cli, path, "--emit", "c")
    if path == HALF_PLUS_TWO:  # a TF1 signature feeding an Identity; the batch left free
        assert '"x"' in source and "#define BATCH_SIZE 1" in source and '"serve"' in source
    binary = compile_c(source, tmp_path)
    check_printed(run([str(binary)]).stdout, path, None)


def test_emit_dir_writes_a_c_program_and_makefile_that_builds(run_cli, tmp_path) -> None:
    if not shutil.which("make"):
        _unavailable("make is not installed")
    directory = tmp_path / "half_plus_two"
    result = run_cli("inspect", str(HALF_PLUS_TWO), "--emit", "c", "--emit-dir", str(directory))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in directory.iterdir()} == {"main.c", "Makefile"}
    run(["make", "-s", "-C", str(directory)])
    binaries = [p for p in directory.iterdir() if p.name.startswith("tf-emit-")]
    assert len(binaries) == 1
    check_printed(run([str(binaries[0])]).stdout, HALF_PLUS_TWO, None)


# --- Rust -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cargo_build(build_dir, project_root):
    """``cargo_build(crate_dir)``: the emitted crate built as the Rust consumer is (its cargo
    config overriding tensorflow-sys, its Cargo.lock versions, its target dir under build/,
    where the tensorflow crate stays compiled between runs); returns the binary."""
    if not shutil.which("cargo"):
        _unavailable("cargo is not installed")
    from tfinterop.consumers.rust import write_cargo_config

    tf = find_tensorflow()
    config = write_cargo_config(build_dir, tf)
    target = (build_dir / "cargo-target").resolve()

    def build(crate: Path) -> Path:
        shutil.copy(project_root / "rust_consumer" / "Cargo.lock", crate / "Cargo.lock")
        run(
            ["cargo", "build", "--release", "--quiet", "--manifest-path",
             str(crate / "Cargo.toml"), "--config", str(config)],
            env={"CARGO_TARGET_DIR": str(target)},
            cwd=build_dir,  # not the crate: its own .cargo/config.toml (other rpath) stays out
        )  # fmt: skip
        name = re.search(r'^name = "(.+)"$', (crate / "Cargo.toml").read_text(), re.M)
        assert name
        return target / "release" / name.group(1)

    return build


def run_rust(binary: Path) -> str:
    # The consumer's rpath is relative to the venv's bin/; this binary finds the wheel here.
    return run([str(binary)], env={"LD_LIBRARY_PATH": find_tensorflow().library_dir}).stdout


RUST_CASES = [
    ("linear", "saved_model", None),
    ("dtypes", "saved_model", "batch_n"),
]


@pytest.mark.parametrize(("fixture", "fmt", "signature"), RUST_CASES)
def test_emitted_rust_runs_a_fixture(
    fixture, fmt, signature, export_manifests, run_cli, cargo_build, tmp_path
) -> None:
    path = model_path(export_manifests, fixture, fmt)
    crate = tmp_path / "crate"
    extra = ["--signature", signature] if signature else []
    result = run_cli("inspect", str(path), "--emit", "rust", "--emit-dir", str(crate), *extra)
    assert result.returncode == 0, result.stderr
    # stdout alone prints the same program as the crate's main.rs
    assert emit_cli(run_cli, path, "--emit", "rust", *extra) == (crate / "src/main.rs").read_text()
    check_printed(run_rust(cargo_build(crate)), path, signature)


def test_emitted_rust_runs_a_real_world_model(run_cli, cargo_build, tmp_path) -> None:
    crate = tmp_path / "crate"
    result = run_cli("inspect", str(HALF_PLUS_TWO), "--emit", "rust", "--emit-dir", str(crate))
    assert result.returncode == 0, result.stderr
    source = (crate / "src/main.rs").read_text()
    assert 'operation_by_name_required("x")' in source and "const BATCH_SIZE: u64 = 1;" in source
    check_printed(run_rust(cargo_build(crate)), HALF_PLUS_TWO, None)


@pytest.mark.parametrize("path", [HALF_PLUS_TWO, ADDITION], ids=["saved_model", "frozen"])
def test_emitted_rust_is_rustfmt_clean(path: Path, run_cli) -> None:
    """What a user's `cargo fmt --check` (or CI) would accept, as printed."""
    rustfmt = shutil.which("rustfmt")
    if rustfmt is None:
        if os.environ.get("CI"):
            pytest.fail("rustfmt is missing (rustup component add rustfmt; .ci/run does)")
        pytest.skip("rustfmt is not installed")
    result = run_cli("inspect", str(path), "--emit", "rust")
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        [rustfmt, "--edition", "2021", "--check"],
        input=result.stdout, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout[:3000]


def test_emit_dir_links_the_crate_to_this_environments_wheel(run_cli, tmp_path) -> None:
    """The crate's own .cargo/config.toml overrides tensorflow-sys with the wheel's libraries
    (the build above uses the consumer's identical override, to share its target dir)."""
    import tomllib

    crate = tmp_path / "crate"
    assert (
        run_cli("inspect", str(ADDITION), "--emit", "rust", "--emit-dir", str(crate)).returncode
        == 0
    )
    config = tomllib.loads((crate / ".cargo/config.toml").read_text())
    tf = find_tensorflow()
    ((triple, section),) = [(k, v) for k, v in config["target"].items() if "tensorflow" in v]
    (search,) = section["tensorflow"]["rustc-link-search"]
    assert section["tensorflow"]["rustc-link-lib"] == ["tensorflow", "tensorflow_framework"]
    for name in ("libtensorflow.so", "libtensorflow_framework.so"):
        assert (Path(search) / name).resolve().is_file()
        assert str((Path(search) / name).resolve()).startswith(str(Path(tf.library_dir).resolve()))
    assert f"-Wl,-rpath,{tf.library_dir}" in " ".join(section["rustflags"])
    assert triple.endswith("linux-gnu")


# --- errors -----------------------------------------------------------------------------------


def test_unknown_signature_lists_the_ones_there_are(run_cli) -> None:
    result = run_cli("inspect", str(HALF_PLUS_TWO), "--emit", "rust", "--signature", "nope")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "signature 'nope' not found" in result.stderr
    assert "regress_x2_to_y3" in result.stderr and "serving_default" in result.stderr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "notes.txt"),
        (lambda d: d, "not a SavedModel directory"),
    ],
    ids=["missing", "text_file", "empty_dir"],
)
def test_emit_on_something_not_a_model_is_one_line(make, expected, run_cli, tmp_path) -> None:
    result = run_cli("inspect", str(make(tmp_path)), "--emit", "c")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_emit_options_that_do_not_fit_are_one_line(run_cli) -> None:
    for args, expected in (
        (["--signature", "serving_default"], "go with --emit"),
        (["--emit", "c", "--json"], "cannot go with --json"),
    ):
        result = run_cli("inspect", str(HALF_PLUS_TWO), *args)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
    result = run_cli("inspect", str(ADDITION), "--emit", "c", "--signature", "serving_default")
    assert result.returncode == 2 and "is a GraphDef: it has no signatures" in result.stderr
