"""Issue 16 ("Never stale, round 2"): several writers of ONE event at once, through several
server processes, judged in the store's commit order (commit_order.py).

Four hot events, four concurrent writers each per round, the writers of an event spread
over the processes, and background readers of items and list pages through every process.
A write's cache lease must be taken before its store commit: taken after it, it can land
after a later writer's warm fill and let the older value be filled over the newer one
(docs/consistency.md section 6). Some processes reach Redis a few milliseconds farther
away than others (slow_link.py), as across a network: then a lease sent beside the commit
regularly arrives after another process's later write, which a busy event loop also
causes, but only now and then. A correct protocol does not depend on such delays.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

import pytest

from bench.writers import install
from tests.cache.processes.commit_order import Judgement
from tests.cache.processes.hot_writes import (
    Hot,
    Outcome,
    Recorder,
    assert_never_stale,
    cache_warnings,
    list_queries,
    run_rounds,
    seed,
)
from tests.cache.processes.recorder import warm
from tests.cache.processes.slow_link import slow_link
from tests.cache.processes.test_sustained_load import worker_snapshots
from tests.support.cluster import Api, clients
from tests.support.redis_server import RedisServer
from tests.support.server import cluster, wait_for_workers
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

HOT_EVENTS = 4
RELAY = {"cache_relay_interval": 0.25}
FAR = 0.005  # seconds each way between Redis and a process on the far side of the link
# Server processes in the order they first reach Redis: the first far, the next near, ...
FAR_AND_NEAR = (FAR, 0.0)
MIN_ROUNDS = 4  # a 2-core machine runs 20 to 40 in HOT.seconds, a very busy one 6
MIN_READS = 1000
HOT = Hot(
    writers=4,
    rounds=150,
    seconds=6.0,
    readers=8,
    lists=list_queries(4),
    min_rounds=MIN_ROUNDS,
    min_reads=MIN_READS,
)


def assert_not_vacuous(judgement: Judgement, outcome: Outcome, apis: Sequence[Api]) -> None:
    """The load really ran: enough rounds, writes and reads through every process, and the
    cache in use (hits of items and of list pages)."""
    report = judgement.report
    assert outcome.rounds >= MIN_ROUNDS, f"only {outcome.rounds} rounds"
    assert len(report.writes) >= MIN_ROUNDS * HOT_EVENTS * HOT.writers, len(report.writes)
    assert len(report.reads) >= MIN_READS, f"only {len(report.reads)} reads"
    names = {a.name for a in apis}
    assert set(Counter(w.via for w in report.writes)) == names
    assert set(Counter(r.via for r in report.reads)) == names
    outcomes = Counter((r.kind, r.cache) for r in report.reads)
    assert outcomes["item", "HIT"] >= 100, outcomes
    assert outcomes["list", "HIT"] > 0, outcomes


async def hot_rounds(
    db: Path, apis: Sequence[Api], recorder: Recorder | None = None, hot: Hot = HOT
) -> tuple[Recorder, Outcome]:
    recorder = recorder or Recorder()
    events = await seed(recorder, apis, HOT_EVENTS)
    await warm(recorder, apis, events)
    outcome = await run_rounds(recorder, apis, events, db, hot)
    return recorder, outcome


async def test_concurrent_writers_of_one_event_through_two_processes_never_leave_it_stale(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "app.db"
    with (
        slow_link(redis_server.port, FAR_AND_NEAR) as url,
        cluster(tmp_path, server_env(db, url, **RELAY)) as servers,  # A far, B near
    ):
        install(db)
        async with clients(servers) as apis:
            recorder, outcome = await hot_rounds(db, apis)
    judgement = recorder.judge(db)
    summary = f"{recorder.summary(judgement)}\n{outcome.summary()}\n{cache_warnings(servers)}"
    print(summary)
    assert_never_stale(judgement, outcome, summary)
    assert_not_vacuous(judgement, outcome, apis)


async def test_concurrent_writers_through_four_workers_of_one_server_never_leave_it_stale(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "app.db"
    with (
        slow_link(redis_server.port, FAR_AND_NEAR) as url,  # two workers far, two near
        cluster(tmp_path, server_env(db, url, **RELAY), ["W"], workers=4) as (server,),
    ):
        wait_for_workers(server, db, 4)
        install(db)
        # Four connection pools to the one port, each keeping few connections alive, so
        # that the kernel hands new connections to every worker.
        pools = [server] * 4
        async with clients(pools, names=["W1", "W2", "W3", "W4"], keepalive=4) as apis:
            recorder, outcome = await hot_rounds(db, apis)
            snapshots = await worker_snapshots(apis[0], tries=60)
    judgement = recorder.judge(db)
    summary = f"{recorder.summary(judgement)}\n{outcome.summary()}\n{cache_warnings([server])}"
    print(summary, "\nworker counters (update, get):", snapshots)
    assert_never_stale(judgement, outcome, summary)
    assert_not_vacuous(judgement, outcome, apis)
    # Several workers wrote: concurrent writers really met in different processes. (How
    # the kernel spreads connections over the workers varies with the machine's load: one
    # of them may take most of them.)
    writers = [s for s in snapshots if s[0] >= 5]
    assert len(writers) >= 2, f"the writes did not reach several workers: {snapshots}"


class SeriesRecorder(Recorder):
    """The hot events recur (3 weekly occurrences each): an expanded page lists each of
    them three times, every occurrence showing its series' title."""

    created_with = MappingProxyType({"recurrence": "FREQ=WEEKLY;COUNT=3"})


# Expanded pages: each hot series' occurrences, under 4 cache keys.
EXPANDED = Hot(
    writers=HOT.writers,
    rounds=HOT.rounds,
    seconds=HOT.seconds,
    readers=HOT.readers,
    lists=[{**q, "expand": "true", "date_to": "2026-01-01T00:00:00"} for q in list_queries(4)],
    min_rounds=MIN_ROUNDS,
    min_reads=MIN_READS,
)


async def test_concurrent_writers_of_recurring_events_never_leave_an_expanded_page_stale(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Expanded pages (issue 19) are cached and retired like every page: no occurrence
    shows a title older than a write acknowledged before the read was sent."""
    db = tmp_path / "app.db"
    with (
        slow_link(redis_server.port, FAR_AND_NEAR) as url,
        cluster(tmp_path, server_env(db, url, **RELAY)) as servers,
    ):
        install(db)
        async with clients(servers) as apis:
            recorder, outcome = await hot_rounds(db, apis, SeriesRecorder(), EXPANDED)
            page = await apis[0].http.get("/api/events", params=dict(EXPANDED.lists[0]))
    assert len(page.json()) == 3 * HOT_EVENTS
    judgement = recorder.judge(db)
    summary = f"{recorder.summary(judgement)}\n{outcome.summary()}\n{cache_warnings(servers)}"
    print(summary)
    assert_never_stale(judgement, outcome, summary)
    assert_not_vacuous(judgement, outcome, apis)
