"""Any key of the cache may vanish (eviction, DEL, FLUSHDB): a lost epoch or generation must
never make a retired entry current again (cache/redis/cache.py, key layout).

The scenario the old counters failed: an entry is filled, retired (a write, or everything
retired), and then the key that retired it is lost. Read as 0 and counted up again, the
counter came back to the name of the retired entry, which was still alive. Each test then
asks for the entry: it must not be a hit of the old value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventapi.cache.base import CacheKey, Lookup, LookupState
from eventapi.cache.redis import RedisCache
from tests.cache.helpers import cache_anew, private_cache
from tests.support.redis_server import RedisServer

ITEM = CacheKey("item:a")
PAGE = CacheKey("list:0123", is_list=True)
LEASE_MS = 60_000
TTL_MS = 60_000


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[RedisCache]:
    async with private_cache(redis_server.url) as made:
        yield made


def bookkeeping_key(server: RedisServer, suffix: str) -> str:
    keys = server.command("KEYS", f"*:{suffix}").decode().split("\r\n")
    found = [k for k in keys if k.endswith(":" + suffix)]
    assert len(found) == 1, keys
    return found[0]


async def assert_not_served(cache: RedisCache, key: CacheKey, old: bytes) -> Lookup:
    lookup = await cache.lease(key, LEASE_MS)  # (it retries at once if the names changed)
    assert lookup.state is LookupState.LEASED, lookup
    assert lookup.value != old
    return lookup


@pytest.mark.parametrize("retire", ["retire_all", "reset"])
async def test_a_lost_epoch_never_brings_back_a_retired_item(
    cache: RedisCache, redis_server: RedisServer, retire: str
) -> None:
    await cache_anew(cache, ITEM, b"old")
    if retire == "retire_all":
        await cache.retire_all()
    else:
        await cache.reset(0)
    await cache.invalidate([ITEM.name])  # a write after the retirement

    redis_server.command("DEL", bookkeeping_key(redis_server, "epoch"))

    await assert_not_served(cache, ITEM, b"old")


async def test_a_lost_generation_never_brings_back_a_retired_page(
    cache: RedisCache, redis_server: RedisServer
) -> None:
    await cache_anew(cache, PAGE, b"old page")
    await cache.invalidate([ITEM.name])  # any write retires every page

    redis_server.command("DEL", bookkeeping_key(redis_server, "generation"))

    await assert_not_served(cache, PAGE, b"old page")


@pytest.mark.parametrize("lost", ["epoch", "generation", "watermark", "delivered", "FLUSHDB"])
async def test_after_any_key_is_lost_the_cache_still_works_and_never_serves_the_past(
    cache: RedisCache, redis_server: RedisServer, lost: str
) -> None:
    await cache.reset(0)
    await cache_anew(cache, ITEM, b"v1")
    await cache_anew(cache, PAGE, b"page v1")
    await cache.invalidate([ITEM.name], [1])
    await cache.invalidate([ITEM.name], [3])  # a seq kept in the delivered set

    if lost == "FLUSHDB":
        redis_server.command("FLUSHDB")
    else:
        redis_server.command("DEL", bookkeeping_key(redis_server, lost))

    lookup = await assert_not_served(cache, ITEM, b"v1")
    await assert_not_served(cache, PAGE, b"page v1")
    assert lookup.token is not None  # and it caches again, under whatever names are now
    assert await cache.fill(lookup.resolved, lookup.token, b"v2", TTL_MS)
    assert (await cache.lease(ITEM, LEASE_MS)).value == b"v2"
    if lost in ("watermark", "FLUSHDB"):
        assert await cache.watermark() is None  # unknown: the relay resets
    else:
        assert await cache.watermark() == 1


async def test_an_invalidation_after_the_epoch_is_lost_is_delivered_at_once(
    cache: RedisCache, redis_server: RedisServer
) -> None:
    """Nothing can be cached under the fresh epoch a lost one is replaced by: the write's
    invalidation is done then, not a failure to leave to the relay."""
    await cache.reset(0)
    await cache_anew(cache, ITEM, b"v1")
    redis_server.command("DEL", bookkeeping_key(redis_server, "epoch"))

    await cache.invalidate([ITEM.name], [1])

    assert await cache.watermark() == 1
    await assert_not_served(cache, ITEM, b"v1")
