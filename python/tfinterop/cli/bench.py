"""``tfinterop bench``: latency, load time and peak RSS per cell, the ratios, the warm
interop run against its lower bound, check against saved_model_cli."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from . import options

if TYPE_CHECKING:  # imported when the command runs: the CLI starts without the bench package
    from ..bench.settings import BenchSettings


def add_parser(sub: Any) -> None:
    bench = sub.add_parser(
        "bench", help="latency, load time and peak RSS per cell; Rust/C/Python ratios"
    )
    options.fixture_options(bench)
    bench.add_argument("--consumer", "-c", action="append", dest="consumers", metavar="NAME")
    bench.add_argument(
        "--repeat",
        type=options.positive,
        default=100,
        help="timed steady runs per cell (default 100)",
    )
    bench.add_argument(
        "--warmup",
        type=int,
        default=100,
        # Measured: a fresh process's first 20-80 runs of a µs-scale graph take ~90 µs, then
        # settle at 11-20 µs, in C and Rust alike; with 10 warm-up runs the p50 fell in
        # either mode at random (the "8-11x rust/c" of an earlier bench).
        help="untimed runs before timing (default 100: TensorFlow's first runs are slow)",
    )
    bench.add_argument("--threads", type=options.threads, default=(0, 0), metavar="INTRA,INTER")
    bench.add_argument("--onednn", choices=("0", "1"), default=None)
    bench.add_argument("--timeout", type=float, default=900.0)
    bench.add_argument("--json", type=Path, metavar="FILE")
    bench.add_argument(
        "--write", type=Path, metavar="DIR", help="refresh committed results (benchmarks/)"
    )
    bench.add_argument("--no-build", action="store_true")
    bench.add_argument(
        "--no-interop-timing", dest="interop_timing", action="store_false",
        help="skip timing a warm `tfinterop interop` against its floor",
    )  # fmt: skip
    bench.add_argument(
        "--warm-runs", type=options.positive, default=3, metavar="N",
        help="timed warm interop runs (median, min-max reported), each followed by a -j 1 run "
        "timing every consumer alone for the floor (default 3)",
    )  # fmt: skip
    bench.add_argument(
        "--interop-jobs", type=options.positive, default=None, metavar="N",
        help="-j of the timed interop runs, and the floor's workers (default: interop's)",
    )  # fmt: skip
    bench.add_argument(
        "--no-profile-misses", dest="profile_misses", action="store_false",
        help="don't explain missed latency targets with callgrind instruction profiles",
    )  # fmt: skip
    bench.add_argument(
        "--rerender", type=Path, metavar="RESULTS_JSON",
        help="re-derive expectations, ratios and explanations of saved results (no measuring)",
    )  # fmt: skip
    bench.add_argument(
        "--profile-budget", type=float, default=300.0, metavar="SECONDS",
        help="skip a profile whose estimated callgrind time exceeds this (default 300)",
    )  # fmt: skip
    bench.add_argument(
        "--cold", action="store_true",
        help="also time a cold `nox -s interop` in a fresh clone of the committed tree",
    )  # fmt: skip
    bench.add_argument(
        "--no-check-timing", dest="check_timing", action="store_false",
        help="skip timing `tfinterop check` against `saved_model_cli run` (MobileNetV3)",
    )  # fmt: skip
    bench.add_argument(
        "--check-runs", type=options.positive, default=3, metavar="N",
        help="alternating check / saved_model_cli runs timed (default 3)",
    )  # fmt: skip
    bench.add_argument(
        "--no-locate-timing", dest="locate_timing", action="store_false",
        help="skip timing `tfinterop locate` and `reduce` on MobileNetV3 (--check-runs runs each)",
    )  # fmt: skip
    bench.add_argument(
        "--no-runtime-timing", dest="runtime_timing", action="store_false",
        help="skip timing what one more --runtime adds to warm and first interop runs",
    )  # fmt: skip
    bench.add_argument(
        "--no-sandbox-timing", dest="sandbox_timing", action="store_false",
        help="skip timing what the consumer sandbox adds to a process start and a run",
    )  # fmt: skip
    bench.add_argument(
        "--sandbox-pairs", type=options.positive, default=10, metavar="N",
        help="alternating plain/sandboxed pairs of whole consumer processes timed per "
        "consumer (default 10; the start alone is timed in 30 pairs of `PROGRAM --help`)",
    )  # fmt: skip
    bench.add_argument(
        "--gap-processes", type=int, default=4, metavar="N",
        help="processes per consumer, alternating, for the per-run p50 difference on "
        "microsecond-scale cells (registry PER_RUN_GAPS; default 4, 0: skip)",
    )  # fmt: skip
    options.common(bench)


def bench_settings(args: argparse.Namespace) -> BenchSettings:
    """The bench command's options as the bench core's settings."""
    from ..bench.settings import BenchSettings

    return BenchSettings(
        build_dir=args.build_dir,
        fixtures=options.fixture_selection(args),
        consumers=args.consumers,
        repeat=args.repeat,
        warmup=args.warmup,
        threads=args.threads,
        onednn=args.onednn,
        timeout_s=args.timeout,
        json=args.json,
        write=args.write,
        build=not args.no_build,
        interop_timing=args.interop_timing,
        warm_runs=args.warm_runs,
        interop_jobs=args.interop_jobs,
        profile_misses=args.profile_misses,
        rerender=args.rerender,
        profile_budget_s=args.profile_budget,
        cold=args.cold,
        check_timing=args.check_timing,
        check_runs=args.check_runs,
        locate_timing=args.locate_timing,
        runtime_timing=args.runtime_timing,
        sandbox_timing=args.sandbox_timing,
        sandbox_pairs=args.sandbox_pairs,
        gap_processes=args.gap_processes,
    )


def cmd_bench(args: argparse.Namespace, console: Console) -> int:
    environment = options.apply_environment(args.onednn)
    from .. import bench

    settings = bench_settings(args)
    if settings.rerender:
        return bench.rerender(settings, console)
    return bench.run(settings, console, environment)
