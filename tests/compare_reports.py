"""Compare two `tfinterop interop --json` reports cell by cell (issue 12's acceptance check).

    python tests/compare_reports.py BEFORE.json AFTER.json

Exit 0 when both have the same cells (fixture, format, signature, consumer) with the same
status and the same max abs/rel errors; otherwise each difference is printed and the exit
status is 1. Timings and messages are not compared (they change from run to run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KEY = ("fixture", "format", "signature", "consumer")
COMPARED = ("status", "max_abs", "max_rel")


def cells(path: Path) -> dict[tuple[str, ...], dict[str, Any]]:
    rows = json.loads(path.read_text())["rows"]
    return {tuple(str(row[k]) for k in KEY): row for row in rows}


def differences(before: Path, after: Path) -> list[str]:
    old, new = cells(before), cells(after)
    found = [f"only in {before.name}: {'/'.join(k)}" for k in sorted(old.keys() - new.keys())]
    found += [f"only in {after.name}: {'/'.join(k)}" for k in sorted(new.keys() - old.keys())]
    for key in sorted(old.keys() & new.keys()):
        for field in COMPARED:
            if old[key].get(field) != new[key].get(field):
                found.append(
                    f"{'/'.join(key)}: {field} {old[key].get(field)!r} -> {new[key].get(field)!r}"
                )
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    before, after = map(Path, argv)
    found = differences(before, after)
    for line in found:
        print(line)
    count = len(cells(before))
    print(
        f"{count} cells compared: {'no differences' if not found else f'{len(found)} differences'}"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
