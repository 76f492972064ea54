"""``tfinterop reduce --fail-regex``: the smallest subgraph on which a consumer's job still
fails with an error matching a regular expression (a load failure such as "Op type not
registered" or "Input 0 of node ... incompatible", or a run failure), by delta debugging
over the graph's nodes.

A candidate is a set of nodes (constants and the graph's placeholders are not candidates:
they come along when a kept node reads them). Its subgraph keeps those nodes and the
function library; every input from outside the set becomes a placeholder fed with the
reference's value of that tensor (fetched once, as ``locate`` fetches intermediates), and
when a tensor cannot be fetched (inside a branch or a loop, a resource) its producer is
kept instead. What the subgraph fetches: its nodes' outputs nothing inside it reads, and
the case's outputs it still holds. Each test is one consumer process on a one-job plan;
results are cached by the closed node set, so two subsets that imply one subgraph are one
test.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import tensors
from ..consumers import Consumer
from ..contract import plan as plan_format
from ..errors import UserError
from ..inspect.graphdef import call_closure, load_graph_def, tensor_parts
from ..pipeline.run import run_consumer
from .ddmin import Budget, ddmin
from .graph import GraphTensors, read_graph
from .locate import LocateSettings, reference_values
from .reduce import Repro, confirm, npz_arrays

CONSTANT_OPS = frozenset({"Const", "HostConst"})
INPUT_OPS = frozenset({"Placeholder", "PlaceholderV2"})
DEFAULT_MAX_TESTS = 200
RAN = "ran without error (its outputs were written)"


@dataclass
class Outcome:
    matched: bool
    text: str
    """The failure as the consumer reported it, or what happened instead."""
    ran: bool = True
    """False: nothing to fetch, no process started."""


@dataclass
class Candidate:
    """A closed node set as a runnable graph."""

    graph: Any
    """The GraphDef."""
    feeds: list[tuple[str, str, str]]
    """(key, placeholder tensor, file of its value)."""
    outputs: list[str]
    """Tensors fetched."""
    cut: dict[str, str] = field(default_factory=dict)
    """Original tensor -> the placeholder standing for it."""


@dataclass
class FailureReduction:
    regex: str
    consumer: str
    full_failure: str
    full_nodes: int
    kept: list[tuple[str, str]]
    """(node, op) of the minimal set, in topological order."""
    tests: int
    """Consumer processes run (the full graph's included)."""
    cached: int
    """Candidates answered from the cache (a subset implying an already tested subgraph)."""
    seconds: float
    finished: bool
    """False: the test budget ran out first; the set is the smallest failing one found."""
    notes: list[str] = field(default_factory=list)
    repro: Repro | None = None

    def lines(self) -> list[str]:
        names = ", ".join(f"{name} ({op})" for name, op in self.kept)
        head = [
            f"reduce: {self.consumer} fails with /{self.regex}/ on the full graph: "
            f"{_short(self.full_failure)}",
            f"reduced {self.full_nodes} -> {self.repro.graph_nodes if self.repro else '?'} graph "
            f"nodes in {self.tests} tests ({self.cached} cached) and {self.seconds:.1f}s: "
            f"{names}" + ("" if self.finished else " (stopped at --max-tests)"),
            *self.notes,
        ]
        return head + (self.repro.lines() if self.repro else [])

    def as_dict(self) -> dict[str, Any]:
        repro = self.repro
        return {
            "regex": self.regex,
            "consumer": self.consumer,
            "full_failure": self.full_failure,
            "full_nodes": self.full_nodes,
            "kept": [{"node": n, "op": op} for n, op in self.kept],
            "tests": self.tests,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
            "finished": self.finished,
            "notes": self.notes,
            "repro": None if repro is None else repro.as_dict(),
        }


def _short(text: str, limit: int = 300) -> str:
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def matches(pattern: re.Pattern[str], text: str) -> bool:
    """The pattern against the failure as written and as one line (TensorFlow's errors span
    lines)."""
    return bool(pattern.search(text) or pattern.search(_short(text, 1 << 20)))


class FailureTester:
    """Builds the subgraph of a node set and runs the consumer on it (cached)."""

    def __init__(
        self, settings: LocateSettings, consumer: Consumer, pattern: re.Pattern[str],
        source: Any, graph: GraphTensors, values: dict[str, str], work: Path,
        max_tests: int, on_test: Callable[[int, int, Outcome], None] | None = None,
    ) -> None:  # fmt: skip
        self.settings, self.consumer, self.pattern = settings, consumer, pattern
        self.source, self.graph, self.values, self.work = source, graph, values, work
        self.max_tests, self.on_test = max_tests, on_test
        self.nodes = {node.name: node for node in source.node}
        self.case_inputs = {
            e.tensor if ":" in e.tensor else f"{e.tensor}:0": str(settings.ref.directory / e.file)
            for e in settings.ref.case.inputs
        }
        self.case_outputs = [
            e.tensor if ":" in e.tensor else f"{e.tensor}:0" for e in settings.ref.case.outputs
        ]
        self.dtypes = {t: d for node in graph.nodes for t, d in node.outputs}
        self.dtypes.update({e.tensor: e.dtype for e in settings.ref.case.inputs if e.dtype})
        self.cache: dict[frozenset[str], Outcome] = {}
        self.tests = 0
        self.cached = 0
        self.library_pruned = False
        self._shapes: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ subgraphs

    def closure(self, subset: list[str] | set[str]) -> frozenset[str]:
        """The set plus the producers of every input that cannot be fed (neither a case input
        nor a tensor the reference fetched)."""
        kept = set(subset)
        pending = list(subset)
        while pending:
            node = self.nodes[pending.pop()]
            for tensor in node.input:
                if tensor.startswith("^"):
                    continue
                producer, index = tensor_parts(tensor)
                full = f"{producer}:{index}"
                if producer in kept or producer not in self.nodes:
                    continue
                op = self.nodes[producer].op
                if op in CONSTANT_OPS or op in INPUT_OPS:
                    continue
                if full in self.case_inputs or full in self.values:
                    continue
                kept.add(producer)
                pending.append(producer)
        return frozenset(kept)

    def _shape(self, file: str) -> tuple[int, ...]:
        if file not in self._shapes:
            self._shapes[file] = tuple(tensors.read_tensor(file).shape)
        return self._shapes[file]

    def candidate(self, kept: frozenset[str], *, prune_library: bool = False) -> Candidate:
        import tensorflow as tf
        from tensorflow.core.framework import graph_pb2, node_def_pb2

        graph = graph_pb2.GraphDef()
        graph.versions.CopyFrom(self.source.versions)
        if prune_library:
            _copy_reachable_functions(self.source, kept, graph)
        else:
            graph.library.CopyFrom(self.source.library)
        taken = set(self.nodes)
        copied: set[str] = set()
        feeds: list[tuple[str, str, str]] = []
        cut: dict[str, str] = {}
        placeholders = []
        for name in (n.name for n in self.source.node if n.name in kept):
            for tensor in self.nodes[name].input:
                if tensor.startswith("^"):
                    continue
                producer, index = tensor_parts(tensor)
                full = f"{producer}:{index}"
                if producer in kept or full in cut or producer in copied:
                    continue
                original = self.nodes[producer]
                if original.op in CONSTANT_OPS or (
                    original.op in INPUT_OPS and index == 0
                ):  # a constant, or one of the graph's own inputs: copied as it is
                    copied.add(producer)
                    if full in self.case_inputs:
                        feeds.append((producer, full, self.case_inputs[full]))
                    continue
                file = self.case_inputs.get(full) or self.values[full]
                placeholder = producer if index == 0 else f"{producer}_{index}"
                while placeholder in taken and placeholder != producer:
                    placeholder += "_input"
                taken.add(placeholder)
                cut[full] = placeholder
                node = node_def_pb2.NodeDef(name=placeholder, op="Placeholder")
                dtype = self.dtypes.get(full) or tensors.dtype_name(tensors.read_tensor(file))
                node.attr["dtype"].type = tf.as_dtype(dtype).as_datatype_enum
                for size in self._shape(file):
                    node.attr["shape"].shape.dim.add(size=size)
                placeholders.append(node)
                feeds.append((placeholder, f"{placeholder}:0", file))
        graph.node.extend(placeholders)
        for original in self.source.node:
            if original.name in copied:
                node = graph.node.add()
                node.CopyFrom(original)
                del node.input[:]  # constants and placeholders read nothing
            elif original.name in kept:
                node = graph.node.add()
                node.CopyFrom(original)
                del node.input[:]
                for tensor in original.input:
                    if tensor.startswith("^"):
                        if tensor[1:] in kept:  # ordering among kept nodes stays
                            node.input.append(tensor)
                        continue
                    producer, index = tensor_parts(tensor)
                    full = f"{producer}:{index}"
                    node.input.append(f"{cut[full]}:0" if full in cut else tensor)
        read = {
            f"{p}:{i}"
            for name in kept
            for p, i in (tensor_parts(t) for t in self.nodes[name].input if not t.startswith("^"))
            if p in kept
        }
        outputs = [
            t
            for name in sorted(kept, key=lambda n: self.graph.by_name[n].index)
            for t, _ in self.graph.by_name[name].outputs
            if t not in read
        ]
        outputs += [t for t in self.case_outputs if tensor_parts(t)[0] in kept and t not in outputs]
        return Candidate(graph, feeds, outputs, cut)

    # ------------------------------------------------------------------ tests

    def run(self, model: Path, feeds: list[tuple[str, str, str]], outputs: list[str],
            work: Path) -> Outcome:  # fmt: skip
        """One consumer process on a one-job plan: did it fail with a matching error?"""
        if not outputs:
            return Outcome(
                False, "nothing to fetch (no output of these nodes can be fetched)", False
            )
        threads = self.settings.run.threads
        plan = plan_format.Plan(intra_op_threads=threads[0], inter_op_threads=threads[1])
        (work / "outputs").mkdir(parents=True, exist_ok=True)
        plan.jobs.append(
            plan_format.Job(
                "reduce", str(model), "frozen",
                inputs=[plan_format.PlanTensor(k, t, file) for k, t, file in feeds],
                outputs=[
                    plan_format.PlanTensor(f"o{i}", t, str(work / "outputs" / f"o{i}.npy"))
                    for i, t in enumerate(outputs)
                ],
            )
        )  # fmt: skip
        run = run_consumer(
            self.consumer, plan, work, self.settings.run.build_dir,
            timeout_s=self.settings.run.timeout_s,
            environment={**self.settings.run.environment, **self.settings.consumer_environment},
        )  # fmt: skip
        self.tests += 1
        record = run.jobs.get("reduce")
        if record is not None and record.ok:
            problem = run.problem()
            text = RAN if problem is None else problem
        elif record is not None:
            text = record.failure_text()
        else:
            text = run.problem() or f"{self.consumer.name} reported nothing for the job"
        return Outcome(matches(self.pattern, text), text)

    def fails(self, subset: list[str]) -> bool:
        kept = self.closure(subset)
        if kept in self.cache:
            self.cached += 1
            return self.cache[kept].matched
        if self.tests >= self.max_tests:
            raise Budget
        number = self.tests
        work = self.work / f"{number:04d}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        candidate = self.candidate(kept)
        model = work / "model.pb"
        model.write_bytes(candidate.graph.SerializeToString())
        outcome = self.run(model, candidate.feeds, candidate.outputs, work)
        self.cache[kept] = outcome
        with open(self.work / "tests.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps({
                "test": number, "nodes": sorted(kept), "matched": outcome.matched,
                "ran": outcome.ran, "text": _short(outcome.text, 2000),
            }) + "\n")  # fmt: skip
        if self.on_test and outcome.ran:
            self.on_test(number, len(kept), outcome)
        shutil.rmtree(work, ignore_errors=True)  # a graph per test adds up: the log stays
        return outcome.matched


