"""Merge saved ``--json`` results (the shards of a CI matrix) into one report document.

Shards are refused, not flagged, when they ran under different settings: a report has one
environment section and one pass/fail verdict, and cells compared against another TensorFlow,
another oneDNN setting or other tolerances are not the same test. What may differ between
runners (when a shard ran, its machine, CPUs and paths) is kept per shard; each consumer's
own record is merged (its wall time summed over the shards, its peak RSS the largest).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..pipeline.cells import CellOutcome, failed
from .document import cell_name, document, load_document, summary

PER_SHARD_ENVIRONMENT = frozenset(
    {("platform",), ("machine",), ("cpus",), ("tensorflow", "library_dir")}
)
"""Environment fields that describe the runner, not the test: may differ between shards."""
PER_SHARD_KEYS = frozenset(
    {"report_version", "created", "summary", "rows", "timings", "shard", "merged"}
)
"""Top-level keys each shard has its own of; every other key (the comparison rule, the
exporters or runtimes a run used, ...) must be equal in every shard."""
CONSUMER_MEASURES = frozenset({"max_rss_kb", "wall_s"})
"""Per-consumer measurements merged across shards; the rest of a consumer's record (binding,
TensorFlow version, contract) must agree."""
ROW_KEY = ("fixture", "format", "signature", "consumer")


class MergeError(UserError):
    """Shards that cannot be merged: one line naming the key or cell and the files."""


@dataclass(frozen=True)
class SavedCell:
    """One row of a saved result: its typed outcome (key, status, message) and the row as
    saved, which the renderings take as is (the worst elements keep their printed text)."""

    outcome: CellOutcome
    row: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any, path: Path, index: int) -> SavedCell:
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ROW_KEY):
            raise MergeError(
                f"{path}: rows[{index}] is not a report row (needs {', '.join(ROW_KEY)})"
            )
        status = row.get("status")
        if not isinstance(status, str):
            raise MergeError(f"{path}: rows[{index}] has no status")
        message = str(row.get("message") or "")
        fixture, fmt, signature, consumer = (row[k] for k in ROW_KEY)
        return cls(CellOutcome(fixture, fmt, signature, consumer, status, message), row)

    @property
    def key(self) -> tuple[str, str, str, str]:
        o = self.outcome
        return (o.fixture, o.format, o.signature, o.consumer)


@dataclass
class ShardResult:
    """A saved result, as read from its file."""

    path: Path
    document: dict[str, Any]
    cells: list[SavedCell]
    shard: tuple[int, int] | None
    """(K, N) of ``interop --shard K/N``; None for a run that was not sharded."""

    @classmethod
    def load(cls, path: Path) -> ShardResult:
        doc = load_document(path)
        cells = [SavedCell.from_row(row, path, i) for i, row in enumerate(doc["rows"])]
        return cls(path, doc, cells, _shard(doc.get("shard"), path))

    @property
    def label(self) -> str:
        return str(self.path)


@dataclass
class MergedResult:
    shards: list[ShardResult]
    cells: list[SavedCell]
    environment: dict[str, Any]
    shared: dict[str, Any] = field(default_factory=dict)
    """Top-level keys every shard has with the same value (``comparison_rule``, ...)."""

    @property
    def failed(self) -> bool:
        return failed(c.outcome for c in self.cells)

    def document(self) -> dict[str, Any]:
        """The merged report document (``report.document``'s layout), rendered as any other."""
        # The layout is report.document's; only the rows and their counts come from here.
        doc = document([], self.environment, self.shared)
        doc["summary"] = summary([c.outcome for c in self.cells])
        doc["rows"] = [c.row for c in self.cells]
        doc["merged"] = {
            shard.label: {
                "shard": f"{shard.shard[0]}/{shard.shard[1]}" if shard.shard else "whole run",
                "created": shard.document.get("created"),
                "cells": len(shard.cells),
                "timings": shard.document.get("timings") or {},
            }
            for shard in self.shards
        }
        return doc


def merge_files(paths: Sequence[Path]) -> MergedResult:
    """Read and merge saved results; a ``MergeError`` (one line) when they do not fit."""
    if not paths:
        raise MergeError("--merge needs at least one RESULT.json")
    seen: dict[Path, Path] = {}
    for path in paths:
        resolved = path.resolve()
        if resolved in seen:
            raise MergeError(f"{path} is given twice (also as {seen[resolved]})")
        seen[resolved] = path
    return merge([ShardResult.load(path) for path in paths])


def merge(shards: Sequence[ShardResult]) -> MergedResult:
    _check_shards(shards)
    shared = _shared_keys(shards)
    environment = _merged_environment(shards)
    _check_tolerances(shards)
    return MergedResult(list(shards), _merged_cells(shards), environment, shared)


# --------------------------------------------------------------------------------- checks


def _shard(value: Any, path: Path) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, dict)
        and isinstance(value.get("index"), int)
        and isinstance(value.get("count"), int)
        and 1 <= value["index"] <= value["count"]
    ):
        return value["index"], value["count"]
    raise MergeError(f"{path}: `shard` is not {{index: K, count: N}} with 1 <= K <= N: {value!r}")


