"""The issue's targets (issue 11), each checked against the rows of this run, then the
guarantees earlier issues set that must keep holding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.options import SLOW_CONNECTIONS
from bench.results import Row

PEERS = {"peer-tutorial": "tutorial cache-aside", "peer-fastapi-cache": "fastapi-cache2 @cache"}
RATES = ("rate50-item", "rate80-item", "rate50-list", "rate80-list")


@dataclass(frozen=True)
class Target:
    text: str
    measured: str
    met: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**not met**", None: "not measured"}[self.met]


def _ran(rows: dict[str, Row], key: str) -> Row | None:
    row = rows.get(key)
    return row if row is not None and row.load is not None and row.load.requests else None


def _rps(rows: dict[str, Row], key: str) -> float | None:
    row = _ran(rows, key)
    return row.load.rps if row is not None and row.load is not None else None


def _times(rows: dict[str, Row], numerator: str, denominator: str) -> float | None:
    """requests/s of one row over another's; None unless both ran."""
    top, bottom = _rps(rows, numerator), _rps(rows, denominator)
    return None if top is None or not bottom else top / bottom


def _at_least(text: str, value: float | None, goal: float, fmt: str = "{:.2f}x") -> Target:
    return Target(text, "-" if value is None else fmt.format(value), _check(value, goal))


def _check(value: float | None, goal: float, most: bool = False) -> bool | None:
    if value is None:
        return None
    return value <= goal if most else value >= goal


def evaluate(rows_seq: Sequence[Row], latency_ms: float) -> list[Target]:
    rows = {r.key: r for r in rows_seq}
    out: list[Target] = []
    for cache in ("memory", "redis"):
        row = _ran(rows, f"cached-{cache}")
        text = f"cached item GET throughput >= 0.50x the floor ({cache})"
        out.append(_at_least(text, row.ratio if row else None, 0.50))
    page = _ran(rows, "lists-cached")
    text = "cached list page (scenario 6, cached) >= 0.40x the floor"
    out.append(_at_least(text, page.ratio if page else None, 0.40))
    kept = _times(rows, "cached-logged", "cached-unlogged")
    cost = None if kept is None else 1 - kept
    out.append(
        Target(
            "request log on the cached hit path costs <= 5% of its throughput",
            "-" if cost is None else f"{cost:.1%}",
            _check(cost, 0.05, most=True),
        )
    )
    for cache in ("memory", "redis"):
        row = _ran(rows, f"zipf-{cache}")
        per_1k = row.per_1k if row else None
        out.append(
            Target(
                f"Zipf reads with 5% writes: store reads <= 3% of requests ({cache})",
                "-" if per_1k is None else f"{per_1k / 10:.2f}%",
                _check(per_1k, 30, most=True),
            )
        )
    many = _times(rows, "slow-cached-many", "slow-uncached-many")
    usual = _times(rows, "slow-cached", "slow-uncached")
    conns = _ran(rows, "slow-cached")
    measured = "-" if many is None else f"{many:.1f}x"
    if usual is not None and conns is not None and conns.load is not None:
        measured += f" ({usual:.1f}x at {conns.load.connections} connections)"
    out.append(
        Target(
            f"with {latency_ms:g} ms simulated store latency: cached throughput >= 20x "
            f"uncached at {SLOW_CONNECTIONS} connections",
            measured,
            _check(many, 20),
        )
    )
    out.append(_rates(rows))
    out.append(_peers(rows))
    out.extend(_kept(rows))
    return out


def _rates(rows: dict[str, Row]) -> Target:
    """Latency at a fixed arrival rate: a reported measurement, met once every row ran."""
    ran = [row for key in RATES if (row := _ran(rows, key)) is not None and row.load]
    measured = "; ".join(
        f"{r.key.removeprefix('rate').replace('-', '% ')} p99 {r.load.p99:.2f} ms"
        for r in ran
        if r.load is not None
    )
    return Target(
        "latency at 50% and 80% of the measured maximum (open loop): p50/p99/p99.9 of the "
        "cached item and list GETs reported",
        measured or "-",
        None if not ran else len(ran) == len(RATES),
    )


def _peers(rows: dict[str, Row]) -> Target:
    ours = _rps(rows, "cached-redis")
    peers = [(rps, name) for key, name in PEERS.items() if (rps := _rps(rows, key))]
    text = "ours (item hit, redis) >= 4x the best peer"
    if ours is None or not peers:
        return Target(text, "-", None)
    best, name = max(peers)
    times = ours / best
    return Target(text, f"{times:.2f}x (best: {name}, {best:,.0f} req/s)", times >= 4)


def _kept(rows: dict[str, Row]) -> list[Target]:
    """What earlier issues guaranteed (never stale, one store read per stampede) or set
    (concurrency 1), still checked."""
    out = []
    zipf = ("zipf-memory", "zipf-redis", "zipf-writers")
    stale = [r.stale for k in zipf if (r := _ran(rows, k))]
    out.append(
        Target(
            "kept: Zipf reads with 5% writes: zero stale reads",
            " + ".join(str(s) for s in stale) if stale else "-",
            None if not stale else all(s == 0 for s in stale),
        )
    )
    for cache in ("memory", "redis"):
        row = _ran(rows, f"stampede-{cache}")
        reads = row.store_reads if row else None
        out.append(
            Target(
                f"kept: stampede: 1 store read ({cache})",
                "-" if reads is None or row is None or row.load is None
                else f"{reads} for {row.load.requests} GETs",
                None if reads is None else reads == 1,
            )
        )  # fmt: skip
    c1 = _ran(rows, "cached-c1")
    p50 = c1.load.p50 if c1 is not None and c1.load is not None else None
    out.append(
        Target(
            "kept (issue 4): cached item GET p50 at concurrency 1 <= 0.5 ms",
            "-" if p50 is None else f"{p50:.3f} ms",
            _check(p50, 0.5, most=True),
        )
    )
    return out
