"""Typed records of the results file (docs/consumer-contract.md, "Results file").

A consumer writes JSON Lines; ``parse_line`` turns one line into a ``JobRecord``,
``ConsumerRecord`` or ``DoneRecord``. Fields a consumer got wrong (a string where seconds
belong) read as absent: the comparison then reports what is missing, never crashes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class RecordError(ValueError):
    """A line that is not a contract record."""


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class OutputRecord:
    """One written output. ``file`` and ``dtype`` stay as the consumer wrote them (any JSON
    value): the comparison checks them against the plan and names what is wrong."""

    key: Any
    file: Any = None
    dtype: Any = None
    tensor: Any = None
    shape: Any = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputRecord:
        return cls(
            data.get("key"), data.get("file"), data.get("dtype"), data.get("tensor"),
            data.get("shape"),
        )  # fmt: skip


@dataclass(frozen=True)
class JobRecord:
    id: str
    status: str | None
    stage: str | None = None
    error: str | None = None
    load_s: float | None = None
    first_run_s: float | None = None
    steady_s: list[float] = field(default_factory=list)
    convert_s: float | None = None
    loader: str | None = None
    outputs: list[OutputRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def failure_text(self) -> str:
        """``[stage] error``, how a failed job shows in a cell."""
        return (
            f"[{self.stage or '?'}] {self.error if self.error is not None else 'no error message'}"
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        steady = data.get("steady_s")
        error = data.get("error")
        return cls(
            id=str(data["id"]),
            status=_text(data.get("status")),
            stage=_text(data.get("stage")),
            error=None if error is None else str(error),
            load_s=_seconds(data.get("load_s")),
            first_run_s=_seconds(data.get("first_run_s")),
            steady_s=[s for s in map(_seconds, steady) if s is not None]
            if isinstance(steady, list)
            else [],
            convert_s=_seconds(data.get("convert_s")),
            loader=_text(data.get("loader")),
            outputs=[
                OutputRecord.from_json(o) for o in data.get("outputs") or [] if isinstance(o, dict)
            ]
            if isinstance(data.get("outputs"), list)
            else [],
        )


@dataclass(frozen=True)
class ConsumerRecord:
    """What a consumer says about itself; ``fields`` go to the report as written."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class DoneRecord:
    jobs: int | None = None
    failed: int | None = None
    max_rss_kb: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DoneRecord:
        def count(value: Any) -> int | None:
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return cls(
            count(data.get("jobs")), count(data.get("failed")), count(data.get("max_rss_kb"))
        )


Record = JobRecord | ConsumerRecord | DoneRecord


def parse_line(line: str) -> Record:
    """One results line as its record; ``RecordError`` says why it is not one."""
    try:
        data = json.loads(line)
        kind = data["record"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RecordError("not a contract record") from None
    if kind == "consumer":
        return ConsumerRecord({k: v for k, v in data.items() if k != "record"})
    if kind == "done":
        return DoneRecord.from_json(data)
    if kind == "job" and isinstance(data.get("id"), str):
        return JobRecord.from_json(data)
    raise RecordError(f"unknown record {kind!r}")
