"""The built-in fixtures are meaningful: a uniform or input-independent output proves nothing."""

from __future__ import annotations

import numpy as np

from tfinterop import tensors


def reference(manifest, key: str) -> np.ndarray:
    case = next(c for c in manifest.cases if c.format == "saved_model")
    entry = next(e for e in case.outputs if e.key == key)
    return tensors.read_tensor(manifest.directory / entry.file, entry.dtype)


def test_mobilenet_is_not_degenerate(manifests) -> None:
    probabilities = reference(manifests["mobilenet_v3"], "probabilities")
    batch, classes = probabilities.shape
    assert batch >= 2 and classes == 1000
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # weights=None alone gives exactly 1/1000 everywhere; ours must be far from uniform.
    assert (probabilities.max(axis=1) > 10 / classes).all(), probabilities.max(axis=1)
    top1 = probabilities.argmax(axis=1)
    assert len(set(top1.tolist())) == batch, f"same argmax for different photos: {top1}"
    # The top-1 margin is far above float noise, so argmax agreement across consumers is real.
    ordered = np.sort(probabilities, axis=1)
    assert (ordered[:, -1] - ordered[:, -2] > 1e-4).all()


def test_mobilenet_inputs_are_the_committed_photos(manifests) -> None:
    case = manifests["mobilenet_v3"].cases[0]
    x = tensors.read_tensor(manifests["mobilenet_v3"].directory / case.inputs[0].file)
    assert x.shape == (3, 224, 224, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 255.0
    assert not np.array_equal(x[0], x[1])


def test_linear_reference_is_a_times_x_plus_b(manifests) -> None:
    manifest = manifests["linear"]
    case = manifest.cases[0]
    x = tensors.read_tensor(manifest.directory / case.inputs[0].file)
    y = tensors.read_tensor(manifest.directory / case.outputs[0].file)
    # Recover a and b from two points and check every other point follows the same line.
    a = (y[2] - y[0]) / (x[2] - x[0])
    b = y[0]
    assert np.allclose(y, a * x + b, rtol=1e-5, atol=1e-3 * abs(a))
    assert a != 0


def test_manifest_records_names_shapes_hashes_and_tolerances(manifests) -> None:
    manifest = manifests["linear"]
    frozen, saved = (
        next(c for c in manifest.cases if c.format == f) for f in ("frozen", "saved_model")
    )
    assert frozen.inputs[0].tensor == "x:0" and frozen.outputs[0].tensor == "Identity:0"
    assert saved.inputs[0].key == "x" and saved.inputs[0].tensor == "serving_default_x:0"
    assert saved.outputs[0].tensor.startswith("StatefulPartitionedCall")
    assert manifest.tf_version == "2.21.0" and manifest.seed == 7
    assert manifest.tolerance == {"atol": 0.0, "rtol": 0.0}
    assert all(len(h) == 64 for h in manifest.artifacts.values())
    assert "frozen/serving_default.pb" in manifest.artifacts


def test_runtime_tolerances_apply_to_cells_of_matching_runtimes_only() -> None:
    import pytest

    from tfinterop.errors import UserError
    from tfinterop.fixtures import Tolerance, fixture
    from tfinterop.tfenv import find_tensorflow

    old = Tolerance(atol=1e-6)
    tflite_old = Tolerance(rtol=1e-3)

    @fixture(
        "ranged",
        seed=0,
        tolerance=Tolerance(),
        tolerances={"tflite:*": Tolerance(rtol=1e-5)},
        runtime_tolerances={"<2.16": {"frozen:y": tflite_old}, ">=2.16,<2.20": old},
    )
    def ranged(ctx):  # never built here
        raise AssertionError

    assert ranged.tolerance_for("y", "frozen", "2.12.0") == tflite_old  # most specific key
    assert ranged.tolerance_for("z", "frozen", "2.12.0") == Tolerance()  # no key: usual lookup
    assert ranged.tolerance_for("y", "saved_model", "2.18.1") == old
    assert ranged.tolerance_for("y", "saved_model", "2.20.0") == Tolerance()
    assert ranged.tolerance_for("y", "tflite", "2.21.0") == Tolerance(rtol=1e-5)
    # No runtime: the pinned wheel's version decides (2.21 is outside both ranges).
    assert find_tensorflow().version.startswith("2.21")
    assert ranged.tolerance_for("y", "saved_model") == Tolerance()
    with pytest.raises(UserError, match="not a version specifier"):
        fixture("bad", seed=0, tolerance=Tolerance(), runtime_tolerances={"old": old})


def test_expectations_can_be_limited_to_a_runtime_range() -> None:
    import pytest

    from tfinterop.errors import UserError
    from tfinterop.fixtures import xfail

    declared = xfail("DecodeWebP is new in 2.20", consumer="c", runtime="<2.20")
    assert declared.matches("c", "frozen", "serving_default", "2.12.0")
    assert not declared.matches("c", "frozen", "serving_default", "2.20.0")
    assert not declared.matches("c", "frozen", "serving_default")  # the pinned 2.21
    assert not declared.matches("rust", "frozen", "serving_default", "2.12.0")
    with pytest.raises(UserError, match="not a version specifier"):
        xfail("x", runtime="2.12 and older")
