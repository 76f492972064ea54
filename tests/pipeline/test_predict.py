"""The predict step: cases checked against each bound runtime's registry before anything
runs, and how a prediction turns the cell's outcome into a status."""

from __future__ import annotations

from pathlib import Path

from tfinterop.fixtures import Expectation
from tfinterop.pipeline.cells import FAILING, Cell, apply_expectation
from tfinterop.runtimes import Runtime, ensure_installed, pinned_runtime

OLD = "2.12.0"


def _cell(status: str, stage: str | None = None, message: str = "") -> Cell:
    cell = Cell("new_op", "frozen", "top_k", f"c@{OLD}", status, message)
    cell.stage = stage
    return cell


def test_a_prediction_is_held_to_the_outcome() -> None:
    predicted = Expectation("incompatible", "op X is not registered", stage="load")
    failed_at_load = apply_expectation(_cell("error", "load", "[load] Op type X"), predicted)
    assert failed_at_load.status == "incompatible" and failed_at_load.status not in FAILING
    assert failed_at_load.message.startswith("predicted: op X is not registered — observed:")
    loaded = apply_expectation(_cell("pass"), predicted)
    assert loaded.status == "xpass" and loaded.status in FAILING  # the predictor is wrong
    numbers_differ = apply_expectation(_cell("fail", message="1/4 differ"), predicted)
    assert numbers_differ.status == "xpass"
    other_stage = apply_expectation(_cell("error", "read_input", "bad npy"), predicted)
    assert other_stage.status == "error" and "failed otherwise" in other_stage.message
    at_run = Expectation("incompatible", "no CPU kernel", stage="run")
    assert apply_expectation(_cell("error", "run", "[run] no kernel"), at_run).status == (
        "incompatible"
    )
    assert apply_expectation(_cell("error", "load", "[load] ?"), at_run).status == "error"


def test_predict_step_marks_only_the_runtimes_that_cannot_load(
    export_manifests, project_fixtures, build_dir: Path
) -> None:
    from tfinterop.consumers import OnRuntime, by_name
    from tfinterop.pipeline.cases import cases_from_manifest, cell_expectation
    from tfinterop.pipeline.predict import predict_runtimes

    ensure_installed(Runtime(OLD, False))
    (c,) = by_name(["c"])
    old = OnRuntime.bind(c, Runtime(OLD, False))
    pinned = OnRuntime.bind(c, Runtime(pinned_runtime(), True))
    manifests = export_manifests(["new_op", "linear"])
    refs = [
        ref
        for name in ("new_op", "linear")
        for ref in cases_from_manifest(project_fixtures[name], manifests[name])
    ]
    assert predict_runtimes(refs, [old, pinned, c], build_dir) == {}
    marked = {ref.job_id: ref.predicted for ref in refs}
    assert set(marked["new_op/frozen/decode_webp"]) == {OLD}
    assert set(marked["new_op/frozen/top_k"]) == {OLD}
    assert set(marked["new_op/saved_model/top_k"]) == {OLD}  # DecodeWebP is in its graph too
    assert not marked["linear/frozen/serving_default"]
    decode = next(r for r in refs if r.job_id == "new_op/frozen/decode_webp")
    expectation = cell_expectation(old, decode)
    assert expectation is not None and expectation.kind == "incompatible"
    assert expectation.stage == "load" and "DecodeWebP" in expectation.reason
    assert cell_expectation(pinned, decode) is None and cell_expectation(c, decode) is None
