"""``python -m tfinterop.cli.leaks`` (``nox -s leaks``): the leak check's command line; the
check itself is hardening/leaks.py."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import UserError
from ..hardening import leaks
from ..paths import project_root
from ..tfenv import DEFAULT_CONSUMER_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tfinterop.cli.leaks", description=leaks.__doc__
    )
    parser.add_argument("--jobs", type=int, default=leaks.DEFAULT_JOBS, help="default 50")
    parser.add_argument("--fixtures", nargs="+", default=list(leaks.DEFAULT_FIXTURES))
    parser.add_argument(
        "--consumer", default=None,
        help="a consumer with a native binary (default: the one declaring leak_check)",
    )  # fmt: skip
    parser.add_argument("--work-dir", type=Path, default=None, help="default build/leaks")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds (default 1800)")
    args = parser.parse_args(argv)
    # The CLI's defaults, before anything imports TensorFlow: they are part of the export
    # cache key (build/exports is shared with `tfinterop interop`) and what consumers run with.
    for key, value in DEFAULT_CONSUMER_ENV.items():
        os.environ.setdefault(key, value)
    try:
        if args.jobs < 1:
            raise UserError("--jobs must be >= 1")
        work = (args.work_dir or project_root() / "build" / "leaks").resolve()
        consumer = leaks.leak_checked_consumer(args.consumer)
        report = leaks.check(args.fixtures, args.jobs, work, consumer, args.timeout)
    except UserError as exc:
        print(f"tfinterop leaks: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    for problem in report.problems:
        print(f"tfinterop leaks: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
