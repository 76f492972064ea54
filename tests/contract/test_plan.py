"""The plan format shared by all consumers."""

from __future__ import annotations

import pytest

from tfinterop.contract import plan


def sample() -> plan.Plan:
    return plan.Plan(
        jobs=[
            plan.Job(
                id="linear/saved_model/serving_default",
                model="/m/saved_model",
                format="saved_model",
                tags=["serve", "gpu"],
                signature="predict",
                inputs=[plan.PlanTensor("x", "serving_default_x:0", "/in/x.npy")],
                outputs=[plan.PlanTensor("y", "StatefulPartitionedCall:0", "/out/y.npy")],
                warmup=2,
                repeat=5,
            )
        ],
        intra_op_threads=1,
        inter_op_threads=2,
    )


def test_round_trip() -> None:
    text = plan.render(sample())
    assert text.startswith("tfinterop-plan\t1\nthreads\t1\t2\njob\t")
    assert plan.parse(text) == sample()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope\n", "must start with"),
        ("tfinterop-plan\t1\nbogus\tx\n", "unknown record 'bogus'"),
        ("tfinterop-plan\t1\nmodel\tm\n", "outside a job"),
        ("tfinterop-plan\t1\njob\ta\nmodel\tm\n", "missing 'end'"),
        ("tfinterop-plan\t1\njob\ta\nrepeat\t0\n", "integer >= 1"),
        ("tfinterop-plan\t1\njob\ta\nformat\tonnx\n", "frozen or saved_model"),
        (
            "tfinterop-plan\t1\njob\ta\nmodel\tm\nformat\tfrozen\noutput\ty\ty\tf\nend\njob\ta\n",
            "duplicate job id",
        ),
        ("tfinterop-plan\t1\njob\ta\ninput\tx\tx\n", "takes 3 non-empty"),
    ],
)
def test_invalid_plans_are_refused(text: str, message: str) -> None:
    with pytest.raises(plan.PlanError, match=message):
        plan.parse(text)


def test_fields_with_tabs_or_newlines_are_refused_when_writing() -> None:
    bad = sample()
    bad.jobs[0].model = "/a\tb"
    with pytest.raises(plan.PlanError, match="tab or newline"):
        plan.render(bad)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("model\tm\nformat\tfrozen\n", "needs model, format and an output"),
        ("model\tm\nmodel\tn\nformat\tfrozen\noutput\ty\ty\tf\n", "model given twice"),
        ("model\tm\nformat\tfrozen\nsignature\ts\noutput\ty\ty\tf\n", "not frozen"),
        ("model\tm\nformat\tfrozen\noutput\ty\ty\tf\noutput\ty\tz\tg\n", "output 'y' given twice"),
    ],
)
def test_invalid_jobs_fail_alone(body: str, problem: str) -> None:
    text = f"tfinterop-plan\t1\njob\tbad\n{body}end\njob\tgood\nmodel\tm\nformat\tfrozen\noutput\ty\ty\tf\nend\n"
    parsed = plan.parse(text)
    assert problem in (parsed.jobs[0].problem or "")
    assert parsed.jobs[1].problem is None
