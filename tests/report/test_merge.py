"""`tfinterop report --merge`: the shards of a sharded run merged into one report, equal to
the unsharded run's cells; shards that do not fit together refused with one line."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tfinterop import cli, report
from tfinterop.pipeline.cells import Cell

SELECTION = ["-f", "linear", "-f", "dtypes", "-c", "python", "-c", "c", "--repeat", "1"]


def cell_statuses(doc: dict) -> dict[tuple[str, str, str, str], str]:
    return {
        (r["fixture"], r["format"], r["signature"], r["consumer"]): r["status"] for r in doc["rows"]
    }


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory, build_dir, run_cli) -> dict[str, Path]:
    """Real results of one small selection: shard 1/2, shard 2/2 and the whole run."""
    directory = tmp_path_factory.mktemp("shards")
    runs = {"1": ["--shard", "1/2"], "2": ["--shard", "2/2"], "all": []}
    paths = {}
    for name, shard in runs.items():
        paths[name] = directory / f"interop-{name}.json"
        result = run_cli(
            "interop", "--build-dir", str(build_dir), "--no-build", *SELECTION, *shard,
            "--json", str(paths[name]),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return paths


@pytest.mark.e2e
def test_merged_shards_equal_the_unsharded_run(sharded_run, tmp_path, run_cli) -> None:
    shard_docs = [json.loads(sharded_run[k].read_text()) for k in ("1", "2")]
    assert [d["shard"] for d in shard_docs] == [
        {"index": 1, "count": 2},
        {"index": 2, "count": 2},
    ]
    assert all(d["rows"] for d in shard_docs), "each shard ran some cells"
    out = {ext: tmp_path / f"merged.{ext}" for ext in ("json", "html", "xml", "md")}
    result = run_cli(
        "report", "--merge", str(sharded_run["1"]), str(sharded_run["2"]),
        "--json", str(out["json"]), "--html", str(out["html"]),
        "--junit", str(out["xml"]), "--markdown", str(out["md"]),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    merged = json.loads(out["json"].read_text())
    whole = json.loads(sharded_run["all"].read_text())
    assert cell_statuses(merged) == cell_statuses(whole)
    assert merged["summary"] == whole["summary"]
    assert "shard" not in merged and set(merged["merged"]) == {
        str(sharded_run["1"]),
        str(sharded_run["2"]),
    }
    # Each consumer's record: its wall time over both shards, the larger peak RSS.
    for name, record in merged["environment"]["consumers"].items():
        parts = [d["environment"]["consumers"][name] for d in shard_docs]
        assert record["wall_s"] == pytest.approx(sum(p["wall_s"] for p in parts), abs=2e-3)
        assert record["max_rss_kb"] == max(p["max_rss_kb"] for p in parts)
        assert record["binding"] == parts[0]["binding"] and record["shards"] == 2
    suite = ET.parse(out["xml"]).getroot()
    assert int(suite.get("tests") or 0) == len(whole["rows"])
    assert f"{len(whole['rows'])} cells" in out["md"].read_text()
    assert out["html"].read_text().count("<details") >= len(whole["rows"])
    # The console table of the merged result lists every cell.
    assert f"{len(whole['rows'])} cells:" in result.stdout


# --- shards that do not fit together: synthetic documents, no TensorFlow ------------------

ENVIRONMENT = {
    "tfinterop": "0.1.0",
    "cpus": 2,
    "tensorflow": {"version": "2.21.0", "distribution": "tensorflow-cpu", "library_dir": "/a"},
    "toolchain": {"tensorflow_crate": "0.17.0", "tensorflow_crate (rust-0.21)": "0.21.0"},
    "consumer_environment": {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"},
    "threads": {"intra_op": 0, "inter_op": 0},
}


def shard_doc(fixture: str, index: int | None, count: int = 2, status: str = "pass") -> dict:
    cells = [
        Cell(fixture, "frozen", "serving_default", consumer, status, "", 0.0, 0.0, 0.01)
        for consumer in ("python", "c")
    ]
    environment = copy.deepcopy(ENVIRONMENT)
    environment["consumers"] = {
        "c": {"binding": "TensorFlow C API", "tf_version": "2.21.0", "max_rss_kb": 100 * (index or 1), "wall_s": 1.5}
    }  # fmt: skip
    extra = {"shard": {"index": index, "count": count}} if index else None
    return report.normalized(report.document(cells, environment, extra))


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def merge_cli(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["report", "--merge", *args])
    captured = capsys.readouterr()
    return code, captured.err.strip()


def test_shards_merge_with_runner_fields_kept_per_shard(tmp_path, capsys) -> None:
    first, second = shard_doc("a", 1), shard_doc("b", 2)
    second["environment"]["cpus"] = 4  # another runner: described, not refused
    out = tmp_path / "merged.json"
    code, err = merge_cli(
        capsys, str(write(tmp_path, "1.json", first)), str(write(tmp_path, "2.json", second)),
        "--json", str(out),
    )  # fmt: skip
    assert code == 0, err
    merged = json.loads(out.read_text())
    assert merged["environment"]["cpus"] == [2, 4]
    assert merged["environment"]["toolchain"] == ENVIRONMENT["toolchain"]
    assert merged["environment"]["consumers"]["c"] == {
        "binding": "TensorFlow C API",
        "tf_version": "2.21.0",
        "max_rss_kb": 200,
        "wall_s": 3.0,
        "shards": 2,
    }
    assert merged["summary"]["pass"] == 4 and merged["summary"]["ok"] is True


def test_a_failing_cell_in_one_shard_fails_the_merge(tmp_path, capsys) -> None:
    out = tmp_path / "merged.json"
    code, _ = merge_cli(
        capsys,
        str(write(tmp_path, "1.json", shard_doc("a", 1))),
        str(write(tmp_path, "2.json", shard_doc("b", 2, status="fail"))),
        "--json", str(out),
    )  # fmt: skip
    merged = json.loads(out.read_text())
    assert code == 1
    assert (merged["summary"]["fail"], merged["summary"]["pass"], merged["summary"]["ok"]) == (
        2,
        2,
        False,
    )


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("tensorflow", "version"), "2.20.0", "environment.tensorflow.version"),
        (
            ("consumer_environment", "TF_ENABLE_ONEDNN_OPTS"),
            "1",
            "environment.consumer_environment.TF_ENABLE_ONEDNN_OPTS",
        ),
        (("toolchain", "tensorflow_crate (rust-0.21)"), "0.20.0", "tensorflow_crate (rust-0.21)"),
        (("consumers", "c", "binding"), "other", "environment.consumers.c.binding"),
    ],
)
def test_shards_run_with_other_settings_are_refused(tmp_path, capsys, path, value, named) -> None:
    second = shard_doc("b", 2)
    node = second["environment"]
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    a, b = write(tmp_path, "1.json", shard_doc("a", 1)), write(tmp_path, "2.json", second)
    code, err = merge_cli(capsys, str(a), str(b))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert named in err and str(a) in err and str(b) in err and value in err


def test_another_comparison_rule_or_tolerance_is_refused(tmp_path, capsys) -> None:
    second = shard_doc("b", 2)
    second["comparison_rule"] = "something else"
    a, b = write(tmp_path, "1.json", shard_doc("a", 1)), write(tmp_path, "2.json", second)
    code, err = merge_cli(capsys, str(a), str(b))
    assert code == 2 and "comparison_rule differs" in err, err
    # The same fixture compared under two tolerances (a matrix split by consumer).
    first, second = shard_doc("a", None), shard_doc("a", None)
    for doc, atol in ((first, 0.0), (second, 1e-3)):
        doc["rows"] = [r for r in doc["rows"] if r["consumer"] == ("c" if atol else "python")]
        doc["rows"][0]["outputs"] = [{"key": "y", "tolerance": {"atol": atol, "rtol": 0.0}}]
    a, b = write(tmp_path, "p.json", first), write(tmp_path, "c.json", second)
    code, err = merge_cli(capsys, str(a), str(b))
    assert code == 2 and "tolerance of a / frozen / serving_default output y differs" in err, err
    assert "atol=0.001" in err


def test_a_cell_in_two_results_must_be_identical(tmp_path, capsys) -> None:
    first, second = shard_doc("a", None), shard_doc("a", None)
    a, b = write(tmp_path, "x.json", first), write(tmp_path, "y.json", second)
    out = tmp_path / "merged.json"
    assert merge_cli(capsys, str(a), str(b), "--json", str(out))[0] == 0
    assert len(json.loads(out.read_text())["rows"]) == 2  # each identical cell once
    second["rows"][1]["status"] = "fail"
    write(tmp_path, "y.json", second)
    code, err = merge_cli(capsys, str(a), str(b))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "cell a / c / frozen / serving_default is in" in err and "status: pass vs fail" in err
    assert str(a) in err and str(b) in err


def test_missing_or_repeated_shards_are_refused(tmp_path, capsys) -> None:
    one = write(tmp_path, "1.json", shard_doc("a", 1, count=3))
    three = write(tmp_path, "3.json", shard_doc("c", 3, count=3))
    code, err = merge_cli(capsys, str(one), str(three))
    assert code == 2 and "shard 2/3 missing" in err, err
    again = write(tmp_path, "1-again.json", shard_doc("a", 1, count=3))
    code, err = merge_cli(capsys, str(one), str(again), str(three))
    assert code == 2 and "shard 1/3 is given twice" in err, err
    other = write(tmp_path, "2of2.json", shard_doc("b", 2, count=2))
    code, err = merge_cli(capsys, str(one), str(other))
    assert code == 2 and "shards of different matrices" in err, err
    code, err = merge_cli(capsys, str(one), str(one))
    assert code == 2 and "given twice" in err, err


def test_not_a_result_or_another_version_is_one_line(tmp_path, capsys) -> None:
    good = write(tmp_path, "1.json", shard_doc("a", None))
    cases = {
        "text.json": "not json",
        "list.json": "[1, 2]",
        "old.json": json.dumps({**shard_doc("b", None), "report_version": 0}),
        "row.json": json.dumps({**shard_doc("b", None), "rows": [{"fixture": "b"}]}),
    }
    for name, text in cases.items():
        bad = tmp_path / name
        bad.write_text(text)
        code, err = merge_cli(capsys, str(good), str(bad))
        assert code == 2 and len(err.splitlines()) == 1 and str(bad) in err, (name, err)
    code, err = merge_cli(capsys, str(good), str(tmp_path / "absent.json"))
    assert code == 2 and "no such file" in err
    assert "report_version 0" in merge_cli(capsys, str(good), str(tmp_path / "old.json"))[1]


def test_a_result_and_merge_together_are_refused(tmp_path, capsys) -> None:
    good = str(write(tmp_path, "1.json", shard_doc("a", None)))
    assert cli.main(["report", good, "--merge", good]) == 2
    assert "not both" in capsys.readouterr().err


def test_the_workflow_merges_every_shard_of_the_interop_matrix(project_root) -> None:
    """The `merge` job takes the artifacts the interop shards upload and merges their JSON."""
    import fnmatch
    import shlex

    yaml = pytest.importorskip("ruamel.yaml")
    jobs = yaml.YAML(typ="safe").load(
        (project_root / ".github" / "workflows" / "interop.yml").read_text()
    )["jobs"]
    merge_job, shards = jobs["merge"], jobs["interop"]
    assert merge_job["needs"] == "interop" and "cancelled()" in merge_job["if"]
    (download,) = [s for s in merge_job["steps"] if "download-artifact" in str(s.get("uses"))]
    (upload,) = [s for s in shards["steps"] if "upload-artifact" in str(s.get("uses"))]
    for index in shards["strategy"]["matrix"]["shard"]:
        name = upload["with"]["name"].replace("${{ matrix.shard }}", str(index))
        assert fnmatch.fnmatch(name, download["with"]["pattern"])
    (command,) = [
        " ".join(str(s["run"]).split())
        for s in merge_job["steps"]
        if "--merge" in str(s.get("run"))
    ]
    words = shlex.split(command)
    args = cli.make_parser().parse_args(words[words.index("report") :])
    (pattern,) = args.merge  # a glob the shell expands to every shard's JSON
    (interop,) = [
        " ".join(str(s["run"]).split())
        for s in shards["steps"]
        if "nox -s interop" in str(s.get("run"))
    ]
    for index in shards["strategy"]["matrix"]["shard"]:
        words = shlex.split(interop.replace("${{ matrix.shard }}", str(index)))
        produced = Path(words[words.index("--json") + 1]).name
        assert fnmatch.fnmatch(produced, Path(str(pattern)).name), (produced, pattern)
        assert Path(str(pattern)).parent == Path(download["with"]["path"])
    assert args.html and args.junit and args.markdown
    summary = [s for s in merge_job["steps"] if "GITHUB_STEP_SUMMARY" in str(s.get("run"))]
    assert summary and str(args.markdown) in str(summary[0]["run"])
