"""Issue 16: a Redis with little memory, under two real server processes. With each
maxmemory-policy it may evict any key (entries, leases, the bookkeeping keys) or refuse
what would add to it (noeviction), at any moment, while concurrent writers of a few hot
events race through both processes: no read may then be older than a write acknowledged
before it (judged in commit order, commit_order.py), writes keep being acknowledged, and a
Redis that refuses writes shows on /health. As in test_concurrent_writers.py, one process
is a few milliseconds farther from Redis than the other (slow_link.py), so that the
writers' leases regularly reach Redis late.

Then a Redis that is full to begin with (noeviction) while the operator deletes every event
(`eventapi seed --clear`) or imports events (`eventapi import`): their retirement of the
whole cache, and the relay's, must still get through. (The issue measured every deleted
event served 200 HIT 164 of 164 times over 10 s.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.writers import install
from tests.cache.processes.cache_faults import ask, eventapi, info, refuses_writes, used_memory
from tests.cache.processes.hot_writes import (
    Hot,
    Recorder,
    assert_never_stale,
    cache_warnings,
    list_queries,
    run_rounds,
    seed,
)
from tests.cache.processes.recorder import EVENTS, LIST_PAGE, warm
from tests.cache.processes.slow_link import slow_link
from tests.support.cluster import Api, clients
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

POLICIES = ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "noeviction"]
SMALL = "2mb"  # an empty Redis takes about 1 MB, the two servers' connections 0.4 MB more
SMALL_BYTES = 2 * 1024 * 1024
HEADROOM = 128 * 1024  # bytes above what the warm-up cached: a dozen list pages
RELAY = {"cache_relay_interval": 0.25}
EVENT_COUNT = 60  # each its own item entry; every list page holds them all
# Four of them written by four writers each, every round; 200 list queries, each its own
# page entry of about 15 KB (and every write retires them all): several times what the
# Redis can hold, soon after the start.
HOT = Hot(seconds=4.0, lists=list_queries(200), list_every=2, written=4)
REFUSING = Hot(seconds=2.0, lists=list_queries(20), list_every=2, written=4)
MIN_ROUNDS = 2  # the writes, evictions and refusals counted below say more
MIN_EVICTED = 20  # keys, at least, with an evicting policy: memory really ran out
FAR_AND_NEAR = (0.005, 0.0)  # seconds each way to Redis: A, then B
HEALTH_TELLS_WITHIN = 5.0  # /health must tell that Redis refuses writes within this long
JUNK = 256 * 1024  # bytes of one junk value filling Redis up
FRESH_FOR = 2.0  # seconds of reads after a bulk write, through every process
DEGRADED = {"status": "degraded", "redis": "refusing writes"}


@contextmanager
def small_redis(workdir: Path, policy: str, maxmemory: str = SMALL) -> Iterator[RedisServer]:
    args = ["--maxmemory", maxmemory, "--maxmemory-policy", policy]
    server = RedisServer(workdir, extra_args=args).start()
    try:
        yield server
    finally:
        server.stop()


def refusals(redis: RedisServer) -> int:
    """Commands Redis has refused for want of memory (INFO errorstats)."""
    stat = info(redis, "errorstats").get("errorstat_OOM", "count=0")
    return int(stat.split(",")[0].removeprefix("count="))


def fill_up(redis: RedisServer) -> None:
    """Make Redis refuse writes, and stay refusing: junk values that never expire (if it
    still takes them), then a limit clearly below what it holds."""
    for n in range(4):
        ask(redis, "SET", f"test:junk:{n}", "x" * JUNK)
    ask(redis, "CONFIG", "SET", "maxmemory", str(used_memory(redis) - 2 * JUNK))
    assert refuses_writes(redis), info(redis, "memory")


async def health_says_refusing(apis: Sequence[Api]) -> list[str]:
    """Poll every process's /health at once until it says Redis refuses writes (bounded);
    what those that never did said last."""

    async def told(api: Api) -> str | None:
        async def refusing() -> bool:
            health = await api.http.get("/health")
            return health.status_code == 200 and all(
                health.json().get(k) == v for k, v in DEGRADED.items()
            )

        try:
            await eventually(refusing, f"/health of {api.name}", within=HEALTH_TELLS_WITHIN)
        except AssertionError:
            return f"{api.name}: {(await api.http.get('/health')).json()}"
        return None

    return [said for said in await asyncio.gather(*map(told, apis)) if said is not None]


@pytest.mark.parametrize("policy", POLICIES)
async def test_a_small_redis_evicting_or_refusing_under_load_serves_no_stale_read(
    tmp_path: Path, policy: str
) -> None:
    db = tmp_path / "app.db"
    unhealthy: list[str] = []
    with (
        small_redis(tmp_path, policy) as redis,
        slow_link(redis.port, FAR_AND_NEAR) as url,
        cluster(tmp_path, server_env(db, url, **RELAY)) as servers,  # A far, B near
    ):
        install(db)
        async with clients(servers) as apis:
            recorder = Recorder()
            events = await seed(recorder, apis, EVENT_COUNT)
            await warm(recorder, apis, events)
            # However slowly a busy machine serves the load: the limit just above what the
            # warm-up left, so that the load's own keys are evicted (or refused) at once.
            limit = min(used_memory(redis) + HEADROOM, SMALL_BYTES)
            ask(redis, "CONFIG", "SET", "maxmemory", str(limit))

            def enough() -> bool:
                # What the checks below need to have happened, which a busy machine, whose
                # processes may spend a while on the store (breaker open, relay behind),
                # reaches later: Redis out of memory, and the cache in use meanwhile.
                if policy == "noeviction":
                    full = refusals(redis) > 0
                else:
                    full = int(info(redis, "stats")["evicted_keys"]) >= MIN_EVICTED
                return full and any(r.cache == "HIT" for r in recorder.reads)

            hot = dataclasses.replace(HOT, min_rounds=MIN_ROUNDS)
            outcome = await run_rounds(recorder, apis, events, db, hot, enough=enough)
            if policy == "noeviction":
                # Full, and now clearly over the limit (what the cache's invalidations free
                # cannot bring it back under): while Redis refuses, /health says so, writes
                # are acknowledged and reads stay fresh through every process.
                fill_up(redis)
                unhealthy = await health_says_refusing(apis)
                more = await run_rounds(recorder, apis, events, db, REFUSING)
                assert refuses_writes(redis), "Redis no longer refused: nothing was judged"
                outcome.rounds += more.rounds
                outcome.violations += more.violations
        evicted = int(info(redis, "stats")["evicted_keys"])
        refused = refusals(redis)
    judgement = recorder.judge(db)
    summary = (
        f"{recorder.summary(judgement)}\n{outcome.summary()}\n"
        f"Redis ({policy}, {SMALL}): {evicted} keys evicted, {refused} commands refused"
        + "".join(f"\n/health not saying {DEGRADED}: {u}" for u in unhealthy)
        + f"\n{cache_warnings(servers)}"
    )
    print(summary)
    assert_never_stale(judgement, outcome, summary)
    assert not unhealthy, summary
    assert outcome.rounds >= MIN_ROUNDS, summary
    # Not vacuous: Redis really ran out of memory, and the cache was in use meanwhile.
    assert refused if policy == "noeviction" else evicted >= MIN_EVICTED, summary
    assert any(r.cache == "HIT" for r in judgement.report.reads), summary


async def read_everything(apis: Sequence[Api], ids: Sequence[str]) -> list[tuple[str, ...]]:
    """Every event and the list page through every process, for FRESH_FOR seconds (and at
    most 100 rounds): what each returned, as (process, event or "list", status, title or
    X-Total-Count, X-Cache)."""

    async def item(api: Api, event: str) -> tuple[str, ...]:
        got = await api.http.get(f"{EVENTS}/{event}")
        title = got.json()["title"] if got.status_code == 200 else ""
        return (api.name, event, str(got.status_code), title, got.headers.get("x-cache", ""))

    async def page(api: Api) -> tuple[str, ...]:
        got = await api.http.get(EVENTS, params=LIST_PAGE)
        total = got.headers.get("x-total-count", "?")
        return (api.name, "list", str(got.status_code), total, got.headers.get("x-cache", ""))

    seen: list[tuple[str, ...]] = []
    deadline = time.monotonic() + FRESH_FOR
    for _ in range(100):
        if time.monotonic() >= deadline:
            break
        for api in apis:
            seen += await asyncio.gather(*(item(api, e) for e in ids), page(api))
    return seen


async def test_a_full_redis_still_retires_what_seed_clear_deleted(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with small_redis(tmp_path, "noeviction", maxmemory="64mb") as redis:
        env = server_env(db, redis.url, **RELAY)
        with cluster(tmp_path, env) as servers:
            async with clients(servers) as apis:
                recorder = Recorder()
                events = await seed(recorder, apis, EVENT_COUNT)
                await warm(recorder, apis, events)  # every event and the page: HITs
                assert {r.cache for r in recorder.reads[-2 * len(events) :]} == {"HIT"}
                fill_up(redis)

                out = await asyncio.to_thread(eventapi, env, tmp_path, "seed", "--clear")
                assert f"Deleted {EVENT_COUNT} events." in out, out
                seen = await read_everything(apis, events)
                still_refusing = refuses_writes(redis)
    served = [s for s in seen if s[1] != "list" and s[2] != "404"]
    full_lists = [s for s in seen if s[1] == "list" and s[3] != "0"]
    summary = (
        f"{len(seen)} reads after `eventapi seed --clear`: {len(served)} served a deleted "
        f"event, {len(full_lists)} lists still full; e.g. {(served + full_lists)[:3]}"
    )
    print(summary)
    assert still_refusing, "Redis no longer refused: nothing was judged"
    assert not served, summary
    assert not full_lists, summary
    assert len({s[0] for s in seen}) == len(apis), summary


async def test_a_full_redis_still_retires_the_not_found_an_import_replaced(
    tmp_path: Path,
) -> None:
    db = tmp_path / "app.db"
    ids = [secrets.token_hex(12) for _ in range(EVENT_COUNT)]  # not there yet
    rows = tmp_path / "events.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"id": i, "title": f"imported {i}", "date": "2025-06-01T12:00:00"}) + "\n"
            for i in ids
        )
    )
    with small_redis(tmp_path, "noeviction", maxmemory="64mb") as redis:
        env = server_env(db, redis.url, **RELAY)
        with cluster(tmp_path, env) as servers:
            async with clients(servers) as apis:
                for api in apis:  # every "not found" cached, and the empty page
                    for event in ids:
                        assert (await api.http.get(f"{EVENTS}/{event}")).status_code == 404
                    page = await api.http.get(EVENTS, params=LIST_PAGE)
                    assert page.headers["x-total-count"] == "0", page.headers
                fill_up(redis)

                out = await asyncio.to_thread(eventapi, env, tmp_path, "import", rows)
                assert f"Imported {EVENT_COUNT} events" in out, out
                seen = await read_everything(apis, ids)
                still_refusing = refuses_writes(redis)
    missing = [s for s in seen if s[1] != "list" and s[2:4] != ("200", f"imported {s[1]}")]
    short_lists = [s for s in seen if s[1] == "list" and s[3] != str(EVENT_COUNT)]
    summary = (
        f"{len(seen)} reads after `eventapi import`: {len(missing)} not the imported event, "
        f"{len(short_lists)} lists without the imported events; "
        f"e.g. {(missing + short_lists)[:3]}"
    )
    print(summary)
    assert still_refusing, "Redis no longer refused: nothing was judged"
    assert not missing, summary
    assert not short_lists, summary
    assert len({s[0] for s in seen}) == len(apis), summary
