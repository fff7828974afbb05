"""EventCache (cache/events.py), the service's one cache facade, over a real MemoryCache of
Entry objects and over a real redis-server through the Entry codec: what a read returns,
that the in-process cache keeps the entry itself, and what a write leaves behind."""

from __future__ import annotations

import pytest

from eventapi.cache.base import CacheKey
from eventapi.cache.breaker import CircuitBreaker
from eventapi.cache.entry import ENTRY_CODEC, Entry, strong_etag
from eventapi.cache.events import Committed, EventCache, Page
from eventapi.cache.guard import GuardedCache
from eventapi.cache.memory import MemoryCache
from eventapi.cache.redis import RedisCache, connect
from eventapi.events.schemas import EventQuery
from eventapi.follow import cursor
from tests.support.redis_server import RedisServer

ID = "68ed254e36d0233aa05afbe9"
BODY = b'{"id": "68ed254e36d0233aa05afbe9", "title": "One"}'
NEW = b'{"id": "68ed254e36d0233aa05afbe9", "title": "Two"}'


def memory_cache() -> tuple[EventCache, MemoryCache[Entry]]:
    memory: MemoryCache[Entry] = MemoryCache(sizeof=Entry.cost)
    guarded = GuardedCache(memory, 1.0, CircuitBreaker())
    return EventCache(guarded, lease_seconds=5.0, wait_seconds=1.0), memory


class Store:
    """What the facade is asked to load, counted."""

    def __init__(self, body: bytes | None) -> None:
        self.body = body
        self.loads = 0

    async def __call__(self) -> bytes | None:
        self.loads += 1
        return self.body


async def test_an_event_is_loaded_once_and_then_served_as_the_same_entry() -> None:
    cache, memory = memory_cache()
    store = Store(BODY)
    first = await cache.event(ID, store)
    second = await cache.event(ID, store)
    assert (first.outcome, second.outcome) == ("MISS", "HIT")
    assert store.loads == 1
    assert first.entry == Entry(200, strong_etag(BODY), BODY, cursor=cursor.encode(0))
    # The in-process cache keeps the entry itself: a hit decodes nothing.
    assert second.entry is first.entry
    assert memory.size_bytes == first.entry.cost() + 256


async def test_a_missing_event_is_a_cached_404() -> None:
    cache, _ = memory_cache()
    store = Store(None)
    assert (await cache.event(ID, store)).entry.status == 404
    assert (await cache.event(ID, store)).outcome == "HIT"
    assert store.loads == 1


async def test_a_page_carries_its_total_and_links() -> None:
    cache, _ = memory_cache()

    async def load() -> Page:
        return Page(b"[]", 0, '</api/events?offset=0&limit=20>; rel="first"')

    served = await cache.page(EventQuery.model_validate({}), load)
    assert (served.entry.total, served.entry.link) == (
        "0",
        '</api/events?offset=0&limit=20>; rel="first"',
    )
    assert (await cache.page(EventQuery.model_validate({}), load)).outcome == "HIT"


async def test_a_write_leaves_its_value_and_a_failed_or_empty_one_leaves_nothing() -> None:
    cache, memory = memory_cache()
    await cache.event(ID, Store(BODY))

    async def commit() -> Committed:
        return Committed(1, NEW)

    written = await cache.write(ID, commit)
    assert written == Entry.build(200, NEW, cursor=cursor.encode(0))
    served = await cache.event(ID, Store(BODY))
    assert (served.outcome, served.entry) == ("HIT", written)  # the warm fill

    async def nothing() -> Committed | None:
        return None

    assert await cache.write(ID, nothing) is None
    assert memory.peek(CacheKey("item:" + ID)) is None

    await cache.event(ID, Store(BODY))

    async def failing() -> Committed:
        raise TimeoutError

    with pytest.raises(TimeoutError):
        await cache.write(ID, failing)
    assert memory.peek(CacheKey("item:" + ID)) is None  # it may have committed: forgotten


async def test_redis_keeps_the_entry_as_bytes_and_gives_it_back_whole(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url, timeout=5.0)
    try:
        redis = RedisCache(client, "event-cache", ENTRY_CODEC)
        cache = EventCache(GuardedCache(redis, 5.0, CircuitBreaker()), 5.0, 1.0)
        first = await cache.event(ID, Store(BODY))
        second = await cache.event(ID, Store(BODY))
        assert (first.outcome, second.outcome) == ("MISS", "HIT")
        assert second.entry == first.entry
        keys = [key for key in await client.keys("*") if isinstance(key, bytes)]
        stored = [key for key in keys if key.endswith(b"item:" + ID.encode())]
        assert len(stored) == 1
        assert await client.get(stored[0]) == first.entry.encode()
    finally:
        await client.aclose()
