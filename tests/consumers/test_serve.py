"""The Python consumer's job loop (consumers/runners/serve.py), without TensorFlow:
a model that fails only on a later run fails its job at ``run``, naming the run, and the
jobs after it still run (it used to end the process with a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tfinterop.consumers.runners.serve import JobError, Runner, run_job, serve
from tfinterop.contract import plan as plan_format


def failing_on(call: int):
    """A model whose ``call``-th execution raises, as a stateful model exhausting something."""
    calls = []

    def model() -> dict[str, np.ndarray]:
        calls.append(1)
        if len(calls) == call:
            raise RuntimeError("Graph execution error:\nOutOfRange: counter exhausted\n")
        return {"y": np.zeros(2, np.float32)}

    return Runner(model, lambda outputs: outputs)


def job(tmp_path: Path, name: str, warmup: int, repeat: int) -> plan_format.Job:
    out = plan_format.PlanTensor("y", "y:0", str(tmp_path / f"{name}.npy"))
    return plan_format.Job(name, "model", "frozen", outputs=[out], warmup=warmup, repeat=repeat)


@pytest.mark.parametrize(
    ("call", "expected"),
    [(2, "warm-up run 1 failed: OutOfRange: counter exhausted"),
     (4, "timed run 2 failed: OutOfRange: counter exhausted")],
)  # fmt: skip
def test_a_later_run_failing_fails_the_job_naming_the_run(
    tmp_path: Path, call: int, expected: str
) -> None:
    runner = failing_on(call)
    with pytest.raises(JobError) as raised:
        run_job(job(tmp_path, "j", warmup=1, repeat=3), lambda _: runner)
    assert (raised.value.stage, str(raised.value)) == ("run", expected)


def test_the_jobs_after_a_later_run_failure_still_run(tmp_path: Path) -> None:
    plan = plan_format.Plan([job(tmp_path, "bad", 2, 1), job(tmp_path, "good", 1, 2)])
    (tmp_path / "plan.tsv").write_text(plan_format.render(plan))
    runners = {"bad": failing_on(3), "good": failing_on(0)}
    status = serve(
        ["--plan", str(tmp_path / "plan.tsv"), "--results", str(tmp_path / "r.jsonl")],
        "test-consumer",
        lambda: {"record": "consumer", "name": "test", "contract": 1},
        lambda _plan: lambda j: runners[j.id],
    )
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    jobs = {r["id"]: r for r in records if r["record"] == "job"}
    assert status == 1
    assert jobs["bad"]["status"] == "error" and jobs["bad"]["stage"] == "run"
    assert jobs["bad"]["error"] == "warm-up run 2 failed: OutOfRange: counter exhausted"
    assert jobs["good"]["status"] == "ok" and len(jobs["good"]["steady_s"]) == 2
    assert records[-1] == {**records[-1], "record": "done", "jobs": 2, "failed": 1}