def _check_shards(shards: Sequence[ShardResult]) -> None:
    """Sharded results must be exactly one of each shard 1..N of the same N: a shard that
    crashed before writing its JSON would otherwise vanish from a green merged report."""
    sharded = [s for s in shards if s.shard is not None]
    if not sharded:
        return
    counts = {s.shard[1] for s in sharded if s.shard}
    if len(counts) > 1:
        raise MergeError(
            "shards of different matrices: "
            + _where((f"{s.shard[0]}/{s.shard[1]}", s) for s in sharded if s.shard)
        )
    (count,) = counts
    by_index: dict[int, list[ShardResult]] = {}
    for s in sharded:
        if s.shard:
            by_index.setdefault(s.shard[0], []).append(s)
    for index, given in sorted(by_index.items()):
        if len(given) > 1:
            raise MergeError(
                f"shard {index}/{count} is given twice: {', '.join(s.label for s in given)}"
            )
    missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in by_index]
    if missing:
        have = ", ".join(f"{k}/{count} ({by_index[k][0].label})" for k in sorted(by_index))
        raise MergeError(
            f"shard {', '.join(missing)} missing (given: {have}); merge every shard of the run"
        )


def _where(values: Iterable[tuple[str, ShardResult]]) -> str:
    """``2.21.0 in a.json, c.json; 2.20.0 in b.json``: each distinct value and its files."""
    groups: dict[str, list[str]] = {}
    for value, shard in values:
        groups.setdefault(value, []).append(shard.label)
    return "; ".join(f"{value} in {', '.join(files)}" for value, files in groups.items())


_MISSING = object()


def _text(value: Any) -> str:
    return "(absent)" if value is _MISSING else str(value)


def _differs(what: str, values: list[tuple[Any, ShardResult]], hint: str) -> MergeError:
    return MergeError(
        f"cannot merge: {what} differs: {_where((_text(v), s) for v, s in values)} ({hint})"
    )


def _shared_keys(shards: Sequence[ShardResult]) -> dict[str, Any]:
    keys = sorted({k for s in shards for k in s.document} - PER_SHARD_KEYS - {"environment"})
    shared: dict[str, Any] = {}
    for key in keys:
        values = [(s.document.get(key, _MISSING), s) for s in shards]
        if any(v != values[0][0] for v, _ in values):
            raise _differs(key, values, "shards must come from the same command and options")
        shared[key] = values[0][0]
    return shared


