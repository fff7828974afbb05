"""One benchmark run: seed once, then each server configuration in turn (a fresh
copy of the seeded SQLite file each), every scenario in the same run so ratios hold."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from bench import report, scenarios, server, table, writers, wrk
from bench.client import ServerGone
from bench.options import SLOW_CONNECTIONS, Options
from bench.pinning import Pinning
from bench.results import NEEDS_REDIS, Row, label, server_change, set_ratios
from bench.scenarios import Bench
from bench.seed import generate, seed_file
from bench.workloads import LIST_QUERIES, hot_set, item_paths

PEER_NOTES = {
    "peer-tutorial": "bench/peers.py: Redis GET, json.loads, a Pydantic model FastAPI serialises",
    "peer-fastapi-cache": "bench/peers.py: fastapi-cache2 @cache on its RedisBackend",
}


# Alternating rounds of the request log's pair: its cost (a few percent) is smaller than
# the drift between two rows measured minutes apart.
LOG_ROUNDS = 3


def median_round(rounds: list[Row]) -> Row:
    """The round with the median requests/s, its note listing every round's."""
    ranked = sorted(rounds, key=lambda row: row.load.rps if row.load else 0.0)
    row = ranked[len(ranked) // 2]
    each = ", ".join(f"{r.load.rps:,.0f}" if r.load else "-" for r in rounds)
    row.note = f"median of {len(rounds)} rounds alternating with its pair ({each} req/s)"
    return row


def vs_uvicorn(row: Row, uvicorn_row: Row | None) -> str:
    """How ``row`` (on granian) compares with the same measurement on uvicorn."""
    change = server_change(row, uvicorn_row)
    if change is None:
        return "granian; no uvicorn measurement to compare with"
    return f"granian; {change:+.0%} req/s vs the same on uvicorn"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run(opts: Options) -> int:
    generator = opts.loadgen
    if generator == "auto":
        generator = "wrk" if wrk.wrk_path() else "python"
    if generator == "wrk" and wrk.wrk_path() is None:
        say("bench: --loadgen=wrk, but wrk is not installed (apt-get install wrk)")
        return 2
    pinning = Pinning.plan(opts.pin)
    say(f"load generator: {generator}; pinning: {pinning.describe()}")
    with tempfile.TemporaryDirectory(prefix="eventapi-bench-") as tmp:
        bench = _Run(opts, generator, pinning, Path(tmp))
        try:
            bench.all()
        except (ServerGone, RuntimeError, OSError) as exc:
            say(f"bench: {exc}")
            return 1
    report.finish(bench.rows, opts, generator, pinning)
    return 0


class _Run:
    def __init__(self, opts: Options, generator: str, pinning: Pinning, workdir: Path) -> None:
        self.opts, self.pinning, self.workdir = opts, pinning, workdir
        ms = opts.store_latency * 1000
        self.b = Bench(
            pinning, workdir, generator, opts.duration, opts.warmup, opts.connections,
            lambda key: label(key, ms, opts.workers),
        )  # fmt: skip
        self.rows: list[Row] = []
        self.template = workdir / "seeded.db"

    def add(self, *rows: Row) -> None:
        for row in rows:
            self.rows.append(row)
            say(table.progress_line(row))

    def app(
        self,
        name: str,
        cache: str,
        latency: float = 0.0,
        workers: int = 1,
        pin: bool = True,
        log_level: str = "warning",
        database: Path | None = None,
    ) -> AbstractContextManager[int]:
        """The app on a fresh copy of the seeded file (or on ``database``): ``eventapi
        serve`` as users start it, or (with added store latency) slow_app on uvicorn with
        the same options."""
        env = server.app_env(database or self.copy(name), cache, latency, log_level)
        target = server.app_target(latency)
        if target == server.APP:
            return server.eventapi_serve(env, self.workdir, self.pinning, workers=workers, pin=pin)
        return server.uvicorn(target, env, self.workdir, self.pinning, workers=workers, pin=pin)

    def request_log_cost(self, hot: list[str]) -> list[Row]:
        """The same hits with the request log off and on (logs.RequestLog, as `eventapi
        serve` runs), both servers up and measured in alternating rounds: a drift of the
        machine over the run's minutes falls on both alike. Each row is its median round."""
        rounds: dict[str, list[Row]] = {"cached-unlogged": [], "cached-logged": []}
        with (
            self.app("unlogged", "memory://") as plain,
            self.app("logged", "memory://", log_level="info") as logged,
        ):
            for _ in range(1 if self.opts.is_quick else LOG_ROUNDS):
                for key, port in zip(rounds, (plain, logged), strict=True):
                    rounds[key].append(self.b.measure(key, "memory", port, hot, route="item"))
        return [median_round(measured) for measured in rounds.values()]

    def copy(self, name: str) -> Path:
        database = self.workdir / f"{name}.db"
        shutil.copyfile(self.template, database)
        return database

    def all(self) -> None:
        opts, b = self.opts, self.b
        events = generate(opts.events)
        seed_file(self.template, events)
        titles = {e.id: e.title for e in events}
        hot_ids = hot_set(list(titles), opts.hot)
        hot = item_paths(hot_ids)
        stampede = ("Stampede", opts.stampede)

        floor_env = server.app_env(self.template, "none")
        with server.uvicorn(server.FLOOR, floor_env, self.workdir, self.pinning) as port:
            self.add(*scenarios.floor_rows(b, port, hot))
        with self.app("memory", "memory://") as port:
            item = b.measure("cached-memory", "memory", port, hot, route="item")
            self.add(item)
            self.add(b.measure("cached-c1", "memory", port, hot, route="item", connections=1))
            page = scenarios.lists(b, "lists-cached", "memory", port)
            self.add(page)
            # Latency at a fixed arrival rate (closed-loop rows hide queueing).
            for share in (0.5, 0.8):
                pct = round(share * 100)
                self.add(
                    scenarios.fixed_rate(b, f"rate{pct}-item", "memory", port, hot, item, share)
                )
                self.add(
                    scenarios.fixed_rate(
                        b, f"rate{pct}-list", "memory", port, LIST_QUERIES, page, share
                    )
                )
            self.add(scenarios.zipf(b, "zipf-memory", "memory", port, titles))
            self.add(scenarios.stampede_row(b, "stampede-memory", "memory", port, *stampede))
        self.granian(item, hot)
        self.add(*self.request_log_cost(hot))
        if server.REDIS_SERVER is None:
            why = "redis-server is not installed"
            for key in NEEDS_REDIS:
                self.add(Row(key, b.label(key), "redis", skipped=why))
        else:
            with server.redis(self.workdir, self.pinning) as url:
                with self.app("redis", url) as port:
                    self.add(b.measure("cached-redis", "redis", port, hot, route="item"))
                    self.add(scenarios.zipf(b, "zipf-redis", "redis", port, titles))
                    self.add(scenarios.stampede_row(b, "stampede-redis", "redis", port, *stampede))
                self.peers(url, hot)
            # Never stale across processes: two workers share the store and Redis, and the
            # load's connections (so reads and writes of one id) are spread over both.
            unpinned = dataclasses.replace(b, pinning=Pinning.plan(False))
            with (
                server.redis(self.workdir, self.pinning) as url,
                self.app("two", url, workers=2, pin=False) as port,
            ):
                row = scenarios.zipf(unpinned, "zipf-two", "redis", port, titles)
                row.store_reads = row.per_1k = row.hit_ratio = None  # /metrics is per worker
                row.note += "; not pinned"
                self.add(row)
            self.add(self.concurrent_writers(titles))
        with self.app("none", "none") as port:
            row = b.measure("uncached", "none", port, hot, route="item")
            row.note = "cache off; concurrent reads of one id still share a store read"
            self.add(row)
            self.add(scenarios.lists(b, "lists-uncached", "none", port))
        # The slow store at the run's connections and at SLOW_CONNECTIONS.
        many = SLOW_CONNECTIONS
        with self.app("slow-memory", "memory://", opts.store_latency) as port:
            self.add(b.measure("slow-cached", "memory", port, hot, route="item"))
            self.add(
                b.measure("slow-cached-many", "memory", port, hot, route="item", connections=many)
            )
        with self.app("slow-none", "none", opts.store_latency) as port:
            for key, conns in (("slow-uncached", opts.connections), ("slow-uncached-many", many)):
                row = b.measure(key, "none", port, hot, route="item", connections=conns)
                if opts.store_latency:
                    bound = conns / opts.store_latency
                    row.note = f"{bound:,.0f} req/s if each request waited for a whole store read"
                self.add(row)
        with server.uvicorn(server.FLOOR, floor_env, self.workdir, self.pinning) as port:
            self.add(b.measure("floor-end", "-", port, hot, route=None))
        if opts.workers > 1:
            self.several_workers(hot)
        set_ratios(self.rows)

    def concurrent_writers(self, titles: dict[str, str]) -> Row:
        """zipf-two with several writes of one hot id in flight at once, through both
        processes; its store file records the commit order (bench/writers.py) from before
        the servers start, for judging stale reads after the load."""
        key, unpinned = "zipf-writers", dataclasses.replace(self.b, pinning=Pinning.plan(False))
        database = self.copy("writers")
        writers.install(database)
        with (
            server.redis(self.workdir, self.pinning) as url,
            self.app("writers", url, workers=2, pin=False, database=database) as port,
        ):
            row = scenarios.zipf_writers(unpinned, key, "redis", port, titles, database)
        row.note += "; not pinned"
        return row

    def granian(self, uvicorn_item: Row, hot: list[str]) -> None:
        """The floor and the cached item GET (in-process cache) on granian: the same app and
        load as rows 1 and 2, another server. The notes compare each with uvicorn's."""
        b = self.b
        if server.granian_version() is None:
            why = "granian is not installed (make install)"
            for key, cache in (("floor-granian", "-"), ("cached-granian", "memory")):
                self.add(Row(key, b.label(key), cache, skipped=why))
            return
        floor_env = server.app_env(self.template, "none")
        with server.granian(server.FLOOR, floor_env, self.workdir, self.pinning) as port:
            floor = b.measure("floor-granian", "-", port, hot, route=None)
        env = server.app_env(self.copy("granian"), "memory://")
        with server.granian(server.APP, env, self.workdir, self.pinning) as port:
            item = b.measure("cached-granian", "memory", port, hot, route="item")
        uvicorn_floor = next((r for r in self.rows if r.key == "floor"), None)
        floor.note = vs_uvicorn(floor, uvicorn_floor)
        item.note = vs_uvicorn(item, uvicorn_item)
        self.add(floor, item)

    def peers(self, redis_url: str, hot: list[str]) -> None:
        """The peers' item hits on the same Redis and store, as row 2 measures ours. A peer
        that cannot run (not installed, fails to start) is a skipped row, not a failed run."""
        b = self.b
        for key, target in (
            ("peer-tutorial", server.TUTORIAL),
            ("peer-fastapi-cache", server.FASTAPI_CACHE),
        ):
            why = server.peer_missing(target)
            if why:
                self.add(Row(key, b.label(key), "redis", skipped=why))
                continue
            env = server.peer_env(self.copy(key), redis_url)
            try:
                with server.uvicorn(target, env, self.workdir, self.pinning) as port:
                    row = b.measure(key, "redis", port, hot, route=None)
            except ServerGone as exc:
                row = Row(key, b.label(key), "redis", skipped=str(exc).splitlines()[0])
            row.note = PEER_NOTES[key]
            self.add(row)

    def several_workers(self, hot: list[str]) -> None:
        """uvicorn --workers N with a shared Redis; nothing pinned (N workers need every CPU)."""
        if server.REDIS_SERVER is None:
            self.add(Row("cached-workers", self.b.label("cached-workers"), "redis",
                         skipped="redis-server is not installed"))  # fmt: skip
            return
        n, b = self.opts.workers, dataclasses.replace(self.b, pinning=Pinning.plan(False))
        floor_env = server.app_env(self.template, "none")
        unpinned = "not pinned: the workers and the load generator share every CPU"
        with server.uvicorn(
            server.FLOOR, floor_env, self.workdir, self.pinning, workers=n, pin=False
        ) as port:
            row = b.measure("floor-workers", "-", port, hot, route=None)
            row.note = unpinned
            self.add(row)
        with (
            server.redis(self.workdir, b.pinning) as url,
            self.app("workers", url, workers=n, pin=False) as port,
        ):
            row = b.measure("cached-workers", "redis", port, hot, route=None)
            row.note = unpinned + "; /metrics is per worker, so no store counts"
            self.add(row)
