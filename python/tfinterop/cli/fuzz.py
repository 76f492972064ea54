"""``python -m tfinterop.cli.fuzz`` (``nox -s fuzz``): the fuzzing command line; building and
running the targets is hardening/fuzz.py. Imports no TensorFlow (the session has none)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UserError
from ..hardening import fuzz
from ..paths import project_root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfinterop.cli.fuzz", description=fuzz.__doc__)
    parser.add_argument("--seconds", type=int, default=180, help="per target (default 180)")
    parser.add_argument("--targets", nargs="+", choices=fuzz.TARGETS, default=list(fuzz.TARGETS))
    parser.add_argument("--work-dir", type=Path, default=None, help="default build/fuzz")
    parser.add_argument("--write-seeds", action="store_true", help="regenerate the seed corpus")
    args = parser.parse_args(argv)
    root = project_root()
    try:
        if args.write_seeds:
            for path in fuzz.write_seeds(root):
                print(path.relative_to(root))
            return 0
        if args.seconds < 1:
            raise UserError("--seconds must be >= 1")
        work = (args.work_dir or root / "build" / "fuzz").resolve()
        outcomes = fuzz.run_targets(args.targets, args.seconds, work)
    except UserError as exc:
        print(f"tfinterop fuzz: {exc}", file=sys.stderr)
        return 2
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(
            f"tfinterop fuzz: {len(failed)} target(s) failed: "
            + ", ".join(o.target for o in failed)
            + "; reproducers under "
            + str(work / "artifacts"),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
