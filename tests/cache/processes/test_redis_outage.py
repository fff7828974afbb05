"""Scenarios 3, 4 and 5: Redis frozen (SIGSTOP) or restarted under two server processes.

Writes must keep being accepted while Redis is out, and once it is back every process must
serve the acknowledged write, not the value Redis held from before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cache.processes.history import Report
from tests.cache.processes.load import Recorder, Workload, run, seed
from tests.cache.processes.recorder import warm
from tests.support.cluster import BREAKER_GAUGE, Api, clients, metric, scrape
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import cluster, kill
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

STORE_TIMEOUT = 2.0  # the default, spelled out: the bound on a write during the outage
BREAKER_RESET = 3.0  # the default, spelled out: recovery must not wait for the breaker
FRESH_WITHIN = 1.0  # after the thaw, every read sent later than this must be fresh
WATCH = 4.0  # seconds of reads after the thaw: long enough to see every breaker close


async def read_until_hit(recorder: Recorder, api: Api, event: str) -> None:
    """Item and list page both cached in Redis through ``api`` (bounded)."""

    async def both_hit() -> bool:
        item = await recorder.read_item(api, event)
        (page,) = await recorder.read_list(api, [event])
        return item.cache == page.cache == "HIT"

    await eventually(both_hit, f"{api.name} serving event {event} from the cache", step=0)


async def watch(recorder: Recorder, apis: Sequence[Api], event: str, until: float) -> None:
    """Item reads and list reads through every process until ``until`` (and a count)."""

    async def reader(api: Api, lists: bool) -> None:
        for _ in range(4000):
            if time.monotonic() >= until:
                return
            if lists:
                await recorder.read_list(api, [event])
            else:
                await recorder.read_item(api, event)

    async with asyncio.TaskGroup() as tasks:
        for api in apis:
            tasks.create_task(reader(api, lists=False))
            tasks.create_task(reader(api, lists=True))


@dataclass(frozen=True)
class Outage:
    recorder: Recorder
    event: str
    frozen: float
    thawed: float

    def report(self) -> Report:
        return self.recorder.report()

    def first_fresh(self, via: str) -> float | None:
        """Seconds after the thaw from which every read through ``via`` was fresh."""
        stale = [s.read.sent for s in self.report().stale if s.read.via == via]
        after = [r for r in self.recorder.reads if r.via == via and r.sent >= self.thawed]
        later = [r.sent for r in after if not stale or r.sent > max(stale)]
        return min(later) - self.thawed if later else None

    def describe(self) -> str:
        report = self.report()
        lines = [self.recorder.summary()]
        for via in sorted({r.via for r in self.recorder.reads}):
            fresh = self.first_fresh(via)
            shown = f"{fresh * 1000:.0f} ms" if fresh is not None else "never"
            reads = [r for r in self.recorder.reads if r.via == via and r.sent >= self.thawed]
            lines.append(f"via {via}: {len(reads)} reads after the thaw, fresh from {shown}")
        late = [s for s in report.stale if s.read.sent >= self.thawed + FRESH_WITHIN]
        lines.append(f"stale reads sent {FRESH_WITHIN}s or more after the thaw: {len(late)}")
        return "\n".join(lines)


async def outage(
    redis: RedisServer, apis: Sequence[Api], *, kill_writer: Callable[[], None] | None = None
) -> Outage:
    """Warm, freeze Redis, trip A's breaker with reads, PATCH via A, optionally kill A,
    thaw, then read through every surviving process for WATCH seconds."""
    a, b = apis
    recorder = Recorder()
    (event,) = await seed(recorder, [a], 1)
    await read_until_hit(recorder, a, event)
    await read_until_hit(recorder, b, event)

    redis.freeze()
    frozen = time.monotonic()
    # Traffic on A during the outage: its Redis calls time out, so its breaker opens and
    # the invalidation of the coming write cannot even be sent. B sees no traffic, so
    # nothing tells it that Redis was away.
    for _ in range(3):
        read = await recorder.read_item(a, event)
        assert (read.status, read.version) == (200, 0), read
    for version in (1, 2):
        write = await recorder.write(a, event, version)
        assert write.status == 200, f"write during the Redis outage: {write}"
        assert write.seconds <= STORE_TIMEOUT + 0.5, f"write took {write.seconds:.2f}s"
    if kill_writer is not None:
        kill_writer()
        apis = [b]

    redis.thaw()
    thawed = time.monotonic()
    await watch(recorder, apis, event, until=thawed + WATCH)
    return Outage(recorder, event, frozen, thawed)


def assert_fresh_soon_after_thaw(done: Outage, vias: Sequence[str]) -> None:
    report = done.report()
    summary = done.describe()
    print(summary)
    assert not report.write_errors, summary
    assert not report.read_errors, summary
    assert not report.phantoms, summary
    before = [s for s in report.stale if s.read.sent < done.thawed]
    assert not before, f"stale reads during the outage\n{summary}"
    late = [s for s in report.stale if s.read.sent >= done.thawed + FRESH_WITHIN]
    assert not late, f"stale reads {FRESH_WITHIN}s or more after the thaw\n{summary}"
    for via in vias:
        after = [r for r in report.reads if r.via == via and r.sent >= done.thawed + FRESH_WITHIN]
        assert len(after) >= 20, f"too few reads via {via} to judge\n{summary}"
        assert all(r.version == 2 for r in after), summary


def env_for(tmp_path: Path, redis: RedisServer) -> dict[str, str]:
    return server_env(
        tmp_path / "app.db",
        redis.url,
        store_timeout=STORE_TIMEOUT,
        cache_breaker_reset=BREAKER_RESET,
        cache_relay_interval=0.25,
    )


async def test_after_redis_thaws_both_processes_serve_the_write_made_during_the_freeze(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with cluster(tmp_path, env_for(tmp_path, redis_server)) as servers:
        async with clients(servers) as apis:
            done = await outage(redis_server, apis)
    assert_fresh_soon_after_thaw(done, ["A", "B"])


async def test_write_acked_by_a_process_killed_before_redis_thaws_still_reaches_the_other(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with cluster(tmp_path, env_for(tmp_path, redis_server)) as servers:
        async with clients(servers) as apis:
            done = await outage(redis_server, apis, kill_writer=lambda: kill(servers[0]))
            assert servers[0].proc.poll() is not None
    assert_fresh_soon_after_thaw(done, ["B"])


RESTART_RESET = 0.5  # breaker reset for the restart scenario
AFTER = 10  # probes of each process once it has reconnected: none may find it open again


@dataclass(frozen=True)
class Probe:
    at: float
    via: str
    redis: str
    breaker_open: float


def probes_since_reconnected(probes: Sequence[Probe], name: str) -> int:
    """How many probes of process ``name`` there are from its first connected, closed one."""
    mine = [p for p in probes if p.via == name]
    closed = next(
        (i for i, p in enumerate(mine) if p.redis == "connected" and p.breaker_open == 0),
        len(mine),
    )
    return len(mine) - closed


async def observe(
    apis: Sequence[Api], until: float, after_reconnect: int = 0, overtime: float = 10.0
) -> list[Probe]:
    """/health and /metrics of every process, every ~50 ms, until ``until`` and (a busy
    machine probes more slowly) until each has ``after_reconnect`` probes since it
    reconnected, at most ``overtime`` seconds longer."""
    seen: list[Probe] = []

    def enough() -> bool:
        return all(probes_since_reconnected(seen, a.name) >= after_reconnect for a in apis)

    for _ in range(1000):
        now = time.monotonic()
        if now >= until + overtime or (now >= until and enough()):
            break
        for api in apis:
            health = await api.http.get("/health")
            assert health.status_code == 200, health.text
            samples = await scrape(api)
            seen.append(
                Probe(
                    time.monotonic(),
                    api.name,
                    health.json()["redis"],
                    metric(samples, BREAKER_GAUGE),
                )
            )
        await asyncio.sleep(0.05)  # polling interval, not synchronisation
    return seen


async def test_after_a_redis_restart_both_processes_reconnect_and_stay_connected(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = server_env(
        tmp_path / "app.db",
        redis_server.url,
        cache_breaker_reset=RESTART_RESET,
        cache_relay_interval=0.25,
    )
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            recorder = Recorder()
            events = await seed(recorder, apis, 2)
            await warm(recorder, apis, events)
            stop = asyncio.Event()
            light = Workload(seconds=20.0, readers=4, max_writes=2000)
            load = asyncio.create_task(run(recorder, apis, events, light, stop))

            async def under_way() -> bool:
                return len(recorder.reads) >= 100

            try:
                await eventually(under_way, "light load under way", within=5.0)
                killed = time.monotonic()
                await asyncio.to_thread(redis_server.restart)
                restarted = time.monotonic()
                probes = await observe(
                    apis, until=restarted + RESTART_RESET + 3.0, after_reconnect=AFTER
                )
            finally:
                stop.set()
                await load
    report = recorder.report()
    summary = recorder.summary()
    timeline = [
        f"+{(p.at - restarted) * 1000:.0f} ms {p.via} redis={p.redis} open={p.breaker_open:g}"
        for p in probes
    ]
    origin = recorder.origin
    print(
        summary,
        f"Redis killed at t={killed - origin:.3f}s, answering again at t={restarted - origin:.3f}s",
        *timeline[:12],
        sep="\n",
    )
    summary += f"\nRedis killed at t={killed - origin:.3f}s, up at t={restarted - origin:.3f}s"
    # A process whose breaker is still open after the restart acknowledges writes without
    # reaching Redis; the other process, already reconnected, may serve the old value until
    # the relay applies the write: the bound is 1 s of Redis answering again (the
    # relay's is one interval, 0.25 s). Outside that window: nothing stale.
    late = [s for s in report.stale if s.age > 1.0 or s.read.sent > restarted + RESTART_RESET + 1]
    assert not late, summary
    assert not report.write_errors, summary
    assert not report.read_errors, summary
    assert len(report.writes) >= 20, summary
    writes_after = [w for w in report.writes if w.sent > restarted]
    assert writes_after, "no writes after the restart"
    for api in apis:
        mine = [p for p in probes if p.via == api.name]
        closed = next(
            (i for i, p in enumerate(mine) if p.redis == "connected" and p.breaker_open == 0),
            None,
        )
        assert closed is not None, f"{api.name} never reconnected: {timeline}"
        took = mine[closed].at - restarted
        assert took <= RESTART_RESET + 1.0, f"{api.name} reconnected after {took:.2f}s"
        relapses = [p for p in mine[closed:] if p.redis != "connected" or p.breaker_open != 0]
        assert not relapses, f"{api.name} went back to open: {relapses[:3]}\n{timeline}"
        assert probes_since_reconnected(probes, api.name) >= AFTER, (
            f"too few probes of {api.name} after it reconnected"
        )
