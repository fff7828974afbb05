"""Cache-aside reads with single-flight and leases.

In one process, concurrent reads of one key share one load (single-flight). Across
processes, the cache's lease lets one reader load while the others wait for its fill.
A load is never cancelled by the request that started it: it runs as its own task and
every waiting request shields it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from eventapi.cache.base import (
    LIST_PREFIX,
    Cache,
    CacheKey,
    CacheUnavailable,
    Lookup,
    LookupState,
)

Outcome = Literal["HIT", "MISS", "BYPASS"]
# A load returns the bytes to cache and how long to keep them (seconds).
Loader = Callable[[], Awaitable[tuple[bytes, float]]]


@dataclass(frozen=True, slots=True)
class Read:
    value: bytes
    outcome: Outcome


def jittered_ms(ttl: float) -> int:
    """TTL +-10%, so entries filled together do not all expire together."""
    return max(1, int(ttl * 1000 * random.uniform(0.9, 1.1)))


class ReadThrough:
    def __init__(
        self,
        cache: Cache | None,
        lease_seconds: float,
        wait_seconds: float,
        peek: Callable[[CacheKey], bytes | None] | None = None,
    ) -> None:
        self.cache = cache
        # A synchronous lookup (the in-process cache) answers a hit without a task.
        self._peek = peek
        self._lease_ms = int(lease_seconds * 1000)
        self._wait = wait_seconds
        self._flights: dict[str, asyncio.Task[Read]] = {}

    def flight_count(self) -> int:
        return len(self._flights)

    async def read(self, key: CacheKey, load: Loader) -> Read:
        if self._peek is not None:
            value = self._peek(key)
            if value is not None:
                return Read(value, "HIT")
        flight = self._flights.get(key.name)
        if flight is None:
            flight = asyncio.create_task(self._lead(key, load))
            self._flights[key.name] = flight
            flight.add_done_callback(lambda done: self._land(key.name, done))
        return await asyncio.shield(flight)

    def _land(self, name: str, flight: asyncio.Task[Read]) -> None:
        if self._flights.get(name) is flight:
            del self._flights[name]

    def detach(self, item_names: Iterable[str]) -> None:
        """Called after a write: loads already under way may hold the old value, so no
        later read may join them. They finish for the readers already waiting on them (who
        asked before the write was acknowledged); their fill is refused by the lease, so
        they look again rather than hand out what they read."""
        for name in item_names:
            self._flights.pop(name, None)
        for name in [n for n in self._flights if n.startswith(LIST_PREFIX)]:
            del self._flights[name]

    async def _lead(self, key: CacheKey, load: Loader) -> Read:
        if self.cache is None:
            return Read((await load())[0], "BYPASS")
        for last in (False, True):
            read = await self._attempt(key, load, last)
            if read is not None:
                return read
        raise AssertionError("the last attempt always settles")

    async def _attempt(self, key: CacheKey, load: Loader, last: bool) -> Read | None:
        """One lookup-load-fill round; None when the fill was refused and we should retry."""
        assert self.cache is not None
        try:
            lookup = await self._lookup(key)
        except CacheUnavailable:
            return Read((await load())[0], "BYPASS")
        if lookup.state is LookupState.HIT:
            assert lookup.value is not None
            return Read(lookup.value, "HIT")
        value, ttl = await load()
        if lookup.state is not LookupState.LEASED or lookup.token is None:
            return Read(value, "MISS")
        try:
            filled = await self.cache.fill(lookup.resolved, lookup.token, value, jittered_ms(ttl))
        except CacheUnavailable:
            return Read(value, "MISS")
        if filled or last:
            return Read(value, "MISS")
        # A write revoked our lease while we loaded, so what we read may predate it, and
        # readers may have joined this load after that write was acknowledged (possibly by
        # another process, which could not detach us). Look again.
        return None

    async def _lookup(self, key: CacheKey) -> Lookup:
        """Lease, or while another process holds the lease, wait briefly for its fill."""
        assert self.cache is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = 0.002
        lookup = await self.cache.lease(key, self._lease_ms)
        while lookup.state is LookupState.BUSY and loop.time() < deadline:
            await asyncio.sleep(delay)  # polling another process's fill; bounded by deadline
            delay = min(delay * 2, 0.02)
            lookup = await self.cache.lease(key, self._lease_ms)
        return lookup
