"""Delta debugging (Zeller's ``ddmin``): a 1-minimal subset of items for which a test still
fails.

The items are split into ``n`` contiguous chunks; a chunk that fails alone becomes the new
set (granularity back to 2), else a complement that fails does (granularity ``n - 1``), else
the granularity doubles until it reaches single items. The result fails, and removing any
one of its items makes the test pass (relative to the test: ``reduce`` maps each subset to
the subgraph it implies, so two subsets may be one test).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class Budget(Exception):
    """The test budget ran out: ``ddmin`` returns the smallest failing set found so far."""


def _chunks(items: Sequence[T], n: int) -> list[list[T]]:
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return [c for c in out if c]


def ddmin(items: Sequence[T], fails: Callable[[list[T]], bool]) -> tuple[list[T], bool]:
    """The smallest failing subset found, and whether the search finished (``fails`` may
    raise ``Budget`` to stop it). ``items`` itself is taken to fail."""
    current = list(items)
    n = 2
    try:
        while len(current) >= 2:
            chunks = _chunks(current, n)
            found = next((c for c in chunks if fails(c)), None)
            if found is not None:
                current, n = found, 2
                continue
            if n > 2:  # with two chunks each complement is the other chunk, already tested
                complements = (
                    [x for j, chunk in enumerate(chunks) if j != i for x in chunk]
                    for i in range(len(chunks))
                )
                found = next((c for c in complements if fails(c)), None)
                if found is not None:
                    current, n = found, max(n - 1, 2)
                    continue
            if n >= len(current):
                break
            n = min(len(current), 2 * n)
    except Budget:
        return current, False
    return current, True
