"""The issue's targets, each checked against the rows of this run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bench.results import Row


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


def evaluate(rows_seq: Sequence[Row], latency_ms: float) -> list[Target]:
    rows = {r.key: r for r in rows_seq}
    out: list[Target] = []
    for cache in ("memory", "redis"):
        row = _ran(rows, f"cached-{cache}")
        ratio = row.ratio if row else None
        out.append(
            Target(
                f"cached item GET throughput >= 0.40x the floor ({cache})",
                "-" if ratio is None else f"{ratio:.2f}x",
                None if ratio is None else ratio >= 0.40,
            )
        )
    quiet, logged = _ran(rows, "cached-memory"), _ran(rows, "cached-logged")
    cost = None
    if quiet and logged and quiet.load and logged.load and quiet.load.rps:
        cost = 1 - logged.load.rps / quiet.load.rps
    out.append(
        Target(
            "request log on the cached hit path costs <= 5% of its throughput",
            "-" if cost is None else f"{cost:.1%}",
            None if cost is None else cost <= 0.05,
        )
    )
    c1 = _ran(rows, "cached-c1")
    out.append(
        Target(
            "cached item GET p50 at concurrency 1 <= 0.5 ms",
            "-" if c1 is None or c1.load is None else f"{c1.load.p50:.3f} ms",
            None if c1 is None or c1.load is None else c1.load.p50 <= 0.5,
        )
    )
    for cache in ("memory", "redis"):
        row = _ran(rows, f"zipf-{cache}")
        per_1k = row.per_1k if row else None
        out.append(
            Target(
                f"Zipf reads with 5% writes: store reads <= 2% of requests ({cache})",
                "-" if per_1k is None else f"{per_1k / 10:.2f}%",
                None if per_1k is None else per_1k <= 20,
            )
        )
    stale = [r.stale for k in ("zipf-memory", "zipf-redis") if (r := _ran(rows, k))]
    out.append(
        Target(
            "Zipf reads with 5% writes: zero stale reads",
            " + ".join(str(s) for s in stale) if stale else "-",
            None if not stale else all(s == 0 for s in stale),
        )
    )
    for cache in ("memory", "redis"):
        row = _ran(rows, f"stampede-{cache}")
        reads = row.store_reads if row else None
        out.append(
            Target(
                f"stampede: 1 store read ({cache})",
                "-" if reads is None or row is None or row.load is None
                else f"{reads} for {row.load.requests} GETs",
                None if reads is None else reads == 1,
            )
        )  # fmt: skip
    cached, uncached = _ran(rows, "slow-cached"), _ran(rows, "slow-uncached")
    times = None
    if cached and uncached and cached.load and uncached.load and uncached.load.rps:
        times = cached.load.rps / uncached.load.rps
    out.append(
        Target(
            f"with {latency_ms:g} ms simulated store latency: cached throughput >= 20x uncached",
            "-" if times is None else f"{times:.1f}x",
            None if times is None else times >= 20,
        )
    )
    return out
