"""Leak check (tfinterop.hardening.leaks): the C consumer runs frozen, SavedModel and string-tensor jobs,
each model loaded repeatedly, in one process under valgrind; nothing may be definitely or
indirectly lost. A tiny leaking program shows the check can fail. See docs/hardening.md.

Without valgrind, a C compiler or the built C consumer those tests skip, except under CI
(``CI`` set), which is meant to run them: there they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from tfinterop.hardening import leaks


def _unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool, except where CI is meant to run the test: fail there."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it (see .ci/run)")
    pytest.skip(reason)


@pytest.fixture
def valgrind() -> str:
    found = shutil.which("valgrind")
    if not found:
        _unavailable("valgrind not installed")
    return found


LOG = """\
==42== HEAP SUMMARY:
==42==     in use at exit: 14,767,351 bytes in 216,309 blocks
==42== LEAK SUMMARY:
==42==    definitely lost: 1,024 bytes in 2 blocks
==42==    indirectly lost: 0 bytes in 0 blocks
==42==      possibly lost: 8,864,979 bytes in 147,439 blocks
==42==    still reachable: 5,902,372 bytes in 68,870 blocks
==42==         suppressed: 16 bytes in 1 blocks
==42== ERROR SUMMARY: 3 errors from 3 contexts (suppressed: 0 from 0)
"""


def test_valgrind_summary_is_read() -> None:
    lost, errors = leaks.parse_valgrind_log(LOG)
    assert lost["definitely lost"] == (1024, 2)
    assert lost["indirectly lost"] == (0, 0)
    assert lost["possibly lost"] == (8864979, 147439)
    assert errors == 3
    clean, _ = leaks.parse_valgrind_log(
        "==1== All heap blocks were freed -- no leaks are possible\n"
        "==1== ERROR SUMMARY: 0 errors from 0 contexts\n"
    )
    assert clean["definitely lost"] == (0, 0)


def test_consumer_verdict_separates_valgrinds_leak_exit_from_a_crash(tmp_path: Path) -> None:
    from tfinterop.contract.records import JobRecord
    from tfinterop.pipeline.run import ConsumerRun
    from tfinterop.process import ProcessFailure

    log = tmp_path / "valgrind.log"
    log.write_text(LOG)
    ok = {job: JobRecord(job, "ok") for job in ("a", "b")}

    def run(returncode: int) -> ConsumerRun:
        failure = ProcessFailure(["valgrind", "consumer"], returncode, False, "tail", 60.0)
        return ConsumerRun("c", ["valgrind", "consumer"], jobs=dict(ok), failure=failure)

    leaked = leaks.consumer_leak_report(run(leaks.VALGRIND_LEAK_EXIT), 2, log)
    assert leaked.leaked and leaked.exit_status == leaks.VALGRIND_LEAK_EXIT
    assert leaked.problems == [
        f"leaks attributable to the consumer; stacks in {log}",
        f"valgrind reported 3 error(s); see {log}",
    ]
    crashed = leaks.consumer_leak_report(run(-11), 3, log)
    assert "`valgrind consumer` was killed by SIGSEGV; stderr tail: tail" in crashed.problems
    assert "the consumer reported 2 of 3 jobs (exit status -11)" in crashed.problems


@pytest.mark.parametrize("leak", [True, False])
def test_check_sees_a_leak(valgrind: str, tmp_path: Path, leak: bool) -> None:
    """The same valgrind invocation and verdict as the consumer's, on a program that loses one
    64-byte block (or frees it)."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        _unavailable(f"no C compiler ({cc})")
    source = tmp_path / "leaky.c"
    body = "p = NULL;" if leak else "free(p);"
    source.write_text(
        "#include <stdlib.h>\n#include <string.h>\n"
        f"int main(void) {{ char *volatile p = malloc(64); memset(p, 1, 64); {body} return 0; }}\n"
    )
    subprocess.run([cc, "-g", "-O0", str(source), "-o", str(tmp_path / "leaky")], check=True)
    report = leaks.run_under_valgrind(
        [str(tmp_path / "leaky")], tmp_path / "valgrind.log", suppressions=None, timeout_s=60
    )
    assert report.leaked is leak
    if leak:
        assert report.bytes_blocks("definitely lost") == (64, 1)
        assert report.problems
    else:
        assert not report.problems, report.problems


def test_c_consumer_does_not_leak(valgrind: str, tmp_path: Path) -> None:
    """Every frozen and SavedModel case of linear, binary_strings (utf8 and binary), dtypes and
    lookup_asset once, plus repeats, in one process (`nox -s leaks` runs 50 jobs)."""
    from tfinterop.consumers.c import c_binary
    from tfinterop.tfenv import find_tensorflow

    build = Path(__file__).resolve().parents[2] / "build"
    if not c_binary(build, find_tensorflow()).exists():
        _unavailable("C consumer not built (tfinterop build)")
    report = leaks.check(list(leaks.DEFAULT_FIXTURES), leaks.TEST_JOBS, tmp_path, timeout_s=600)
    assert report.jobs_ok == leaks.TEST_JOBS, report.job_problems
    assert not report.problems, f"{report.summary()}; {report.problems}"
    assert report.bytes_blocks("definitely lost") == (0, 0)
    assert report.bytes_blocks("indirectly lost") == (0, 0)
