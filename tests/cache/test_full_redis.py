"""A full Redis (maxmemory, noeviction: Redis's default policy) refuses what would add to it,
and never what retires an entry (cache/redis/scripts.py, BOOKKEEPING).

Each test fills a private redis-server with junk until it refuses a SET, then lowers its
maxmemory below what it holds, so it stays full whatever the test's own keys weigh. The
cache's invalidations, catch-up, reset and retire_all must still work then: an entry that
was cached before Redis filled up must never be served after its write. Leases, fills and
a warm write's value are refused: the reads go to the store.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.exceptions import ResponseError

from eventapi.cache.base import CacheKey, CacheUnavailable, Fill, LookupState
from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.guard import REFUSING, GuardedCache
from eventapi.cache.redis import RedisCache
from eventapi.changes import Change
from tests.cache.helpers import cache_anew, private_cache
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

ITEM = CacheKey("item:a")
OTHER = CacheKey("item:b")
PAGE = CacheKey("list:0123", is_list=True)
LEASE_MS = 60_000
TTL_MS = 60_000


@pytest.fixture
def full_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    workdir = tmp_path_factory.mktemp("full-redis")
    server = RedisServer(workdir, extra_args=["--maxmemory-policy", "noeviction"]).start()
    try:
        yield server
    finally:
        server.stop()


def fill_up(server: RedisServer) -> None:
    """Make ``server`` refuse every memory-growing command from now on."""
    used = int(_info(server, "used_memory"))
    server.command("CONFIG", "SET", "maxmemory", str(used + 2 * 1024 * 1024))
    junk = "x" * 64 * 1024
    for n in range(1000):  # bounded: 64 MiB of junk at most, well past the 2 MiB of room
        if server.command("SET", f"junk:{n}", junk).startswith(b"-OOM"):
            break
    else:
        raise AssertionError("Redis never refused a write")
    # Well below what it holds: the test's own small keys cannot make room.
    server.command("CONFIG", "SET", "maxmemory", str(int(_info(server, "used_memory")) // 2))
    assert server.command("SET", "probe", "1").startswith(b"-OOM")


def make_room(server: RedisServer) -> None:
    server.command("CONFIG", "SET", "maxmemory", "0")


def _info(server: RedisServer, field: str) -> str:
    for line in server.command("INFO", "memory").decode().splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in INFO")


@pytest.fixture
async def cache(full_redis: RedisServer) -> AsyncIterator[RedisCache]:
    async with private_cache(full_redis.url) as made:
        yield made


async def test_an_invalidation_on_a_full_redis_retires_the_item_and_every_page(
    cache: RedisCache, full_redis: RedisServer
) -> None:
    await cache.reset(0)
    await cache_anew(cache, ITEM, b"old")
    await cache_anew(cache, PAGE, b"old page")
    fill_up(full_redis)

    await cache.invalidate([ITEM.name], [1])

    assert await cache.watermark() == 1  # delivered, and the watermark moved over it
    for key in (ITEM, PAGE):  # no HIT of the old values: a lease is all that is left...
        with pytest.raises(ResponseError):  # ...and a full Redis refuses it
            await cache.lease(key, LEASE_MS)
    make_room(full_redis)
    for key in (ITEM, PAGE):
        assert (await cache.lease(key, LEASE_MS)).state is LookupState.LEASED


async def test_a_warm_write_on_a_full_redis_leaves_a_hole(
    cache: RedisCache, full_redis: RedisServer
) -> None:
    await cache_anew(cache, ITEM, b"old")
    lease = await cache.lease_for_write(ITEM, LEASE_MS)
    fill_up(full_redis)

    await cache.invalidate([], [1], [Fill(ITEM.name, lease, b"new", TTL_MS)])

    make_room(full_redis)
    assert (await cache.lease(ITEM, LEASE_MS)).state is LookupState.LEASED


async def test_catch_up_reset_and_retire_all_work_on_a_full_redis(
    cache: RedisCache, full_redis: RedisServer
) -> None:
    await cache.reset(0)
    await cache_anew(cache, ITEM, b"a")
    await cache_anew(cache, OTHER, b"b")
    fill_up(full_redis)

    await cache.catch_up([Change(1, ITEM.name.removeprefix("item:"))], 1)
    assert await cache.watermark() == 1
    await cache.catch_up([], 5)  # nothing to apply: the watermark still moves
    assert await cache.watermark() == 5
    await cache.retire_all()
    await cache.reset(9)
    assert await cache.watermark() == 9

    make_room(full_redis)
    for key in (ITEM, OTHER):
        assert (await cache.lease(key, LEASE_MS)).state is LookupState.LEASED


async def test_a_full_redis_refuses_leases_fills_and_write_leases(
    cache: RedisCache, full_redis: RedisServer
) -> None:
    await cache_anew(cache, ITEM, b"kept")
    granted = await cache.lease(OTHER, LEASE_MS)
    assert granted.token is not None
    fill_up(full_redis)

    assert (await cache.lease(ITEM, LEASE_MS)).value == b"kept"  # reads still answer
    with pytest.raises(ResponseError):
        await cache.lease(CacheKey("item:c"), LEASE_MS)
    with pytest.raises(ResponseError):
        await cache.fill(granted.resolved, granted.token, b"b", TTL_MS)
    with pytest.raises(ResponseError):
        await cache.lease_for_write(ITEM, LEASE_MS)
    with pytest.raises(ResponseError):
        await cache.ping()


async def test_a_refusal_opens_the_breaker_at_once_whatever_hits_come_between(
    cache: RedisCache, full_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Hits of what is still cached must not hide a Redis that refuses: the first refusal
    opens the breaker (threshold or not), /health's reason is "refusing writes", the log
    says so once, and the probe closes it once Redis takes writes again."""
    guard = GuardedCache(cache, 1.0, CircuitBreaker(failure_threshold=100))
    await cache_anew(cache, ITEM, b"kept")
    fill_up(full_redis)
    caplog.set_level(logging.DEBUG, "eventapi.cache")

    assert (await guard.lease(ITEM, LEASE_MS)).value == b"kept"
    with pytest.raises(CacheUnavailable) as refused:
        await guard.lease(OTHER, LEASE_MS)
    assert refused.value.reason == REFUSING
    assert guard.breaker.state is BreakerState.OPEN
    assert guard.state == REFUSING
    for _ in range(20):  # no Redis call, no log line, while open
        with pytest.raises(CacheUnavailable):
            await guard.lease(ITEM, LEASE_MS)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert REFUSING in warnings[0].getMessage()

    await guard.probe()  # still full: the probe's write check fails
    assert guard.state == REFUSING
    make_room(full_redis)
    await guard.probe()
    assert guard.state == "connected"


async def test_open_for_refusals_the_breaker_still_lets_invalidations_through(
    cache: RedisCache, full_redis: RedisServer
) -> None:
    """Other processes may still be serving hits from this Redis: a write here must still
    retire what it replaced there, and a full Redis runs an invalidation."""
    guard = GuardedCache(cache, 1.0, CircuitBreaker())
    await cache.reset(0)
    await cache_anew(cache, ITEM, b"old")
    fill_up(full_redis)
    with pytest.raises(CacheUnavailable):
        await guard.lease(OTHER, LEASE_MS)  # refused: open
    assert guard.state == REFUSING

    await guard.invalidate([ITEM.name], [1])

    assert await cache.watermark() == 1  # delivered
    with pytest.raises(ResponseError):  # not a hit: only a lease is left to try
        await cache.lease(ITEM, LEASE_MS)
