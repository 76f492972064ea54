"""--shard K/N splits fixtures deterministically: each in exactly one shard, balanced."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tfinterop.cli.options import shard as _shard
from tfinterop.fixtures import BrokenFixture, shard_fixtures


def fake(names: list[str]) -> list[BrokenFixture]:
    return [BrokenFixture(name, Path(f"{name}.py"), "") for name in names]


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_fixture_in_exactly_one_balanced_shard(count: int) -> None:
    names = [f"f{i:02d}" for i in range(11)]
    shards = [
        [f.name for f in shard_fixtures(fake(names[::-1]), k, count)] for k in range(1, count + 1)
    ]
    assert sorted(n for shard in shards for n in shard) == names
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    # Deterministic whatever the discovery order.
    assert shards == [
        [f.name for f in shard_fixtures(fake(names), k, count)] for k in range(1, count + 1)
    ]


@pytest.mark.parametrize("bad", ["0/2", "3/2", "x/2", "1-2"])
def test_bad_shard_spec_is_refused(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _shard(bad)
