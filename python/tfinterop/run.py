"""Run stage: one consumer process per plan, with a timeout, turning every outcome into records.

A crash, hang or garbage output of a consumer is a result like any other: the jobs it did
not report become error rows naming the command, the exit status or signal, and the tail of
its stderr; the run goes on.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import plan as plan_format
from .consumers import Consumer

STDERR_TAIL_LINES = 12


@dataclass
class ProcessFailure:
    command: list[str]
    returncode: int | None
    timed_out: bool
    stderr_tail: str
    timeout_s: float

    def describe(self) -> str:
        command = shlex.join(self.command)
        if self.timed_out:
            what = f"timed out after {self.timeout_s:g}s and was killed"
        elif self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            what = f"was killed by {name}"
        else:
            what = f"exited with status {self.returncode}"
        tail = f"; stderr tail: {self.stderr_tail}" if self.stderr_tail else "; stderr was empty"
        return f"`{command}` {what}{tail}"


@dataclass
class ConsumerRun:
    consumer: str
    command: list[str]
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    done: dict[str, Any] = field(default_factory=dict)
    failure: ProcessFailure | None = None
    protocol_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    returncode: int | None = None
    """None until the process ended (or when it never started, or was killed at the timeout)."""


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-STDERR_TAIL_LINES:])


def consumer_environment(overrides: dict[str, str]) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(overrides)
    return environment


def run_consumer(
    consumer: Consumer,
    plan: plan_format.Plan,
    work_dir: Path,
    build_dir: Path,
    *,
    timeout_s: float,
    environment: dict[str, str],
    wrapper: Sequence[str] = (),
) -> ConsumerRun:
    """Run ``consumer`` over ``plan``; ``wrapper`` prefixes the command (e.g. a profiler)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    plan_path = work_dir / "plan.tsv"
    results_path = work_dir / "results.jsonl"
    stderr_path = work_dir / "stderr.txt"
    plan_format.write(plan, plan_path)
    results_path.unlink(missing_ok=True)
    command = [
        *wrapper,
        *consumer.command(build_dir),
        "--plan",
        str(plan_path),
        "--results",
        str(results_path),
    ]
    run = ConsumerRun(consumer.name, command)
    started = time.perf_counter()
    with open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env=consumer_environment(environment),
                start_new_session=True,  # so a timeout can kill the consumer's whole group
            )
        except OSError as exc:
            run.failure = ProcessFailure(
                command, None, False, f"cannot start: {exc.strerror}", timeout_s
            )
            return run
        try:
            returncode: int | None = process.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
            timed_out = True
    run.wall_s = time.perf_counter() - started
    run.returncode = None if timed_out else returncode
    _read_results(run, results_path)
    if timed_out or returncode not in (0, 1):
        run.failure = ProcessFailure(command, returncode, timed_out, _tail(stderr_path), timeout_s)
    elif returncode == 1 and not any(job.get("status") == "error" for job in run.jobs.values()):
        run.protocol_errors.append("exited 1 without reporting a failed job")
    return run


def _read_results(run: ConsumerRun, path: Path) -> None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            kind = record["record"]
        except (json.JSONDecodeError, KeyError, TypeError):
            run.protocol_errors.append(
                f"results line {number} is not a contract record: {line[:120]!r}"
            )
            continue
        if kind == "consumer":
            run.info = record
        elif kind == "done":
            run.done = record
        elif kind == "job" and isinstance(record.get("id"), str):
            run.jobs[record["id"]] = record
        else:
            run.protocol_errors.append(f"results line {number}: unknown record {kind!r}")
