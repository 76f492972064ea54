"""The consumer sandbox and resource limits (sandbox.py), through the real command line:
hostile models built here with TensorFlow's raw ops, checked with `tfinterop check --json`
in every consumer that loads a frozen graph (Python, Rust, C), with and without the sandbox
(without it the write and the read succeed and the listener sees the connection: the tests
can fail). The real-world models check the same with the sandbox on.

Needs the built consumers and bubblewrap (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfinterop import sandbox
from tfinterop.sandbox import Limits, SandboxPolicy, confine

e2e = pytest.mark.e2e
needs_sandbox = pytest.mark.skipif(
    sandbox.unavailable() is not None, reason=f"no sandbox here: {sandbox.unavailable()}"
)
CONSUMERS = ("python", "rust", "c")
REALWORLD = Path(__file__).resolve().parent / "data" / "realworld"


# --- hostile models: frozen GraphDefs of raw ops, input x (float scalar), output y ---------


def _freeze(path: Path, build) -> Path:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [], name="x")
        build(tf, x)
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def writer_model(path: Path, targets: list[Path]) -> Path:
    """Writes "pwned" to each target (WriteFile creates missing directories), returns x."""

    def build(tf, x):
        writes = [tf.raw_ops.WriteFile(filename=str(t), contents="pwned") for t in targets]
        with tf.control_dependencies(writes):
            tf.identity(x, name="y")

    return _freeze(path, build)


def reader_model(path: Path, secret: Path) -> Path:
    """Returns the bytes of ``secret`` as its output."""

    def build(tf, x):
        with tf.control_dependencies([x]):
            tf.identity(tf.raw_ops.ReadFile(filename=str(secret)), name="y")

    return _freeze(path, build)


def connect_model(path: Path, port: int) -> Path:
    """DebugIdentity publishes x to a gRPC debug server: a TCP connection to ``port``."""

    def build(tf, x):
        url = f"grpc://127.0.0.1:{port}"
        tf.identity(
            tf.raw_ops.DebugIdentity(input=x, tensor_name="x:0", debug_urls=[url]), name="y"
        )

    return _freeze(path, build)


def allocating_model(path: Path, gib: int) -> Path:
    """Fills ``gib`` GiB of float32 with x and sums it (the fill depends on the input, so
    nothing folds it away at load)."""

    def build(tf, x):
        filled = tf.raw_ops.Fill(dims=tf.constant([gib * 256, 1024, 1024]), value=x)
        tf.identity(tf.reduce_sum(filled), name="y")

    return _freeze(path, build)


def looping_model(path: Path) -> Path:
    """A while loop whose condition is always true."""

    def build(tf, x):
        loop = tf.while_loop(lambda v: tf.constant(True), lambda v: v + 1.0, [x])
        tf.identity(loop[0], name="y")

    return _freeze(path, build)


# --- running them -----------------------------------------------------------------------


@pytest.fixture
def outside(build_dir) -> Iterator[Path]:
    """A directory outside the run directory and outside /tmp, owned by the test. The sandbox
    replaces /tmp with a private tmpfs, so a build dir under /tmp (a checkout cloned there, as
    CI's can be) would take writes there silently and discard them: use /var/tmp then."""
    root = build_dir.resolve() / "test-sandbox"
    if root.is_relative_to("/tmp"):  # the path sandbox.py mounts its tmpfs on
        root = Path("/var/tmp/tfinterop-test-sandbox")
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=root))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def check(build_dir: Path, work: Path, model: Path, *options: str, timeout: float = 600):
    """`tfinterop check MODEL --json` in every frozen-graph consumer; (process, report)."""
    report = work / "report.json"
    done = subprocess.run(
        [
            sys.executable, "-m", "tfinterop", "check", str(model), "--no-build",
            "--build-dir", str(build_dir), "--work-dir", str(work / "work"),
            "--input", "x", "--output", "y", "--json", str(report),
            *(arg for name in CONSUMERS for arg in ("-c", name)), *options,
        ],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert report.exists(), done.stdout + done.stderr
    return done, json.loads(report.read_text())


def rows(report: dict) -> dict[str, dict]:
    return {r["consumer"]: r for r in report["rows"] if r["fixture"].endswith("model.pb")}


def assert_every_row_is_an_error(
    done: subprocess.CompletedProcess[str], report: dict, *texts: str
) -> None:
    """check failed, and every consumer's row is an error whose message says each of texts."""
    assert done.returncode == 1, done.stdout + done.stderr
    cells = rows(report)
    for consumer in CONSUMERS:
        assert cells[consumer]["status"] == "error", cells[consumer]
        for text in texts:
            assert text in cells[consumer]["message"], cells[consumer]


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def everything_written(work: Path, done: subprocess.CompletedProcess[str]) -> bytes:
    """Every byte check left: its output, its report and every file of its work dir."""
    files = b"".join(p.read_bytes() for p in work.rglob("*") if p.is_file())
    return files + done.stdout.encode() + done.stderr.encode()


class Listener:
    """A TCP listener on 127.0.0.1 that records the connections it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections: list[tuple[str, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, address = self.server.accept()
            except TimeoutError:
                continue
            self.connections.append(address)
            connection.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.server.close()


@e2e
@needs_sandbox
def test_a_write_outside_the_run_directory_is_refused(build_dir, tmp_path, outside) -> None:
    target = outside / "written" / "pwned.txt"
    in_tmp = tmp_path / "also-outside" / "pwned.txt"  # /tmp: the sandbox's private one
    model = writer_model(tmp_path / "model.pb", [target, in_tmp])
    before = snapshot(outside)

    done, report = check(build_dir, tmp_path / "sandboxed", model)
    assert_every_row_is_an_error(done, report, "Read-only file system")
    assert snapshot(outside) == before and not in_tmp.exists()
    assert all(report["environment"]["consumers"][c]["sandboxed"] for c in CONSUMERS)

    done, report = check(build_dir, tmp_path / "plain", model, "--no-sandbox")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r["status"] for r in rows(report).values()} == {"pass"}
    assert target.read_text() == "pwned" and in_tmp.read_text() == "pwned"
    assert not any(report["environment"]["consumers"][c]["sandboxed"] for c in CONSUMERS)


@e2e
@needs_sandbox
def test_a_planted_secret_cannot_be_read(build_dir, tmp_path, outside) -> None:
    token = f"AKIA-fake-{secrets.token_hex(16)}"
    secret = outside / "credentials"
    secret.write_text(f"[default]\naws_secret_access_key = {token}\n")
    model = reader_model(tmp_path / "model.pb", secret)

    done, report = check(build_dir, tmp_path / "sandboxed", model)
    assert_every_row_is_an_error(done, report, "No such file or directory")
    assert token.encode() not in everything_written(tmp_path / "sandboxed", done)

    done, report = check(build_dir, tmp_path / "plain", model, "--no-sandbox")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {r["status"] for r in rows(report).values()} == {"pass"}
    assert token.encode() in everything_written(tmp_path / "plain", done)  # it was read


@e2e
@needs_sandbox
def test_no_connection_leaves_the_sandbox(build_dir, tmp_path) -> None:
    """gRPC retries a refused connection for minutes: the cells time out either way; what
    differs is whether the listener on this machine was reached."""
    listener = Listener()
    try:
        model = connect_model(tmp_path / "model.pb", listener.port)
        done, report = check(build_dir, tmp_path / "sandboxed", model, "--timeout", "20")
        assert listener.connections == []
        assert_every_row_is_an_error(done, report, "timed out", "sandboxed, without network")

        done, report = check(
            build_dir, tmp_path / "plain", model, "--timeout", "20", "--no-sandbox"
        )
        assert listener.connections, done.stdout + done.stderr
        plain = rows(report)
        assert not any("without network" in plain[c]["message"] for c in CONSUMERS), plain
    finally:
        listener.close()


@e2e
@needs_sandbox
def test_an_allocation_beyond_the_memory_limit_is_an_error_naming_it(build_dir, tmp_path) -> None:
    model = allocating_model(tmp_path / "model.pb", gib=2)
    done, report = check(build_dir, tmp_path / "sandboxed", model, "--memory-limit", "1G")
    assert_every_row_is_an_error(done, report, "memory limit 1024 MiB")


@e2e
@needs_sandbox
def test_an_endless_loop_stops_at_the_cpu_limit(build_dir, tmp_path) -> None:
    model = looping_model(tmp_path / "model.pb")
    done, report = check(
        build_dir, tmp_path / "sandboxed", model, "--cpu-limit", "20", "--timeout", "300"
    )
    assert_every_row_is_an_error(done, report, "CPU time limit 20 s")


@e2e
@needs_sandbox
@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("tf-rust/addition.pb", ()),
        ("tf-rust/regression_savedmodel", ("--all-signatures",)),
        ("tf-serving/saved_model_half_plus_two_cpu/00000123", ("--all-signatures",
         "--example", "x=float:1", "--example", "x2=float:1")),
        ("tf-serving/saved_model_half_plus_two_tf2_cpu/00000123", ("--all-signatures",
         "--example", "x=float:1")),
    ],
)  # fmt: skip
def test_real_world_models_check_the_same_in_the_sandbox(build_dir, tmp_path, model, options):
    outcomes = {}
    for mode in ("sandboxed", "plain"):
        report = tmp_path / f"{mode}.json"
        done = subprocess.run(
            [
                sys.executable, "-m", "tfinterop", "check", str(REALWORLD / model),
                "--no-build", "--build-dir", str(build_dir), "--work-dir", str(tmp_path / mode),
                "--json", str(report), *options, *(["--no-sandbox"] if mode == "plain" else []),
            ],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        doc = json.loads(report.read_text())
        sandboxed = {c.get("sandboxed") for c in doc["environment"]["consumers"].values()}
        assert sandboxed == {mode == "sandboxed"}
        outcomes[mode] = (
            done.returncode,
            {(r["fixture"], r["signature"], r["consumer"]): r["status"] for r in doc["rows"]},
        )
    assert outcomes["sandboxed"] == outcomes["plain"]
    assert "pass" in outcomes["sandboxed"][1].values()


# --- the pieces, without TensorFlow ------------------------------------------------------


def test_a_disabled_policy_only_applies_the_limits(tmp_path) -> None:
    plain = confine(["prog", "--x"], SandboxPolicy(), environment={"A": "1"}, work_dir=tmp_path)
    assert plain.command == ["prog", "--x"] and not plain.sandboxed
    assert plain.environment == {"A": "1"}
    limited = confine(
        ["prog"], SandboxPolicy(False, Limits(1 << 30, 5, 1 << 20)), environment={},
        work_dir=tmp_path,
    )  # fmt: skip
    assert limited.command[-1] == "prog" and len(limited.command) > 1


@needs_sandbox
def test_the_sandbox_keeps_secrets_out_of_the_environment(tmp_path) -> None:
    confined = confine(
        ["/bin/true"],
        SandboxPolicy(True, Limits()),
        environment={"AWS_SECRET_ACCESS_KEY": "x", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": "/home/u"},
        work_dir=tmp_path / "run",
    )
    assert "AWS_SECRET_ACCESS_KEY" not in confined.environment
    assert confined.environment["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert confined.sandboxed and (tmp_path / "run").is_dir()


@needs_sandbox
def test_limits_hit_in_the_sandbox_are_named(tmp_path) -> None:
    """Processes beyond their CPU time (the hard limit's SIGKILL: the process is its PID
    namespace's init, which ignores SIGXCPU), a file beyond the output size (the write
    refused: File too large) and many small files beyond it in total (the watch)."""
    script = tmp_path / "hog.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default\n"
        "kind, out = sys.argv[1], sys.argv[2]\n"
        "if kind == 'cpu':\n    while True: pass\n"
        "if kind == 'file':\n    open(out, 'wb').write(b'x' * (8 << 20))\n"
        "for i in range(16):\n    open(f'{out}{i}', 'wb').write(b'x' * (512 << 10))\n"
        "time.sleep(60)\n"
    )
    for kind, limits, expected in (
        ("cpu", Limits(cpu_s=1), "CPU time limit 1 s"),
        ("file", Limits(output_bytes=1 << 20), "output size limit 1 MiB"),
        ("files", Limits(output_bytes=1 << 20), "output size limit 1 MiB"),
    ):
        run = tmp_path / kind
        confined = confine(
            [sys.executable, str(script), kind, str(run / "big")],
            SandboxPolicy(True, limits),
            environment=dict(os.environ),
            work_dir=run,
        )
        process = subprocess.Popen(
            confined.command, env=confined.environment, start_new_session=True,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        returncode, timed_out = confined.wait(process, 50)
        stderr = process.stderr.read().decode() if process.stderr else ""
        assert not timed_out, kind
        assert expected in (confined.explain(returncode, stderr) or ""), (kind, returncode, stderr)


def test_check_refuses_without_a_sandbox_and_names_the_way_out(run_cli, tmp_path) -> None:
    """No bwrap on PATH: one line saying why, naming --no-sandbox, exit 2, nothing run."""
    done = run_cli(
        "check", str(REALWORLD / "tf-rust" / "addition.pb"), "--no-build",
        "--work-dir", str(tmp_path / "work"),
        env={"PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "bwrap" in lines[0] and "--no-sandbox" in lines[0], lines
    assert "Traceback" not in done.stderr and not (tmp_path / "work").exists()