def _flatten(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Leaves by key path (keys may hold dots: ``tensorflow_crate (rust-0.21)``)."""
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, path))
        else:
            flat[path] = value
    return flat


def _unflatten(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _merged_environment(shards: Sequence[ShardResult]) -> dict[str, Any]:
    environments = [(s.document.get("environment") or {}, s) for s in shards]
    flats = [
        (_flatten({k: v for k, v in e.items() if k != "consumers"}), s) for e, s in environments
    ]
    merged: dict[tuple[str, ...], Any] = {}
    for path in dict.fromkeys(p for flat, _ in flats for p in flat):
        values = [(flat.get(path, _MISSING), s) for flat, s in flats]
        distinct = list(dict.fromkeys(_text(v) for v, _ in values))
        if len(distinct) == 1:
            merged[path] = values[0][0]
        elif path in PER_SHARD_ENVIRONMENT:
            merged[path] = [v for v, _ in values if v is not _MISSING]
        else:
            raise _differs(
                f"environment.{'.'.join(path)}",
                values,
                "shards must run with the same TensorFlow, toolchain and settings",
            )
    environment = _unflatten(merged)
    environment["consumers"] = _merged_consumers(environments)
    return environment


def _merged_consumers(
    environments: list[tuple[dict[str, Any], ShardResult]],
) -> dict[str, dict[str, Any]]:
    records: dict[str, list[tuple[dict[str, Any], ShardResult]]] = {}
    for environment, shard in environments:
        for name, saved in (environment.get("consumers") or {}).items():
            if isinstance(saved, dict):
                records.setdefault(str(name), []).append((saved, shard))
    merged: dict[str, dict[str, Any]] = {}
    for name, given in records.items():
        record: dict[str, Any] = {}
        for key in dict.fromkeys(k for r, _ in given for k in r):
            values = [(r.get(key, _MISSING), s) for r, s in given]
            present = [v for v, _ in values if v is not _MISSING and v is not None]
            if key == "wall_s":  # what the consumer cost over the whole matrix
                record[key] = round(sum(float(v) for v in present), 3) if present else None
            elif key == "max_rss_kb":  # the peak any shard saw
                record[key] = max(present) if present else None
            elif any(_text(v) != _text(values[0][0]) for v, _ in values):
                raise _differs(
                    f"environment.consumers.{name}.{key}",
                    values,
                    "each consumer must be the same build in every shard",
                )
            else:
                record[key] = values[0][0]
        record["shards"] = len(given)
        merged[name] = record
    return merged


def _check_tolerances(shards: Sequence[ShardResult]) -> None:
    """One tolerance per fixture x format x signature x output across the shards (a matrix
    split by consumer, say, must not compare one consumer under looser rules)."""
    seen: dict[tuple[str, ...], tuple[Any, ShardResult]] = {}
    for shard in shards:
        for cell in shard.cells:
            for output in cell.row.get("outputs") or []:
                if not isinstance(output, dict) or "tolerance" not in output:
                    continue
                key = (*cell.key[:3], str(output.get("key")))
                tolerance = output["tolerance"]
                first = seen.setdefault(key, (tolerance, shard))
                if first[0] != tolerance:
                    raise _differs(
                        f"the tolerance of {' / '.join(key[:3])} output {key[3]}",
                        [
                            (_tolerance_text(first[0]), first[1]),
                            (_tolerance_text(tolerance), shard),
                        ],
                        "shards must use the same fixtures and tolerances",
                    )


def _tolerance_text(tolerance: Any) -> str:
    if isinstance(tolerance, dict):
        return f"atol={tolerance.get('atol')} rtol={tolerance.get('rtol')}"
    return str(tolerance)


def _merged_cells(shards: Sequence[ShardResult]) -> list[SavedCell]:
    """Every shard's cells; one cell in two shards must be the identical row."""
    cells: dict[tuple[str, str, str, str], tuple[SavedCell, ShardResult]] = {}
    for shard in shards:
        for cell in shard.cells:
            earlier = cells.get(cell.key)
            if earlier is None:
                cells[cell.key] = (cell, shard)
                continue
            if earlier[0].row != cell.row:
                name = cell_name(cell.row)
                what = next(
                    (k for k in dict.fromkeys([*earlier[0].row, *cell.row])
                     if earlier[0].row.get(k) != cell.row.get(k)),
                    "row",
                )  # fmt: skip
                raise MergeError(
                    f"cannot merge: cell {name} is in {earlier[1].label} and {shard.label} with "
                    f"different results ({what}: {_short(earlier[0].row.get(what))} vs "
                    f"{_short(cell.row.get(what))}); each cell must run in one shard only"
                )
    # The unsharded run's order: consumers as they first appear, then fixture x format x
    # signature, so a merged report reads like a whole run's.
    consumers = {key[3]: i for i, key in reversed(list(enumerate(cells)))}
    ordered = sorted(cells, key=lambda k: (consumers[k[3]], k[0], k[1], k[2]))
    return [cells[key][0] for key in ordered]


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"
