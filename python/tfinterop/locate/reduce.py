"""``tfinterop reduce``: a located divergence as a self-contained repro.

The node ``locate`` found computing differently by itself (its inputs fed with the
reference's values) becomes a graph of that node alone: its constant inputs copied, every
other input a placeholder. Written beside it: the reference's input values
(``inputs.npz``), the reference's outputs (``reference.npz``) and the ``tfinterop check``
command that reproduces the divergence, which is then run to confirm the repro fails on its
own.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..errors import UserError
from ..inspect.graphdef import load_graph_def, tensor_parts
from .result import COMPUTES_DIFFERENTLY, ConsumerLocation, Isolated


@dataclass
class Repro:
    directory: Path
    node: str
    op: str
    graph_nodes: int
    command: list[str]
    reproduces: bool = False
    check_output: str = ""
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verdict = (
            "the repro fails on its own"
            if self.reproduces
            else "the repro does NOT fail on its own (the divergence needs more of the graph)"
        )
        return [
            f"reduced to {self.node} ({self.op}): a graph of {self.graph_nodes} nodes in "
            f"{self.directory}; {verdict}",
            f"  reproduce: {shlex.join(self.command)}",
            *(f"  {note}" for note in self.notes),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory), "node": self.node, "op": self.op,
            "graph_nodes": self.graph_nodes, "command": self.command,
            "reproduces": self.reproduces, "notes": self.notes,
        }  # fmt: skip


def npz_arrays(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez`` without pickles: a string tensor becomes ``KEY`` int64 lengths
    plus ``KEY.bytes`` uint8, as ``check --inputs/--expected`` read it (exact bytes)."""
    out: dict[str, np.ndarray] = {}
    for key, value in values.items():
        if value.dtype.kind in "OSU":
            flat = tensors.as_bytes_array(value).reshape(-1)
            out[key] = np.array([len(v) for v in flat], dtype="<i8").reshape(value.shape)
            out[key + tensors.BYTES_SUFFIX] = np.frombuffer(b"".join(flat), dtype=np.uint8)
        else:
            out[key] = value
    return out


def confirm(
    repro: Repro,
    reproduced: Callable[[dict[str, Any]], bool],
    extra: Sequence[str] = (),
    describe: Callable[[str], str] = lambda message: message,
) -> None:
    """Run the repro's ``tfinterop check`` command (plus ``extra``, e.g. ``--save-fixture``)
    and set ``repro.reproduces``: some row of its report is ``reproduced``."""
    report = repro.directory / "check.json"
    report.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "tfinterop", *repro.command[1:], *extra, "--json", str(report)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    repro.check_output = done.stdout[-4000:] + done.stderr[-2000:]
    if done.returncode not in (0, 1) or not report.exists():
        repro.notes.append(f"check exited {done.returncode}: {done.stderr.strip()[-300:]}")
        return
    rows = json.loads(report.read_text())["rows"]
    found = [r for r in rows if reproduced(r)]
    repro.reproduces = bool(found)
    if found:
        message = " ".join(describe(found[0]["message"]).split())
        repro.notes.append(f"check: {found[0]['status']}: {message[:300]}")


def _suspect(location: ConsumerLocation) -> Isolated:
    if location.status == "agrees":
        raise UserError(f"{location.consumer} agrees with the reference: nothing to reduce")
    if location.status == "error":
        raise UserError(f"{location.consumer} did not run: {location.message}")
    found = next((i for i in location.isolated if i.verdict == COMPUTES_DIFFERENTLY), None)
    if found is None:
        suspects = ", ".join(f"{i.node}: {i.verdict}" for i in location.isolated) or "none isolated"
        raise UserError(
            f"no isolated node of {location.consumer} computes differently by itself ({suspects}); "
            "raise --isolate to try more of the diverging nodes"
        )
    return found


def reduce_location(
    model: Path,
    location: ConsumerLocation,
    out: Path,
    check_arguments: list[str],
    confirm_arguments: Sequence[str] = (),
) -> Repro:
    """Write the repro of ``location``'s first node that computes differently, and run its
    ``check`` command (``check_arguments``: consumer, tolerance, oneDNN; plus
    ``confirm_arguments`` in that run only) to confirm it."""
    from tensorflow.core.framework import graph_pb2

    suspect = _suspect(location)
    source = load_graph_def(model)
    by_name = {node.name: node for node in source.node}
    original = by_name[suspect.node]
    graph = graph_pb2.GraphDef()
    graph.versions.CopyFrom(source.versions)
    graph.library.CopyFrom(source.library)  # the node may call a function of the library
    out.mkdir(parents=True, exist_ok=True)
    inputs: dict[str, np.ndarray] = {}
    rewired = []
    for position, tensor in enumerate(i for i in original.input if not i.startswith("^")):
        producer, index = tensor_parts(tensor)
        full = f"{producer}:{index}"
        if by_name[producer].op == "Const":
            if producer not in {n.name for n in graph.node}:
                graph.node.add().CopyFrom(by_name[producer])
            rewired.append(tensor)
            continue
        value = tensors.read_tensor(suspect.input_files[full])
        name = f"input_{position}"
        placeholder = graph.node.add(name=name, op="Placeholder")
        placeholder.attr["dtype"].type = _dtype_enum(value)
        for size in value.shape:
            placeholder.attr["shape"].shape.dim.add(size=size)
        inputs[name] = value
        rewired.append(name)
    node = graph.node.add()
    node.CopyFrom(original)
    del node.input[:]
    node.input.extend(rewired)  # control inputs dropped: the repro has nothing to order
    (out / "model.pb").write_bytes(graph.SerializeToString())
    expected = {
        tensor: tensors.read_tensor(path) for tensor, path in suspect.reference_files.items()
    }
    np.savez(out / "inputs.npz", allow_pickle=False, **npz_arrays(inputs))
    np.savez(out / "reference.npz", allow_pickle=False, **npz_arrays(expected))
    command = [
        "tfinterop", "check", str(out / "model.pb"), "--inputs", str(out / "inputs.npz"),
        "--expected", str(out / "reference.npz"),
        *(a for name in inputs for a in ("--input", name)),
        *(a for tensor in expected for a in ("--output", tensor)),
        *check_arguments,
    ]  # fmt: skip
    repro = Repro(out, suspect.node, suspect.op, len(graph.node), command)
    (out / "README.md").write_text(
        f"# Repro: {suspect.node} ({suspect.op}) computes differently in {location.consumer}\n\n"
        "Written by `tfinterop reduce`: the node alone, its inputs fed with the reference's "
        "values (inputs.npz), the reference's outputs (reference.npz).\n\n"
        f"```\n{shlex.join(command)}\n```\n"
    )
    # Reproduced: the consumer's row against the reference's outputs fails on its own.
    confirm(
        repro,
        lambda row: row["consumer"] == location.consumer and row["status"] == "fail",
        list(confirm_arguments),
    )
    return repro


def _dtype_enum(value: np.ndarray) -> int:
    import tensorflow as tf

    if value.dtype.kind in "OSU":
        return int(tf.string.as_datatype_enum)
    return int(tf.as_dtype(value.dtype).as_datatype_enum)
