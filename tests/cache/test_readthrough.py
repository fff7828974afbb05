"""ReadThrough over a real MemoryCache: single-flight, who joins or waits, leases, cancellation.

Synchronisation is by events and by counting loop turns, never by timed sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from eventapi.cache.base import CacheKey, CacheUnavailable, Lookup, LookupState
from eventapi.cache.memory import MemoryCache
from eventapi.cache.readthrough import Read, ReadThrough
from tests.support.app import flights
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
    assert flights(rt) == 1
    assert not any(task.done() for task in tasks)

    assert load.gate is not None
    load.gate.set()
    results = await gather(tasks)

    assert load.calls == 1
    assert {r.value for r in results} == {b"value"}
    assert {r.outcome for r in results} == {"MISS"}
    assert flights(rt) == 0
    assert await cached(cache, KEY) == b"value"


async def test_reads_of_different_keys_load_separately() -> None:
    rt = ReadThrough(MemoryCache(), LEASE_SECONDS, LONG_WAIT)
    load = Loader(gated=True)

    tasks = [asyncio.create_task(rt.read(k, load)) for k in (KEY, CacheKey("item:y"), LIST)]
    await settle(lambda: load.calls == 3)

    assert flights(rt) == 3
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
    assert flights(rt) == 0


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
    assert flights(rt) == 0


# --- cancellation -------------------------------------------------------------------------


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
    assert flights(rt) == 1
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
    await settle(lambda: flights(rt) == 0)

    assert await cached(cache, KEY) == b"value"


# --- who may join a flight, and who waits for one -------------------------------------------


async def test_a_read_after_the_flight_started_does_not_join_it_and_waits_for_it() -> None:
    """A flight that has started may already hold an answer older than a late request, so
    the late request forms the next flight. That one waits for the flight under way and
    then finds its value in the cache: a stampede still costs one store read. Requests
    arriving while the next flight waits join it (it has not started)."""
    cache = WatchedCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    first = Loader(b"first", gated=True)
    early = reads(rt, KEY, first, 3)
    await settle(lambda: first.calls == 1)  # the first flight has started
    await turns()

    second = Loader(b"second")
    late = reads(rt, KEY, second, 2)
    await turns()
    later = reads(rt, KEY, second, 2)  # still during the first flight
    await turns()

    assert flights(rt) == 2  # one under way, one waiting (the four late reads)
    assert second.calls == 0
    assert cache.leases == [LookupState.LEASED]  # the next flight has not looked yet
    assert not any(task.done() for task in [*late, *later])

    assert first.gate is not None
    first.gate.set()
    assert await gather(early) == [Read(b"first", "MISS")] * 3
    assert await gather([*late, *later]) == [Read(b"first", "HIT")] * 4

    assert first.calls == 1
    assert second.calls == 0
    assert cache.leases == [LookupState.LEASED, LookupState.HIT]
    assert flights(rt) == 0


async def test_a_read_after_invalidate_neither_joins_nor_waits_for_the_old_flight() -> None:
    """The write path: store write, then ``invalidate``, then the acknowledgement. A read
    after that must see the write: it starts its own flight at once, even while the old
    flight (and a flight waiting behind it) are still under way. Those still answer the
    requests already in them, which came before the write was acknowledged; the waiting
    one looks up only after the write, so it gets the new value too."""
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    old = Loader(b"old", gated=True)
    early = reads(rt, KEY, old, 2)
    await settle(lambda: old.calls == 1)
    await turns()
    behind = Loader(b"behind")
    waiting = reads(rt, KEY, behind, 2)  # the next flight, waiting for the old one
    await turns()
    assert flights(rt) == 2

    await rt.invalidate(["item:x"], [1])
    assert flights(rt) == 0
    new = Loader(b"new", gated=True)
    after = reads(rt, KEY, new, 2)
    await settle(lambda: new.calls == 1)  # did not wait for the old flight

    assert new.gate is not None
    new.gate.set()
    assert await gather(after) == [Read(b"new", "MISS")] * 2
    assert old.gate is not None
    old.gate.set()
    assert await gather(early) == [Read(b"old", "MISS")] * 2
    assert await gather(waiting) == [Read(b"new", "HIT")] * 2

    assert old.calls == 1
    assert behind.calls == 0
    assert new.calls == 1
    assert await cached(cache, KEY) == b"new"  # the old flight's fill was refused
    assert flights(rt) == 0


async def test_invalidate_forgets_every_list_flight_but_not_other_items() -> None:
    """Any write may change any list page, so every list flight is forgotten; a flight for
    an item the write did not name is kept, and a later read of it still waits for it."""
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    other = CacheKey("item:y")
    list_load = Loader(b"page", gated=True)
    item_load = Loader(b"other", gated=True)
    first_list = reads(rt, LIST, list_load, 1)
    first_item = reads(rt, other, item_load, 1)
    await settle(lambda: list_load.calls == 1 and item_load.calls == 1)

    await rt.invalidate(["item:x"], [1])
    assert flights(rt) == 1  # the item:y flight only
    second_list = reads(rt, LIST, list_load, 1)
    second_item = reads(rt, other, item_load, 1)
    await settle(lambda: list_load.calls == 2)
    await turns()

    assert list_load.calls == 2  # the list flight was forgotten: a new load at once
    assert item_load.calls == 1  # item:y was not named: the read waits for its flight
    assert list_load.gate is not None
    assert item_load.gate is not None
    list_load.gate.set()
    item_load.gate.set()
    await gather([*first_list, *first_item, *second_list])
    assert await gather(second_item) == [Read(b"other", "HIT")]
    assert item_load.calls == 1


async def test_a_refused_fill_returns_the_loaded_value_as_a_miss_without_a_second_load() -> None:
    """A write revoked the flight's lease while it loaded: the value is not cached, but it
    is still fresh for every request in the flight (all joined before it started), so the
    flight answers with it instead of looking again."""
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    load = Loader(b"loaded", b"second load", gated=True)
    tasks = reads(rt, KEY, load, 2)
    await settle(lambda: load.calls == 1)

    await cache.invalidate(["item:x"], [1])  # a write elsewhere revokes the lease
    assert load.gate is not None
    load.gate.set()

    assert await gather(tasks) == [Read(b"loaded", "MISS")] * 2
    assert load.calls == 1
    assert await cached(cache, KEY) is None


async def test_without_a_cache_the_next_flight_does_not_wait() -> None:
    """With no cache to fill there is nothing to wait for: a late read loads at once. When
    the earlier flight lands, it must not unlist the later one still under way."""
    rt = ReadThrough(None, LEASE_SECONDS, LONG_WAIT)
    first = Loader(b"first", gated=True)
    early = reads(rt, KEY, first, 2)
    await settle(lambda: first.calls == 1)
    await turns()

    second = Loader(b"second", gated=True)
    late = reads(rt, KEY, second, 1)
    await settle(lambda: second.calls == 1)

    assert first.gate is not None
    assert second.gate is not None
    first.gate.set()
    assert await gather(early) == [Read(b"first", "BYPASS")] * 2
    assert flights(rt) == 1  # the second flight is still known
    second.gate.set()
    assert await gather(late) == [Read(b"second", "BYPASS")]
    assert first.calls == 1
    assert second.calls == 1
    assert flights(rt) == 0


async def test_a_flight_waiting_behind_a_failed_one_raises_the_same_error() -> None:
    """Its requests do not wait a second store timeout: the error of the flight ahead is
    theirs too, and the loader of the waiting flight is never called."""
    rt = ReadThrough(MemoryCache(), LEASE_SECONDS, LONG_WAIT)
    gate = asyncio.Event()
    error = LookupError("store down")

    async def failing() -> tuple[bytes, float]:
        await gate.wait()
        raise error

    ahead = asyncio.create_task(rt.read(KEY, failing))
    await settle(lambda: flights(rt) == 1)
    await turns()
    behind = Loader(b"never")
    waiting = reads(rt, KEY, behind, 2)
    await turns()
    assert flights(rt) == 2

    gate.set()
    results = await asyncio.wait_for(
        asyncio.gather(ahead, *waiting, return_exceptions=True), timeout=BOUND
    )

    assert results == [error] * 3
    assert all(result is error for result in results)
    assert behind.calls == 0


async def test_a_flight_that_failed_while_waiting_is_forgotten() -> None:
    """Once the flight ahead failed, the one behind it has failed too and must not stay
    joinable: a read after both finished starts a new flight and loads, instead of
    receiving the old error for ever."""
    cache = MemoryCache()
    rt = ReadThrough(cache, LEASE_SECONDS, LONG_WAIT)
    gate = asyncio.Event()

    async def failing() -> tuple[bytes, float]:
        await gate.wait()
        raise LookupError("store down")

    ahead = asyncio.create_task(rt.read(KEY, failing))
    await settle(lambda: flights(rt) == 1)
    await turns()
    waiting = reads(rt, KEY, Loader(b"never"), 1)
    await turns()
    gate.set()
    await asyncio.wait_for(asyncio.gather(ahead, *waiting, return_exceptions=True), BOUND)

    assert flights(rt) == 0
    # Drop the lease the failed load left behind (directly: rt.invalidate would also
    # forget the flights), so the read below need not wait it out.
    await cache.invalidate(["item:x"])
    load = Loader(b"back")
    assert await asyncio.wait_for(rt.read(KEY, load), BOUND) == Read(b"back", "MISS")
    assert load.calls == 1


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
