"""A freshly scaffolded fixture (`tfinterop new-fixture`) runs through every consumer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfinterop.consumers import by_name

pytestmark = pytest.mark.e2e


def test_scaffolded_fixture_passes_in_every_consumer(
    build_dir: Path, tmp_path: Path, run_cli
) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    created = run_cli("new-fixture", "scaffold_probe", "--fixtures-dir", str(fixtures))
    assert created.returncode == 0, created.stderr
    assert (fixtures / "scaffold_probe.py").exists()
    assert "tfinterop interop --fixture scaffold_probe" in created.stdout

    # A private build dir (its own exports and runs) using the consumers already built.
    private = tmp_path / "build"
    private.mkdir()
    (private / "c_consumer").symlink_to(build_dir / "c_consumer")
    report = tmp_path / "report.json"
    result = run_cli(
        "interop", "--fixtures-dir", str(fixtures), "--build-dir", str(private),
        "--no-build", "--json", str(report), "--repeat", "1", "--warmup", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    for consumer in by_name(None):  # the default set interop runs
        mine = [r for r in rows if r["consumer"] == consumer.name]
        passed = {r["format"] for r in mine if r["status"] == "pass"}
        assert passed and passed == {
            f for f in ("frozen", "saved_model", "tflite") if consumer.supports(f)
        }, (consumer.name, mine)
        assert all(
            r["status"] == "pass"
            or r["message"].endswith(f"does not load the {r['format']} format")
            for r in mine
        ), mine
