"""A command abandoned by its caller (cancelled, or out of time) while Redis holds it back
must not leave its late reply on a pooled connection for the next caller to read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from eventapi.cache.base import CacheKey, LookupState, item_key
from eventapi.cache.redis import RedisCache, connect
from tests.cache.faults.helpers import wait_for_redis
from tests.support.api import EVENTS, create
from tests.support.app import RunningApp
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

KEYS = [item_key(f"{n:024x}") for n in range(12)]
LEASE_MS = 60_000


def payload(key: CacheKey) -> bytes:
    return f"value of {key.name}".encode()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    # A long socket timeout, so that only the caller's cancellation abandons a command.
    client = connect(redis_server.url, timeout=5.0)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def cache(client: aioredis.Redis) -> RedisCache:
    return RedisCache(client, "faults-reuse")


async def abandon(cache: RedisCache, key: CacheKey, how: str) -> None:
    """Start a lease that Redis holds back, and give up on it."""
    if how == "timeout":
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await cache.lease(key, LEASE_MS)
    else:
        task = asyncio.create_task(cache.lease(key, LEASE_MS))
        done, _ = await asyncio.wait({task}, timeout=0.05)  # it must not finish: Redis is paused
        assert not done, "the lease was answered: the pause is not in effect"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def until_answering(cache: RedisCache) -> None:
    """Bounded poll: PING until the pause is over (each timed-out PING is abandoned too)."""

    async def answered() -> bool:
        try:
            async with asyncio.timeout(0.1):
                await cache.ping()
        except TimeoutError:
            return False
        return True

    await eventually(answered, "Redis answering PING again", within=10.0, step=0)


async def check(cache: RedisCache, key: CacheKey) -> None:
    lookup = await cache.lease(key, LEASE_MS)
    assert lookup.state is LookupState.HIT, (key, lookup)
    assert lookup.resolved.endswith(key.name), (key, lookup.resolved)
    assert lookup.value == payload(key), (key, lookup.value)


@pytest.mark.parametrize("how", ["timeout", "cancel"])
@pytest.mark.parametrize("mode", ["ALL", "WRITE"])
async def test_abandoned_lease_leaves_no_reply_behind(
    cache: RedisCache, client: aioredis.Redis, redis_server: RedisServer, mode: str, how: str
) -> None:
    for key in KEYS:
        lookup = await cache.lease(key, LEASE_MS)
        assert lookup.state is LookupState.LEASED
        assert lookup.token is not None
        assert await cache.fill(lookup.resolved, lookup.token, payload(key), LEASE_MS)
    await asyncio.gather(*(check(cache, key) for key in KEYS))  # several pooled connections

    pause_ms = "600" if mode == "ALL" else "60000"
    assert redis_server.command("CLIENT", "PAUSE", pause_ms, mode) == b"+OK\r\n"
    try:
        for key in KEYS[:3]:  # one after another: each on the connection the last one left
            await abandon(cache, key, how)
        await asyncio.gather(*(abandon(cache, key, how) for key in KEYS[3:8]))
    finally:
        if mode == "WRITE":  # a pause of ALL holds CLIENT UNPAUSE back too: it runs out
            redis_server.command("CLIENT", "UNPAUSE")
    await until_answering(cache)

    # Every caller from now on gets its own reply: concurrent (40 at a time: the pool holds
    # at most 100 connections), then one at a time.
    order = [KEYS[(n * 5) % len(KEYS)] for n in range(240)]
    for start in range(0, len(order), 40):
        await asyncio.gather(*(check(cache, key) for key in order[start : start + 40]))
    for key in order[:60]:
        await check(cache, key)
    await client.mset({f"plain:{n}": str(n) for n in range(50)})
    replies = await asyncio.gather(*(client.get(f"plain:{n % 50}") for n in range(80)))
    assert replies == [str(n % 50).encode() for n in range(80)]


async def test_app_reads_after_abandoned_leases_get_their_own_event(
    harness: RunningApp, redis_server: RedisServer
) -> None:
    """The same through the app: leases time out (50 ms budget) under CLIENT PAUSE ALL;
    afterwards, many concurrent reads each get the event they asked for."""
    http = harness.http
    events = {e["id"]: e for e in [await create(http, f"event {n}", 1 + n) for n in range(10)]}
    ids = sorted(events)
    for event_id in ids:  # cached: a stale lease reply would carry another event's body
        assert (await http.get(f"{EVENTS}/{event_id}")).status_code == 200

    assert redis_server.command("CLIENT", "PAUSE", "600", "ALL") == b"+OK\r\n"
    during = await asyncio.gather(*(http.get(f"{EVENTS}/{event_id}") for event_id in ids))
    assert [r.json() for r in during] == [events[i] for i in ids]
    assert {r.headers["x-cache"] for r in during} == {"BYPASS"}
    await wait_for_redis(http, "connected", step=harness.settings.cache_breaker_reset)

    async def read(event_id: str) -> tuple[str, httpx.Response]:
        return event_id, await http.get(f"{EVENTS}/{event_id}")

    for _ in range(3):
        results = await asyncio.gather(*(read(ids[n % len(ids)]) for n in range(60)))
        for event_id, response in results:
            assert response.status_code == 200, response.text
            assert response.json() == events[event_id]
    assert "HIT" in {response.headers["x-cache"] for _, response in results}
