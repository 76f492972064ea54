"""End to end: `tfinterop interop` on the built-in fixtures through Python, Rust, C and TFLite."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_interop_passes_every_cell_and_writes_json(manifests, build_dir, tmp_path, run_cli) -> None:
    report = tmp_path / "report.json"
    result = run_cli("interop", "--build-dir", str(build_dir), "--json", str(report), "--no-build")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    cells = {(r["fixture"], r["format"], r["consumer"]): r for r in data["rows"]}
    expected = {
        (f, fmt, c)
        for f in ("linear", "mobilenet_v3")
        for fmt in ("frozen", "saved_model")
        for c in ("python", "rust", "c")
    }
    assert expected <= set(cells), sorted(expected - set(cells))
    for key in expected:
        row = cells[key]
        assert row["status"] == "pass", (key, row["message"])
        assert row["max_abs"] is not None and row["load_s"] is not None and row["steady_s"]
    # linear is exact everywhere; the C frozen graph matches Python's v1 Session bit for bit.
    assert all(
        cells[("linear", fmt, c)]["max_abs"] == 0
        for fmt in ("frozen", "saved_model")
        for c in ("python", "rust", "c")
    )
    env = data["environment"]
    assert env["consumer_environment"]["TF_ENABLE_ONEDNN_OPTS"] == "0"
    assert env["tensorflow"]["version"] == "2.21.0"
    assert {"python", "rust", "c"} <= set(env["consumers"])
    assert env["consumers"]["c"]["tf_version"] == "2.21.0"
    assert data["summary"]["ok"] is True
    assert "fixture" in result.stdout and "PASS" in result.stdout
    check_catalogue(data["rows"])


# Every expected failure of the default set, with a word of the real error it must show
# (crate 0.21's consumer is opt-in: tests/consumers/test_crates.py and the compat test run it).
DECLARED_XFAILS = {
    ("keras3_save_trap", "saved_model", "serving_default", "c"): "Could not find variable",
    **{
        key: word
        for rust in ("rust",)
        for key, word in {
            ("binary_strings", "frozen", "binary", rust): "not valid UTF-8",
            ("binary_strings", "saved_model", "binary", rust): "not valid UTF-8",
            ("keras3_save_trap", "saved_model", "serving_default", rust): "Could not find variable",
            ("new_op", "frozen", "decode_webp", rust): "not valid UTF-8",
            ("new_op", "saved_model", "decode_webp", rust): "not valid UTF-8",
            **{
                ("tf1_tags", "saved_model", signature, rust): "not valid UTF-8"
                for signature in ("regress", "classify", "regress@serve,gpu", "classify@serve,gpu")
            },
        }.items()
    },
}


def check_catalogue(rows: list[dict]) -> None:
    """Every fixture x format x signature x consumer that loads the format is a cell, passing
    or exactly the declared expected failures; the other pairs are no cells (not skips)."""
    from tfinterop.consumers import by_name

    by_cell = {(r["fixture"], r["format"], r["signature"], r["consumer"]): r for r in rows}
    assert len(by_cell) == len(rows), "duplicate cells"
    fixtures = {r["fixture"] for r in rows}
    assert fixtures >= {
        "linear", "mobilenet_v3", "pow_module", "serving_pipeline", "dtypes", "binary_strings",
        "control_flow", "lookup_asset", "tf1_tags", "image_layout", "keras3_save_trap",
    }  # fmt: skip
    consumers = {c.name: c for c in by_name(None)}  # the default set, opt-in ones not run
    cases = {(f, fmt, sig) for f, fmt, sig, _ in by_cell}
    applicable = {
        (*case, name) for case in cases for name, c in consumers.items() if c.supports(case[1])
    }
    assert set(by_cell) == applicable, (applicable - set(by_cell), set(by_cell) - applicable)
    for key, row in by_cell.items():
        if key in DECLARED_XFAILS:
            assert row["status"] == "xfail", (key, row["message"])
            assert DECLARED_XFAILS[key] in row["message"], (key, row["message"])
        else:
            assert row["status"] == "pass", (key, row["message"])
    # The formats each fixture is about are there.
    assert ("control_flow", "frozen", "branch_a", "c") in by_cell
    assert ("lookup_asset", "frozen", "serving_default", "rust") in by_cell
    assert ("tf1_tags", "saved_model", "predict@serve,gpu", "c") in by_cell
    assert {sig for f, fmt, sig, _ in by_cell if f == "image_layout" and fmt == "tflite"} == {
        "rgb", "rgba", "grey", "palette",
    }  # fmt: skip


def test_unknown_fixture_is_one_line_and_exit_2(build_dir, run_cli) -> None:
    result = run_cli("interop", "--build-dir", str(build_dir), "--fixture", "nope", "--no-build")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "tfinterop: error: unknown fixture(s) nope; available: "
    )
    assert "linear" in lines[0] and "mobilenet_v3" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_fixtures_dir_is_one_line(build_dir, tmp_path, run_cli) -> None:
    result = run_cli(
        "export", "--build-dir", str(build_dir), "--fixtures-dir", str(tmp_path / "none")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        == f"tfinterop: error: fixtures directory {tmp_path / 'none'} does not exist"
    )
