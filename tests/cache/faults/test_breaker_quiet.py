"""While the breaker is open, Redis costs nothing: not one command reaches it.

Design: INFO cannot be read from a frozen or CLIENT PAUSE ALL'd server, so the breaker is
opened by a real failure (SIGKILL, then two failing reads), and then a fresh redis-server
is started on the same port. The app's breaker does not know Redis is back, and with a
long reset (60 s) no probe runs during the test, so the new server's own counters
(total_commands_processed, total_connections_received) measure exactly what the app sends
while its breaker is open: it must be nothing. A wrapper around GuardedCache's inner cache
counts the calls that get past the breaker, as a second witness. A control at the end lets
the breaker close and shows the same measurement does see the app's traffic.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Generic

import httpx
import pytest

from eventapi.cache.base import Cache, CacheBackend, CacheKey, Fill, Lookup, V, WriteLease
from eventapi.changes import Change
from tests.cache.faults.helpers import (
    Json,
    fault_settings,
    health,
    read_until_hit,
    redis_stat,
    scrape,
    value,
    wait_for_redis,
)
from tests.support.api import EVENTS, create, event
from tests.support.app import run_app
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


class CountingCache(Generic[V]):
    """Delegates to the real cache and counts every call that reaches it."""

    def __init__(self, inner: Cache[V]) -> None:
        self.inner = inner
        self.backend: CacheBackend = inner.backend
        self.failures = inner.failures
        self.refusals = inner.refusals
        self.calls: Counter[str] = Counter()

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup[V]:
        self.calls["lease"] += 1
        return await self.inner.lease(key, lease_ms)

    async def fill(self, resolved: str, token: str, value: V, ttl_ms: int) -> bool:
        self.calls["fill"] += 1
        return await self.inner.fill(resolved, token, value, ttl_ms)

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        self.calls["lease_for_write"] += 1
        return await self.inner.lease_for_write(key, lease_ms)

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill[V]] = ()
    ) -> None:
        self.calls["invalidate"] += 1
        await self.inner.invalidate(item_names, seqs, fills)

    async def retire_all(self) -> None:
        self.calls["retire_all"] += 1
        await self.inner.retire_all()

    async def watermark(self) -> int | None:
        self.calls["watermark"] += 1
        return await self.inner.watermark()

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        self.calls["catch_up"] += 1
        await self.inner.catch_up(changes, through)

    async def reset(self, head: int) -> None:
        self.calls["reset"] += 1
        await self.inner.reset(head)

    async def reconnect(self) -> None:
        self.calls["reconnect"] += 1
        await self.inner.reconnect()

    async def ping(self) -> None:
        self.calls["ping"] += 1
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()


def server_counters(redis_server: RedisServer) -> tuple[int, int]:
    info = redis_server.command("INFO", "stats")
    return (
        redis_stat(info, "total_commands_processed"),
        redis_stat(info, "total_connections_received"),
    )


async def traffic(http: httpx.AsyncClient, model: dict[str, Json]) -> list[httpx.Response]:
    """60 requests of every kind, 10 at a time; checks the bodies; updates ``model``."""
    ids = sorted(model)
    responses: list[httpx.Response] = []
    for batch in range(6):
        target = ids[batch % len(ids)]
        readable = [i for i in ids if i != target]
        calls = [
            http.put(f"{EVENTS}/{target}", json=event(f"quiet {batch}", 1 + batch)),
            http.post(EVENTS, json=event(f"posted {batch}", 20)),
            http.get(EVENTS, params={"limit": "100"}),
            http.get(EVENTS, params={"category": "none", "limit": "3"}),
            http.get("/health"),
            *(http.get(f"{EVENTS}/{i}") for i in readable[:5]),
        ]
        batch_responses = await asyncio.gather(*calls)
        put, post, _, _, healthz, *reads = batch_responses
        assert put.status_code == 200, put.text
        model[target] = put.json()
        assert post.status_code == 201, post.text
        model[post.json()["id"]] = post.json()
        assert healthz.status_code == 200
        assert healthz.json()["status"] == "degraded"
        for event_id, read in zip(readable[:5], reads, strict=True):
            assert read.status_code == 200, read.text
            assert read.json() == model[event_id]
        responses += batch_responses
    return responses


async def test_open_breaker_sends_no_command_to_redis(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Redis is killed, not frozen, here: its calls fail at once, whatever their budget. A
    # budget of 0.5 s keeps a slow call while the machine is busy (a CI run saw one past
    # 50 ms while caching the events) from counting towards opening the breaker early.
    settings = fault_settings(tmp_path, redis_server.url, breaker_reset=60.0, cache_timeout=0.5)
    async with run_app(settings) as harness:
        http = harness.http
        events = [await create(http, f"event {n}", 1 + n) for n in range(6)]
        model = {e["id"]: e for e in events}
        for event_id in model:
            await read_until_hit(http, f"{EVENTS}/{event_id}", step=0.0, max_reads=4)
        counting = CountingCache(harness.guard.inner)
        harness.guard.inner = counting

        redis_server.kill()
        for event_id in sorted(model)[:2]:  # two failures open the breaker
            response = await http.get(f"{EVENTS}/{event_id}")
            assert response.headers["x-cache"] == "BYPASS"
        assert value(await scrape(http), "eventapi_cache_breaker_open") == 1.0
        redis_server.restart()  # Redis is back, but the breaker has not looked yet

        errors_before = await scrape(http)
        calls_before = sum(counting.calls.values())
        first = server_counters(redis_server)
        before = server_counters(redis_server)
        # What reading the counters costs by itself: one INFO command, one connection.
        per_read = (before[0] - first[0], before[1] - first[1])
        assert per_read == (1, 1)

        responses = await traffic(http, model)

        after = server_counters(redis_server)
        assert (after[0] - before[0], after[1] - before[1]) == per_read, (
            "the app talked to Redis while its breaker was open"
        )
        assert sum(counting.calls.values()) == calls_before, counting.calls
        assert len(responses) == 60
        assert all(r.status_code < 500 for r in responses)
        reads = [r for r in responses if "x-cache" in r.headers]
        assert len(reads) == 42
        assert {r.headers["x-cache"] for r in reads} == {"BYPASS"}
        errors_after = await scrape(http)
        for operation in ("lease", "fill", "invalidate", "ping"):
            name = "eventapi_cache_errors_total"
            assert value(errors_after, name, operation=operation) == value(
                errors_before, name, operation=operation
            )
        assert value(errors_after, "eventapi_cache_breaker_open") == 1.0

        # Control: once the breaker has probed, the same counters see the app's traffic.
        # (The background prober sleeps out the 60 s reset; run its probe now instead.)
        harness.guard.breaker.reset_timeout = 0.0
        assert harness.guard.breaker.begin_probe()
        await harness.guard.probe()
        await wait_for_redis(http, "connected", step=0.01)
        assert (await health(http))["status"] == "healthy"
        before = server_counters(redis_server)
        some_id = sorted(model)[0]
        responses = await read_until_hit(http, f"{EVENTS}/{some_id}", step=0.0, max_reads=2)
        assert [r.json() for r in responses] == [model[some_id]] * 2
        after = server_counters(redis_server)
        assert after[0] - before[0] > per_read[0]
        assert counting.calls["lease"] >= 2
