"""``python -m bench`` (what ``make bench`` runs), from the repository root: benchmark the
API against a bare ASGI floor and write a Markdown report. Defaults come from Options."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from bench.options import MAX_STORE_LATENCY, Options


def parse(argv: list[str]) -> tuple[Options, bool]:
    """The run's options from the command line, and whether --quick was given."""
    d = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the API against a bare ASGI floor; writes a Markdown report.",
    )
    parser.add_argument("--events", type=int, default=d.events, help="events to seed (%(default)s)")
    parser.add_argument(
        "--duration", type=float, default=d.duration, help="seconds per scenario (%(default)s)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=d.connections,
        help="concurrent connections (%(default)s)",
    )
    parser.add_argument("--hot", type=int, default=d.hot, help="ids in the hot set (%(default)s)")
    parser.add_argument(
        "--store-latency",
        type=float,
        default=d.store_latency,
        help="seconds per store call in scenario 7 (%(default)s)",
    )
    parser.add_argument(
        "--stampede", type=int, default=d.stampede, help="concurrent GETs of one id (%(default)s)"
    )
    parser.add_argument(
        "--out", type=Path, default=d.out, help="report; SVG beside it (%(default)s)"
    )
    parser.add_argument(
        "--loadgen",
        choices=["python", "wrk", "auto"],
        default=d.loadgen,
        help="auto: wrk if found (%(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        choices=[1, 2],
        default=d.workers,
        help="2: also 2 workers + Redis (%(default)s)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        default=d.pin,
        help="do not pin processes to CPUs",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if min(args.events, args.connections, args.hot, args.stampede) < 1 or args.duration <= 0:
        parser.error("sizes and --duration must be positive")
    if not 0 <= args.store_latency <= MAX_STORE_LATENCY:
        parser.error(f"--store-latency must be between 0 and {MAX_STORE_LATENCY:g} seconds")
    opts = Options(
        events=args.events,
        duration=args.duration,
        connections=args.connections,
        hot=args.hot,
        store_latency=args.store_latency,
        stampede=args.stampede,
        out=args.out,
        loadgen=args.loadgen,
        workers=args.workers,
        pin=args.pin,
        command=shlex.join(["python", "-m", "bench", *argv]),
    )
    return opts, args.quick


def main(argv: list[str] | None = None) -> int:
    opts, quick = parse(sys.argv[1:] if argv is None else argv)

    from bench.runner import run

    return run(opts.quick() if quick else opts)


if __name__ == "__main__":
    sys.exit(main())
