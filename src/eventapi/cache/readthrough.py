"""Cache-aside reads with single-flight and leases.

In one process, concurrent reads of one key share one *flight*. Across processes, the
cache's lease lets one reader load while the others wait for its fill. A flight is never
cancelled by a request that joined it: it runs as its own task and every request shields it.

Never stale: a request may join a flight only until the flight starts, that is, before it
has looked at the cache or the store. So whatever the flight then reads, from the cache or
from the store, it reads after every request in it was sent, and every write acknowledged
before any of them was sent is in what it reads (the store's reads see every committed
write; a cache entry survives a write only if its fill's lease did, and a write revokes
the lease). Requests arriving while a flight is under way form the next flight, which
first waits for the one under way: it then usually finds its value in the cache.
This holds across processes, with nothing to detach on a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal

from eventapi.cache.base import (
    LIST_PREFIX,
    Cache,
    CacheKey,
    CacheUnavailable,
    Fill,
    Lookup,
    LookupState,
    Peekable,
    V,
    WriteLease,
)

Outcome = Literal["HIT", "MISS", "BYPASS"]
# A load returns the value to cache and how long to keep it (seconds).
Loader = Callable[[], Awaitable[tuple[V, float]]]


def jittered_ms(ttl: float) -> int:
    """TTL +-10%, so entries filled together do not all expire together."""
    return max(1, int(ttl * 1000 * random.uniform(0.9, 1.1)))


@dataclass(frozen=True, slots=True)
class Read(Generic[V]):
    value: V
    outcome: Outcome


class ReadThrough(Generic[V]):
    def __init__(
        self,
        cache: Cache[V] | None,
        lease_seconds: float,
        wait_seconds: float,
    ) -> None:
        self.cache = cache
        # A synchronous lookup (the in-process cache) answers a hit without a task.
        self._peek: Callable[[CacheKey], V | None] | None = (
            cache.peek if isinstance(cache, Peekable) else None
        )
        self._lease_ms = int(lease_seconds * 1000)
        self._wait = wait_seconds
        self._joinable: dict[str, asyncio.Task[Read[V]]] = {}  # flights not started yet
        self._started: dict[str, asyncio.Task[Read[V]]] = {}  # flights under way

    async def lease_for_write(self, key: CacheKey) -> WriteLease | None:
        """Before a write to the store: the item's lease, for its Fill (base.py, Warm
        writes); None without a cache or when it is unavailable (the write then leaves a
        hole, as every write did before)."""
        if self.cache is None:
            return None
        try:
            return await self.cache.lease_for_write(key, self._lease_ms)
        except CacheUnavailable:
            return None

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill[V]] = ()
    ) -> None:
        """After a write, before it is acknowledged: drop the items (and every list page)
        from the cache, or put the written values of ``fills`` in their place, and let no
        later read wait for a flight under way for them, which may bring the old value (its
        requests still get it: they came before the write)."""
        if self.cache is not None:
            await self.cache.invalidate(item_names, seqs, fills)
        names = {*item_names, *(fill.name for fill in fills)}
        for flights in (self._joinable, self._started):
            for name in [n for n in flights if n in names or n.startswith(LIST_PREFIX)]:
                del flights[name]

    async def read(self, key: CacheKey, load: Loader[V]) -> Read[V]:
        if self._peek is not None:
            value = self._peek(key)
            if value is not None:
                return Read(value, "HIT")
        flight = self._joinable.get(key.name)
        if flight is None:
            flight = asyncio.create_task(self._fly(key, load, self._started.get(key.name)))
            self._joinable[key.name] = flight
        return await asyncio.shield(flight)

    async def _fly(
        self, key: CacheKey, load: Loader[V], ahead: asyncio.Task[Read[V]] | None
    ) -> Read[V]:
        me = asyncio.current_task()
        assert me is not None
        failed: BaseException | None = None
        if ahead is not None and self.cache is not None:
            # Let the flight under way fill the cache first: this one then finds the value
            # there, so a stampede still costs one store read. Its time is bounded (store
            # timeout, cache budget); if it failed, this one fails the same way rather than
            # make its requests wait a second store timeout.
            await asyncio.wait([ahead])
            failed = None if ahead.cancelled() else ahead.exception()
        # From here on this flight reads the cache and the store: no one may join it. (One
        # that invalidate() forgot stays forgotten: a later read must not wait for it.)
        forgotten = self._joinable.get(key.name) is not me
        if not forgotten:
            del self._joinable[key.name]
        if failed is not None:
            raise failed
        if not forgotten:
            self._started[key.name] = me
        try:
            deadline = asyncio.get_running_loop().time() + self._wait
            return await self._attempt(key, load, deadline)
        finally:
            if self._started.get(key.name) is me:
                del self._started[key.name]

    async def _attempt(self, key: CacheKey, load: Loader[V], deadline: float) -> Read[V]:
        """Lookup, load on a miss, fill if we hold the lease."""
        if self.cache is None:
            return Read((await load())[0], "BYPASS")
        try:
            lookup = await self._lookup(key, deadline)
        except CacheUnavailable:
            return Read((await load())[0], "BYPASS")
        if lookup.state is LookupState.HIT:
            assert lookup.value is not None
            return Read(lookup.value, "HIT")
        value, ttl = await load()
        if lookup.foreign:
            # Another release's entry (a rolling upgrade, or one left by it): removed like
            # any invalidation (which only ever makes the cache hold less), so the next
            # read can fill this format. Not the value just read: that needs a lease.
            with contextlib.suppress(CacheUnavailable):
                await self.cache.invalidate([key.name])
        if lookup.state is LookupState.LEASED and lookup.token is not None:
            # Refused when a write revoked the lease while we loaded: what we read then
            # must not be cached, but it is still fresh for everyone in this flight.
            with contextlib.suppress(CacheUnavailable):
                await self.cache.fill(lookup.resolved, lookup.token, value, jittered_ms(ttl))
        return Read(value, "MISS")

    async def _lookup(self, key: CacheKey, deadline: float) -> Lookup[V]:
        """Lease, or while another process holds the lease, wait briefly for its fill."""
        assert self.cache is not None
        loop = asyncio.get_running_loop()
        delay = 0.002
        lookup = await self.cache.lease(key, self._lease_ms)
        while lookup.state is LookupState.BUSY and loop.time() < deadline:
            await asyncio.sleep(delay)  # polling another process's fill; bounded by deadline
            delay = min(delay * 2, 0.02)
            lookup = await self.cache.lease(key, self._lease_ms)
        return lookup