def _copy_reachable_functions(source: Any, kept: frozenset[str], graph: Any) -> None:
    """Only the library functions the kept nodes call, directly or through other functions."""
    functions = {f.signature.name: f for f in source.library.function}
    seen = call_closure((node for node in source.node if node.name in kept), functions)
    graph.library.function.extend(f for f in source.library.function if f.signature.name in seen)
    names = {f.signature.name for f in graph.library.function}
    graph.library.gradient.extend(g for g in source.library.gradient if g.function_name in names)


def _chain_order(source: Any) -> list[str]:
    """Every node, each after its data inputs, depth-first from the graph's sinks: a node and
    the node reading it are usually neighbours, so delta debugging's contiguous chunks keep
    chains together (breadth-first orders put hundreds of nodes between them)."""
    nodes = {node.name: node for node in source.node}
    read = {tensor_parts(t)[0] for node in source.node for t in node.input if not t.startswith("^")}
    order: list[str] = []
    seen: set[str] = set()
    for sink in [n.name for n in source.node if n.name not in read] + list(nodes):
        stack = [(sink, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                order.append(name)
                continue
            if name in seen or name not in nodes:
                continue
            seen.add(name)
            stack.append((name, True))
            inputs = [tensor_parts(t)[0] for t in nodes[name].input if not t.startswith("^")]
            stack.extend((i, False) for i in reversed(inputs) if i not in seen)
    return order


def named_nodes(text: str, source: Any) -> set[str]:
    """Nodes a TensorFlow error names: a node name as a word of it (``node Identity``,
    ``from TopKV2:1``), or an op type it quotes (``Op type not registered 'DecodeWebP'``)."""
    words = set(re.findall(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*", text))
    quoted = set(re.findall(r"'([A-Za-z0-9_>.-]+)'", text))
    return {n.name for n in source.node if n.name in words or n.op in quoted}


def compile_pattern(regex: str) -> re.Pattern[str]:
    """``--fail-regex``, compiled (UserError when it is not a regular expression)."""
    try:
        return re.compile(regex)
    except re.error as exc:
        raise UserError(f"--fail-regex {regex!r} is not a regular expression: {exc}") from None


def reduce_failure(
    settings: LocateSettings,
    consumer: Consumer,
    regex: str,
    out: Path,
    check_arguments: list[str],
    *,
    max_tests: int = DEFAULT_MAX_TESTS,
    confirm_arguments: list[str] | None = None,
    on_test: Callable[[int, int, Outcome], None] | None = None,
    hint: bool = True,
) -> FailureReduction:
    """Reduce the cell's frozen graph to a smallest node set on which ``consumer`` still fails
    with an error matching ``regex``, write it as a repro under ``out`` and confirm it with
    the ``tfinterop check`` command (``check_arguments``: consumer, runtime, oneDNN;
    ``confirm_arguments`` are added to the confirming run only, e.g. ``--save-fixture``).
    UserError when the full graph does not fail that way. ``hint``: first try the nodes the
    full graph's error names on their own (one test; False: delta debugging from the whole
    graph)."""
    pattern = compile_pattern(regex)
    started = time.perf_counter()
    model = settings.ref.directory / settings.ref.case.model
    source = load_graph_def(model)
    graph = read_graph(model)
    work = settings.work_dir / "fail-reduce" / tensors.safe_file_name(consumer.name)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tester = FailureTester(
        settings, consumer, pattern, source, graph, {}, work / "tests", max_tests, on_test
    )
    (work / "tests").mkdir()
    # The full graph's run and the reference's fetch of every tensor, side by side.
    with ThreadPoolExecutor(max_workers=2) as pool:
        fetched = pool.submit(reference_values, settings, graph.tensors, "fail-reduce-reference")
        full = tester.run(
            model,
            [(e.key, e.tensor, str(settings.ref.directory / e.file)) for e in settings.ref.case.inputs],
            tester.case_outputs, work / "full",
        )  # fmt: skip
        values, problem = fetched.result()
    if on_test:
        on_test(0, len(source.node), full)
    if not full.matched:
        did = "ran without error" if full.text == RAN else f"failed with: {_short(full.text)}"
        raise UserError(
            f"--fail-regex {regex!r} does not match what the full frozen graph did in "
            f"{consumer.name}: it {did}"
        )
    notes = []
    if problem:
        notes.append(
            f"the reference could not fetch intermediates ({_short(problem, 200)}): every node "
            "keeps the producers of its inputs"
        )
    tester.values = values
    universe = [
        name
        for name in _chain_order(source)
        if tester.nodes[name].op not in CONSTANT_OPS and tester.nodes[name].op not in INPUT_OPS
    ]
    if not universe:
        raise UserError(f"{model} has no node besides constants and placeholders to reduce")
    tester.cache[tester.closure(universe)] = full
    start = universe
    named = named_nodes(full.text, source) & set(universe) if hint else set()
    if named and len(named) < len(universe):
        # One test first: the nodes the error names (or whose op it quotes) on their own.
        try:
            if tester.fails([n for n in universe if n in named]):
                start = [n for n in universe if n in named]
                notes.append(
                    f"the {len(named)} node(s) the error names fail on their own: delta "
                    "debugging started from them"
                )
        except Budget:
            pass
    found, finished = ddmin(start, tester.fails)
    kept = tester.closure(found)
    candidate = tester.candidate(kept)
    pruned = tester.candidate(kept, prune_library=True)
    library_note = ""
    if len(pruned.graph.library.function) < len(candidate.graph.library.function):
        trial = work / "library"
        trial.mkdir()
        (trial / "model.pb").write_bytes(pruned.graph.SerializeToString())
        outcome = tester.run(trial / "model.pb", pruned.feeds, pruned.outputs, trial)
        if outcome.matched:
            library_note = (
                f"function library: {len(pruned.graph.library.function)} of "
                f"{len(candidate.graph.library.function)} functions (those the nodes call)"
            )
            candidate = pruned
        else:
            library_note = (
                "function library kept whole: without the uncalled functions it did not "
                "fail that way"
            )
    if library_note:
        notes.append(library_note)
    order = sorted(kept, key=lambda name: graph.by_name[name].index)
    reduction = FailureReduction(
        regex, consumer.name, full.text, len(source.node),
        [(name, tester.nodes[name].op) for name in order], tester.tests, tester.cached, 0.0,
        finished, notes,
    )  # fmt: skip
    reduction.repro = write_failure_repro(
        reduction, candidate, values, out, check_arguments, pattern, confirm_arguments or []
    )
    reduction.tests = tester.tests
    reduction.seconds = time.perf_counter() - started
    return reduction


def write_failure_repro(
    reduction: FailureReduction, candidate: Candidate, values: dict[str, str], out: Path,
    check_arguments: list[str], pattern: re.Pattern[str], confirm_arguments: list[str],
) -> Repro:  # fmt: skip
    """model.pb, inputs.npz, reference.npz (when the reference fetched every output),
    README.md; then the check command, run to confirm the failure on its own."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pb").write_bytes(candidate.graph.SerializeToString())
    inputs = {name: tensors.read_tensor(file) for name, _, file in candidate.feeds}
    np.savez(out / "inputs.npz", allow_pickle=False, **npz_arrays(inputs))
    reference = out / "reference.npz"
    reference.unlink(missing_ok=True)
    has_reference = bool(candidate.outputs) and all(t in values for t in candidate.outputs)
    if has_reference:
        expected = {t: tensors.read_tensor(values[t]) for t in candidate.outputs}
        np.savez(reference, allow_pickle=False, **npz_arrays(expected))
    command = [
        "tfinterop", "check", str(out / "model.pb"), "--inputs", str(out / "inputs.npz"),
        *(("--expected", str(reference)) if has_reference else ()),
        *(a for name, _, _ in candidate.feeds for a in ("--input", name)),
        *(a for tensor in candidate.outputs for a in ("--output", tensor)),
        *check_arguments,
    ]  # fmt: skip
    names = ", ".join(name for name, _ in reduction.kept)
    ops = ", ".join(op for _, op in reduction.kept)
    repro = Repro(out, names, ops, len(candidate.graph.node), command)
    kept_lines = "".join(f"- `{name}` ({op})\n" for name, op in reduction.kept)
    cut_lines = "".join(f"- `{t}` -> placeholder `{p}`\n" for t, p in candidate.cut.items())
    (out / "README.md").write_text(
        f"# Repro: {reduction.consumer} fails with `/{reduction.regex}/` on "
        f"{len(candidate.graph.node)} nodes\n\n"
        f"Written by `tfinterop reduce --fail-regex`: delta debugging over the graph's "
        f"{reduction.full_nodes} nodes kept these ({reduction.tests} consumer runs):\n\n"
        f"{kept_lines}\n"
        + (f"Inputs cut from the rest of the graph, fed with the reference's values "
           f"(inputs.npz):\n\n{cut_lines}\n" if cut_lines else "")
        + "reference.npz: " + ("the reference's values of the outputs fetched.\n\n"
                               if has_reference else
                               "none (the reference did not fetch every output).\n\n")
        + f"What the full graph did:\n\n```\n{reduction.full_failure.strip()}\n```\n\n"
        f"Reproduce:\n\n```\n{shlex.join(command)}\n```\n"
    )  # fmt: skip

    def reproduced(row: dict[str, Any]) -> bool:
        return (
            row["consumer"] == reduction.consumer
            and row["status"] in ("error", "incompatible", "xfail")
            and matches(pattern, observed(row["message"]))
        )

    confirm(repro, reproduced, confirm_arguments, observed)
    if not repro.reproduces:
        repro.notes.insert(
            0, f"the repro's failure does not match /{reduction.regex}/ when run on its own"
        )
    return repro


def observed(message: str) -> str:
    """A row's message without the prediction or declaration in front of what happened."""
    for marker in (" — observed: ", ", but failed otherwise: "):
        if marker in message:
            return message.split(marker, 1)[1]
    return message
