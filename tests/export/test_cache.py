"""Exports are deterministic and atomic (issue 7, item 5).

Exporting the same fixture twice gives byte-identical frozen graphs, inputs and references;
a SavedModel is semantically identical (TensorFlow writes a random ``uuid`` into
``fingerprint.pb`` and numbers its functions per process, see docs/bad-inputs.md). An export
killed at any moment leaves nothing a later run trusts, and concurrent exports into one
cache both succeed and leave one valid entry. Uses the cheapest fixture (``linear``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = "linear"
UNIQUE_FUNCTION_SUFFIX = re.compile(rb"(__inference_\w+?|__forward_\w+?|__backward_\w+?)_\d+\b")


def export_cli(build: Path, *more: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "tfinterop", "export", "--fixtures-dir", str(ROOT / "fixtures"),
        "-f", FIXTURE, "--build-dir", str(build), *more,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "CI": "1"},
    )


def finished(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    return out


def files(entry: Path) -> dict[str, bytes]:
    return {str(p.relative_to(entry)): p.read_bytes() for p in entry.rglob("*") if p.is_file()}


def assert_valid_entry(exports: Path) -> dict:
    """One complete cache entry: manifest readable, every artifact there with its hash."""
    import hashlib

    entry = exports / FIXTURE
    manifest = json.loads((entry / "manifest.json").read_text())
    for name, digest in manifest["artifacts"].items():
        assert hashlib.sha256((entry / name).read_bytes()).hexdigest() == digest, name
    leftovers = [p.name for p in exports.iterdir() if p.name.startswith((".tmp-", ".old-"))]
    assert not leftovers, leftovers
    return manifest


@pytest.fixture(scope="module")
def two_exports(tmp_path_factory) -> tuple[Path, Path]:
    """The fixture exported by two separate `tfinterop export --force` runs."""
    roots = [tmp_path_factory.mktemp(f"export{i}") for i in (1, 2)]
    for root in roots:
        finished(export_cli(root, "--force"))
    return roots[0] / "exports" / FIXTURE, roots[1] / "exports" / FIXTURE


def test_frozen_graphs_inputs_and_references_are_byte_identical(two_exports) -> None:
    first, second = (files(entry) for entry in two_exports)
    assert first.keys() == second.keys()
    exact = [n for n in first if not n.startswith("saved_model/") and n != "manifest.json"]
    assert {"frozen/serving_default.pb", "tflite/serving_default.tflite"} <= set(exact)
    assert any(n.startswith("reference/") for n in exact)
    assert any(n.startswith("inputs/") for n in exact)
    for name in exact:
        assert first[name] == second[name], f"{name} differs between two exports"
    for name in (n for n in exact if n.endswith(".npy")):  # and as arrays: NaN-aware, dtype
        a, b = (np.load(e / name, allow_pickle=False) for e in two_exports)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_manifests_differ_only_in_timing_and_fingerprint(two_exports) -> None:
    first, second = (json.loads((e / "manifest.json").read_text()) for e in two_exports)
    for manifest in (first, second):
        manifest.pop("export_seconds")
        manifest["artifacts"].pop("saved_model/fingerprint.pb")
    assert first == second


def saved_model_semantics(directory: Path) -> dict:
    """What a SavedModel means, without what TensorFlow makes differ between writes: the
    fingerprint's random uuid and the per-process numbering of function names."""
    import tensorflow as tf
    from tensorflow.core.protobuf import fingerprint_pb2, saved_model_pb2

    fingerprint = fingerprint_pb2.FingerprintDef()
    fingerprint.ParseFromString((directory / "fingerprint.pb").read_bytes())
    fingerprint.ClearField("uuid")
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((directory / "saved_model.pb").read_bytes())
    (meta,) = proto.meta_graphs
    # Function names carry a process-wide counter (__inference_serve_16); compare the
    # library as a set of renamed, serialized functions and the rest renamed too.
    functions = sorted(
        UNIQUE_FUNCTION_SUFFIX.sub(rb"\1_N", f.SerializeToString(deterministic=True))
        for f in meta.graph_def.library.function
    )
    meta.graph_def.library.ClearField("function")
    checkpoint = tf.train.load_checkpoint(str(directory / "variables" / "variables"))
    return {
        "fingerprint": fingerprint.SerializeToString(deterministic=True),
        "signatures": {
            k: v.SerializeToString(deterministic=True) for k, v in meta.signature_def.items()
        },
        "functions": functions,
        "meta_graph": UNIQUE_FUNCTION_SUFFIX.sub(
            rb"\1_N", meta.SerializeToString(deterministic=True)
        ),
        "variables": {
            name: checkpoint.get_tensor(name).tobytes()
            for name in checkpoint.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH"
        },
    }


def test_saved_models_are_semantically_identical(two_exports) -> None:
    first, second = (e / "saved_model" for e in two_exports)
    # The fingerprint's random uuid differs between two exports; the rest means the same.
    assert (first / "fingerprint.pb").read_bytes() != (second / "fingerprint.pb").read_bytes()
    assert saved_model_semantics(first) == saved_model_semantics(second)
    assert saved_model_semantics(first)["variables"], "no variable values compared"


def test_killed_export_leaves_nothing_a_later_run_trusts(tmp_path) -> None:
    exports = tmp_path / "exports"
    process = export_cli(tmp_path)
    deadline = time.monotonic() + 300
    while not list(exports.glob(f".tmp-{FIXTURE}-*/*")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # mid-way: the staging dir exists and is filling
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert list(exports.glob(f".tmp-{FIXTURE}-*")), "killed after the staging dir appeared"
    assert not (exports / FIXTURE).exists()
    out = finished(export_cli(tmp_path))
    assert f"{FIXTURE}: exported in" in out, out  # re-exported, not "cached"
    assert_valid_entry(exports)  # and the abandoned staging dir was swept


def test_concurrent_exports_share_one_valid_entry(tmp_path) -> None:
    runs = [export_cli(tmp_path) for _ in range(2)]
    outputs = [finished(run) for run in runs]
    states = sorted("cached" if f"{FIXTURE}: cached" in out else "exported" for out in outputs)
    assert states == ["cached", "exported"], outputs  # the lock: the second found it fresh
    assert [p.name for p in (tmp_path / "exports").iterdir() if not p.name.startswith(".")] == [
        FIXTURE
    ]
    assert_valid_entry(tmp_path / "exports")


def test_entry_with_a_missing_artifact_is_re_exported(project_fixtures, tmp_path) -> None:
    from tfinterop.export import export_fixtures

    fixture = [project_fixtures[FIXTURE]]
    (first,) = export_fixtures(fixture, tmp_path)
    assert first.manifest is not None and not first.cached
    (cached,) = export_fixtures(fixture, tmp_path)
    assert cached.cached
    (tmp_path / FIXTURE / "frozen" / "serving_default.pb").unlink()  # removed by hand
    (again,) = export_fixtures(fixture, tmp_path)
    assert not again.cached and again.manifest is not None
    assert_valid_entry(tmp_path)
