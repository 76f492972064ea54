"""``tfinterop locate``: where a consumer's numbers first leave the reference's.

Every fetchable tensor of a frozen graph is fetched by the reference consumer and by each
located consumer in one run (the contract's outputs may name any tensor), compared in
topological order under the cell's tolerance rule (*cumulative*: the first diverging nodes,
and the error along the graph), then each suspect node is run again with the reference
values of its inputs fed (*isolated*), which tells a node that computes differently from one
that only carries an upstream difference.

- ``graph``: the fetchable tensors and their topological order (control-flow branches and
  loop bodies cannot be fetched and are left out);
- ``locate``: the runs and the comparisons;
- ``result``: typed results, the console summary and the JSON document;
- ``reduce``: the first node that computes differently by itself, as a self-contained
  repro (``tfinterop reduce``), and the confirming ``check`` run both kinds of repro share;
- ``failing`` and ``ddmin``: ``reduce --fail-regex``, the smallest subgraph on which a
  consumer's job still fails with a matching error (delta debugging over node sets);
- ``model``: ``locate MODEL``, any SavedModel or GraphDef prepared as ``check`` prepares it
  (a SavedModel signature frozen first).
"""

from __future__ import annotations

from .locate import LocateSettings, locate
from .result import LocateResult

__all__ = ["LocateResult", "LocateSettings", "locate"]
