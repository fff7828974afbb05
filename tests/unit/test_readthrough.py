"""ReadThrough over a real MemoryCache: single-flight, leases, detach, cancellation.

Synchronisation is by events and by counting loop turns, never by timed sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from eventapi.cache.base import CacheKey, CacheUnavailable, Lookup, LookupState
from eventapi.cache.memory import MemoryCache
from eventapi.cache.readthrough import Read, ReadThrough
from tests.support.timing import settle

KEY = CacheKey("item:x")
LIST = CacheKey("list:abc", is_list=True)
LEASE_SECONDS = 60.0
LONG_WAIT = 30.0  # the reader's wait for another holder's fill; never reached in a pass
TTL = 60.0
BOUND = 5.0  # seconds: a generous ceiling on awaiting things that should finish promptly


class Loader:
    """A load that counts its calls and, when gated, waits for the test to release it."""

    def __init__(self, *values: bytes, gated: bool = False) -> None:
        self.values = list(values) or [b"loaded"]
        self.calls = 0
        self.gate: asyncio.Event | None = asyncio.Event() if gated else None

    async def __call__(self) -> tuple[bytes, float]:
        index = self.calls
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.values[min(index, len(self.values) - 1)], TTL


class WatchedCache(MemoryCache):
    """MemoryCache that reports every lease it answers."""

    def __init__(self) -> None:
        super().__init__()
        self.leases: list[LookupState] = []
        self.busy = asyncio.Event()

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup:
        lookup = await super().lease(key, lease_ms)
        self.leases.append(lookup.state)
        if lookup.state is LookupState.BUSY:
            self.busy.set()
        return lookup


async def turns(count: int = 10) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def gather(tasks: Sequence[asyncio.Task[Read]]) -> list[Read]:
    return list(await asyncio.wait_for(asyncio.gather(*tasks), timeout=BOUND))


def reads(rt: ReadThrough, key: CacheKey, load: Loader, n: int) -> list[asyncio.Task[Read]]:
    return [asyncio.create_task(rt.read(key, load)) for _ in range(n)]


async def cached(cache: MemoryCache, key: CacheKey) -> bytes | None:
    lookup = await cache.lease(key, 1)
    return lookup.value if lookup.state is LookupState.HIT else None


# --- single flight --------------------------------------------------------------------------


async def test_concurrent_reads_of_one_key_share_one_load() -> None:
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"value", gated=True)

    tasks = reads(rt, KEY, load, 20)
    await settle(lambda: load.calls == 1)
    await turns()  # every reader has now had its chance to start a load of its own

    assert load.calls == 1
    assert rt.flight_count() == 1
    assert not any(task.done() for task in tasks)

    assert load.gate is not None
    load.gate.set()
    results = await gather(tasks)

    assert load.calls == 1
    assert {r.value for r in results} == {b"value"}
    assert {r.outcome for r in results} == {"MISS"}
    assert rt.flight_count() == 0
    assert await cached(cache, KEY) == b"value"


async def test_reads_of_different_keys_load_separately() -> None:
    rt = ReadThrough(MemoryCache(), LEASE_SECONDS, LONG_WAIT)
    load = Loader(gated=True)

    tasks = [asyncio.create_task(rt.read(k, load)) for k in (KEY, CacheKey("item:y"), LIST)]
    await settle(lambda: load.calls == 3)

    assert rt.flight_count() == 3
    assert load.gate is not None
    load.gate.set()
    await gather(tasks)


async def test_a_hit_does_not_call_the_loader() -> None:
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    first = await rt.read(KEY, Loader(b"stored"))
    assert first == Read(b"stored", "MISS")
    load = Loader(b"other")

    second = await rt.read(KEY, load)

    assert second == Read(b"stored", "HIT")
    assert load.calls == 0


async def test_a_read_after_the_load_finished_starts_no_new_flight() -> None:
    rt = ReadThrough(MemoryCache(), LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"v")

    await rt.read(KEY, load)
    await rt.read(KEY, load)

    assert load.calls == 1
    assert rt.flight_count() == 0


async def test_without_a_cache_every_read_bypasses_and_loads() -> None:
    rt = ReadThrough(None, LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"one", b"two", b"three")

    results = [await rt.read(KEY, load) for _ in range(3)]

    assert results == [Read(b"one", "BYPASS"), Read(b"two", "BYPASS"), Read(b"three", "BYPASS")]
    assert load.calls == 3


class DownCache(MemoryCache):
    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup:
        raise CacheUnavailable("lease")


async def test_an_unavailable_cache_is_bypassed() -> None:
    rt = ReadThrough(DownCache(), LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"from store")

    assert await rt.read(KEY, load) == Read(b"from store", "BYPASS")
    assert load.calls == 1


async def test_a_failing_load_reaches_every_reader_and_is_not_cached() -> None:
    rt = ReadThrough(MemoryCache(), LEASE_SECONDS, LONG_WAIT)
    gate = asyncio.Event()
    calls = 0

    async def failing() -> tuple[bytes, float]:
        nonlocal calls
        calls += 1
        await gate.wait()
        raise LookupError("store down")

    tasks = [asyncio.create_task(rt.read(KEY, failing)) for _ in range(3)]
    await settle(lambda: calls == 1)
    gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=BOUND)

    assert calls == 1
    assert all(isinstance(r, LookupError) for r in results)
    assert rt.flight_count() == 0


# --- cancellation and detach ----------------------------------------------------------------


async def test_a_cancelled_reader_does_not_cancel_the_load_for_the_others() -> None:
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"value", gated=True)
    leader, follower = reads(rt, KEY, load, 2)
    await settle(lambda: load.calls == 1)
    await turns()

    leader.cancel()  # the reader whose call started the load goes away
    with pytest.raises(asyncio.CancelledError):
        await leader
    assert rt.flight_count() == 1
    assert load.gate is not None
    load.gate.set()

    assert await asyncio.wait_for(follower, timeout=BOUND) == Read(b"value", "MISS")
    assert load.calls == 1
    assert await cached(cache, KEY) == b"value"  # the load also completed its fill


async def test_a_load_survives_even_when_every_reader_is_cancelled() -> None:
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"value", gated=True)
    [only] = reads(rt, KEY, load, 1)
    await settle(lambda: load.calls == 1)

    only.cancel()
    with pytest.raises(asyncio.CancelledError):
        await only
    assert load.gate is not None
    load.gate.set()
    await settle(lambda: rt.flight_count() == 0)

    assert await cached(cache, KEY) == b"value"


async def test_detach_makes_a_later_read_start_a_new_load() -> None:
    """The write path: invalidate the cache, then detach. A read after the write gets a fresh
    load; the first load's fill is refused (its lease was revoked), so it looks again and
    its readers get the value cached by the fresh load instead of what it had read."""
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    old = Loader(b"old", gated=True)
    early = reads(rt, KEY, old, 3)
    await settle(lambda: old.calls == 1)
    await turns()

    await cache.invalidate(["item:x"])
    rt.detach(["item:x"])
    new = Loader(b"new", gated=True)
    late = reads(rt, KEY, new, 2)
    await settle(lambda: new.calls == 1)
    await turns()
    assert rt.flight_count() == 1  # only the new flight can still be joined

    assert old.gate is not None
    assert new.gate is not None
    new.gate.set()
    assert [r.value for r in await gather(late)] == [b"new"] * 2
    old.gate.set()
    assert [r.value for r in await gather(early)] == [b"new"] * 3

    assert old.calls == 1
    assert new.calls == 1
    assert await cached(cache, KEY) == b"new"  # the first load's fill was refused
    assert rt.flight_count() == 0


async def test_after_detach_early_readers_keep_the_first_load_and_later_ones_join_the_new() -> None:
    """Without a cache there is no lease to revoke: detach alone decides who shares what."""
    rt = ReadThrough(None, LEASE_SECONDS, LONG_WAIT)
    old = Loader(b"old", gated=True)
    early = reads(rt, KEY, old, 2)
    await settle(lambda: old.calls == 1)
    await turns()

    rt.detach(["item:x"])
    new = Loader(b"new", gated=True)
    late = reads(rt, KEY, new, 1)
    await settle(lambda: new.calls == 1)

    assert old.gate is not None
    assert new.gate is not None
    old.gate.set()  # the detached flight lands first...
    assert await gather(early) == [Read(b"old", "BYPASS")] * 2
    # ...and must not unlist the new flight: a read now still joins it.
    later = reads(rt, KEY, new, 1)
    await turns()
    assert new.calls == 1
    assert rt.flight_count() == 1
    new.gate.set()
    assert await gather([*late, *later]) == [Read(b"new", "BYPASS")] * 2
    assert old.calls == 1
    assert new.calls == 1


async def test_detach_also_detaches_every_list_flight_but_not_other_items() -> None:
    rt = ReadThrough(None, LEASE_SECONDS, LONG_WAIT)
    list_load = Loader(b"page", gated=True)
    item_load = Loader(b"other", gated=True)
    first_list = reads(rt, LIST, list_load, 1)
    first_item = reads(rt, CacheKey("item:y"), item_load, 1)
    await settle(lambda: list_load.calls == 1 and item_load.calls == 1)

    rt.detach(["item:x"])
    second_list = reads(rt, LIST, list_load, 1)
    second_item = reads(rt, CacheKey("item:y"), item_load, 1)
    await settle(lambda: list_load.calls == 2)
    await turns()

    assert list_load.calls == 2  # the list flight was detached: a new load
    assert item_load.calls == 1  # item:y was not named: the reader joined
    assert list_load.gate is not None
    assert item_load.gate is not None
    list_load.gate.set()
    item_load.gate.set()
    await gather([*first_list, *first_item, *second_list, *second_item])


# --- another holder's lease -----------------------------------------------------------------


async def test_a_busy_lease_waits_for_the_holders_fill() -> None:
    cache = WatchedCache()
    holder = await cache.lease(KEY, 60_000)  # "another process" holds the lease
    assert holder.token is not None
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"mine")

    reader = asyncio.create_task(rt.read(KEY, load))
    await asyncio.wait_for(cache.busy.wait(), timeout=BOUND)  # the reader is polling
    assert not reader.done()

    assert await cache.fill(holder.resolved, holder.token, b"theirs", 60_000) is True
    result = await asyncio.wait_for(reader, timeout=BOUND)

    assert result == Read(b"theirs", "HIT")
    assert load.calls == 0
    assert cache.leases[0] is LookupState.LEASED  # the holder's own lease
    assert cache.leases[-1] is LookupState.HIT


async def test_a_busy_lease_nobody_fills_ends_in_a_load_without_a_fill() -> None:
    cache = WatchedCache()
    holder = await cache.lease(KEY, 60_000)
    assert holder.token is not None
    rt = ReadThrough(cache, LEASE_SECONDS, wait_seconds=0.05)
    load = Loader(b"mine")

    result = await asyncio.wait_for(rt.read(KEY, load), timeout=BOUND)

    assert result == Read(b"mine", "MISS")
    assert load.calls == 1
    assert LookupState.BUSY in cache.leases
    # The reader did not fill: nothing is stored and the holder's lease is still good.
    assert len(cache) == 0
    assert (await cache.lease(KEY, 60_000)).state is LookupState.BUSY
    assert await cache.fill(holder.resolved, holder.token, b"theirs", 60_000) is True
