"""The in-process cache is bounded in bytes as well as in entries (cache/memory.py)."""

from __future__ import annotations

from eventapi.cache.base import CacheKey, LookupState
from eventapi.cache.memory import ENTRY_OVERHEAD, MemoryCache

MIB = 1024 * 1024
HOUR_MS = 3_600_000


async def put(cache: MemoryCache, name: str, value: bytes) -> bool:
    lookup = await cache.lease(CacheKey(name), 1000)
    assert lookup.state is LookupState.LEASED
    assert lookup.token is not None
    return await cache.fill(lookup.resolved, lookup.token, value, HOUR_MS)


async def test_large_pages_are_evicted_by_bytes_oldest_first() -> None:
    cache = MemoryCache(max_entries=10_000, max_bytes=MIB)
    page = b"x" * (100 * 1024)  # a list page of 100 events: about 100 KiB
    for n in range(50):  # 5 MiB offered to a 1 MiB budget
        assert await put(cache, f"list:{n}", page)
        assert cache.size_bytes <= MIB
    assert len(cache) == MIB // (len(page) + ENTRY_OVERHEAD)
    assert cache.peek(CacheKey("list:49")) == page  # the newest are kept
    assert cache.peek(CacheKey("list:0")) is None  # the oldest went first


async def test_a_value_larger_than_the_budget_is_not_kept() -> None:
    cache = MemoryCache(max_bytes=MIB)
    assert await put(cache, "item:small", b"s")
    await put(cache, "item:huge", b"h" * (2 * MIB))
    assert cache.peek(CacheKey("item:huge")) is None
    assert cache.peek(CacheKey("item:small")) == b"s"  # and it evicted nothing


async def test_dropping_and_retiring_keep_the_count_exact() -> None:
    cache = MemoryCache(max_bytes=MIB)
    await put(cache, "item:a", b"1" * 1000)
    await cache.invalidate(["item:a"])
    assert cache.size_bytes == 0
    await put(cache, "item:a", b"1" * 1000)
    await put(cache, "item:b", b"2" * 10)
    assert cache.size_bytes == 1000 + 10 + 2 * ENTRY_OVERHEAD
    await cache.retire_all()
    assert cache.size_bytes == 0
