"""One row of the results table per scenario, and the scenario names (stable keys)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.client import Delta
from bench.options import SLOW_CONNECTIONS
from bench.stats import LoadResult

# key -> label. {latency}: the simulated store latency; {workers}: --workers; {many}:
# SLOW_CONNECTIONS. The table lists rows in the order the run measures them.
SCENARIOS: dict[str, str] = {
    "floor": "1 floor: bare ASGI app, same bytes",
    "floor-python": "1b floor, bundled Python generator",
    "floor-end": "1c floor again, at the end of the run",
    "floor-granian": "1d floor on granian",
    "cached-memory": "2 cached item GET, hot set",
    "cached-granian": "2 cached item GET, hot set, on granian",
    "cached-redis": "2 cached item GET, hot set",
    "peer-tutorial": "10 peer: tutorial cache-aside, item GET, hot set",
    "peer-fastapi-cache": "10 peer: fastapi-cache2 @cache, item GET, hot set",
    "cached-c1": "2 cached item GET, concurrency 1",
    "cached-unlogged": "2 cached item GET, request log off (paired)",
    "cached-logged": "2 cached item GET, request log on (paired)",
    "uncached": "3 uncached item GET",
    "zipf-memory": "4 Zipf reads + writes",
    "zipf-redis": "4 Zipf reads + writes",
    "zipf-two": "4 Zipf reads + writes, 2 server processes",
    "zipf-writers": "4 Zipf reads + concurrent writers of hot ids, 2 server processes",
    "stampede-memory": "5 cold-key stampede",
    "stampede-redis": "5 cold-key stampede",
    "lists-cached": "6 list queries, cached",
    "lists-uncached": "6 list queries, uncached",
    "rate50-item": "9 cached item GET at 50% of its max, open loop",
    "rate80-item": "9 cached item GET at 80% of its max, open loop",
    "rate50-list": "9 cached list GET at 50% of its max, open loop",
    "rate80-list": "9 cached list GET at 80% of its max, open loop",
    "slow-cached": "7 cached item GET, {latency} store",
    "slow-uncached": "7 uncached item GET, {latency} store",
    "slow-cached-many": "7 cached item GET, {latency} store, {many} connections",
    "slow-uncached-many": "7 uncached item GET, {latency} store, {many} connections",
    "floor-workers": "8 floor, {workers} workers",
    "cached-workers": "8 cached item GET, {workers} workers",
}
# Rows measured against a redis-server (skipped when it is not installed), in run order.
NEEDS_REDIS = ("cached-redis", "zipf-redis", "stampede-redis", "peer-tutorial",
               "peer-fastapi-cache", "zipf-two", "zipf-writers")  # fmt: skip
# Rows every run has (the others depend on the options and on wrk being used).
ALWAYS = [k for k in SCENARIOS if k not in {"floor-python", "floor-workers", "cached-workers"}]


@dataclass
class Row:
    key: str
    label: str
    cache: str  # memory | redis | none | - (the floor)
    load: LoadResult | None = None
    ratio: float | None = None  # requests/s over the floor's (same load generator)
    store_reads: int | None = None
    per_1k: float | None = None  # store reads per 1000 requests
    hit_ratio: float | None = None
    stale: int | None = None  # reads that missed an acknowledged write (where checked)
    note: str = ""
    skipped: str = ""  # why the scenario did not run

    def add_delta(self, delta: Delta | None) -> None:
        if delta is None or self.load is None:
            return
        self.store_reads = delta.store_reads
        if self.load.requests:
            self.per_1k = 1000 * delta.store_reads / self.load.requests
        self.hit_ratio = delta.hit_ratio


def label(key: str, latency_ms: float, workers: int) -> str:
    return SCENARIOS[key].format(
        latency=f"{latency_ms:g} ms", workers=workers, many=SLOW_CONNECTIONS
    )


FLOORS = ("floor", "floor-python", "floor-end")


def floor_rps(rows: list[Row]) -> dict[tuple[str, int], list[float]]:
    """The 1-worker floor's requests/s by (load generator, connections), each time measured."""
    out: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        if row.key in FLOORS and row.load is not None and row.load.rps:
            out.setdefault((row.load.generator, row.load.connections), []).append(row.load.rps)
    return out


def set_ratios(rows: list[Row]) -> None:
    """requests/s over the mean of the floor's measurements with the same load generator
    and connection count (the floor is measured at the start and at the end of a run).
    Not for a stampede, nor for an open-loop row, whose rate was chosen, not reached."""
    floors = floor_rps(rows)
    for row in rows:
        if row.load is not None and not row.key.startswith(("stampede", "rate")):
            same = floors.get((row.load.generator, row.load.connections))
            if same:
                row.ratio = row.load.rps / (sum(same) / len(same))


# granian row -> the uvicorn row it repeats on another server (same app, same load).
ON_UVICORN = {"floor-granian": "floor", "cached-granian": "cached-memory"}


def server_change(row: Row, uvicorn_row: Row | None) -> float | None:
    """requests/s of ``row`` over ``uvicorn_row``'s, minus 1; None unless both ran."""
    if row.load is None or uvicorn_row is None or uvicorn_row.load is None:
        return None
    if not uvicorn_row.load.rps:
        return None
    return row.load.rps / uvicorn_row.load.rps - 1
