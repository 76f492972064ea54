"""The runtime matrix (``tfinterop compat``): every fixture and real-world model on four
runtimes and both crates, the static prediction held to what really happens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfinterop.runtimes import pinned_runtime

REALWORLD = Path(__file__).resolve().parent / "data" / "realworld"
MODELS = [
    f"{REALWORLD}/tf-rust/addition.pb",
    f"{REALWORLD}/tf-rust/regression_savedmodel --all-signatures",
    f"{REALWORLD}/tf-serving/saved_model_half_plus_two_cpu/00000123 --all-signatures"
    " --example x=float:1 --example x2=float:1",
]


@pytest.mark.e2e
def test_prediction_agrees_with_reality_on_every_cell_of_the_default_matrix(
    run_cli, tmp_path: Path
) -> None:
    """Default runtimes (2.12.0, 2.15.1, 2.18.1 and the pinned one) x the native consumers
    (C, both Rust crates) x every fixture and three real-world models: a cell predicted not
    to load must fail at the predicted stage (``incompatible``); one that loads anyway would be
    an xpass, a load failure nobody predicted an error, and both fail the run."""
    report = tmp_path / "compat.json"
    arguments = [a for model in MODELS for a in ("--model", model)]
    done = run_cli("compat", *arguments, "--json", str(report), timeout=3000)
    assert report.exists(), done.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    bound = [r for r in rows if "@" in r["consumer"]]
    runtimes = {r["consumer"].partition("@")[2] for r in bound}
    assert runtimes == {"2.12.0", "2.15.1", "2.18.1", pinned_runtime()}, runtimes
    families = {r["consumer"].partition("@")[0] for r in bound}
    assert {"c", "rust", "rust-0.21"} <= families, families
    wrong = [r for r in bound if r["status"] == "xpass"]
    unpredicted = [r for r in bound if r["status"] == "error" and r.get("stage") == "load"]
    assert not wrong and not unpredicted, [
        (r["fixture"], r["format"], r["signature"], r["consumer"], r["message"][:300])
        for r in wrong + unpredicted
    ]
    assert done.returncode == 0, [
        (r["fixture"], r["signature"], r["consumer"], r["status"], r["message"][:300])
        for r in rows
        if r["status"] in ("fail", "error", "xpass")
    ]
    cell = {(r["fixture"], r["format"], r["signature"], r["consumer"]): r for r in rows}
    # DecodeWebP arrived in 2.20: predicted and caught on every older runtime, both crates.
    for runtime in ("2.12.0", "2.15.1", "2.18.1"):
        for family in ("c", "rust", "rust-0.21"):
            row = cell[("new_op", "frozen", "decode_webp", f"{family}@{runtime}")]
            assert row["status"] == "incompatible", row
            assert "Op type not registered 'DecodeWebP'" in row["message"]
    # TopKV2's index_type is unknown to 2.12 only; the frozen top_k loads from 2.15 on.
    assert cell[("new_op", "frozen", "top_k", "c@2.12.0")]["status"] == "incompatible"
    assert cell[("new_op", "frozen", "top_k", "c@2.15.1")]["status"] == "pass"
    # The real-world models run everywhere.
    assert all(
        r["status"] == "pass" for r in bound if r["fixture"].startswith(("addition", "regression"))
    )
