"""GuardedCache: wraps any Cache with a time budget, a circuit breaker and invalidation replay.

- Every call gets ``budget`` seconds in total; past that it raises CacheUnavailable.
- While the breaker is open, calls raise CacheUnavailable at once (no I/O at all), and a
  background task probes the cache every ``reset_timeout`` seconds, traffic or not. Only
  a successful probe closes the breaker.
- An invalidation that cannot be delivered is remembered and the breaker is forced open,
  so this process reads from the store, never from a cache that may hold the old value.
  The probe replays the remembered invalidations before the breaker closes again; if too
  many piled up, it retires every entry instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from eventapi.cache.base import Cache, CacheBackend, CacheKey, CacheUnavailable, Lookup
from eventapi.cache.breaker import BreakerState, CircuitBreaker

log = logging.getLogger("eventapi.cache")

T = TypeVar("T")

MAX_PENDING = 1000


class GuardedCache:
    def __init__(
        self,
        inner: Cache,
        budget: float,
        breaker: CircuitBreaker,
        on_error: Callable[[str], None] = lambda op: None,
    ) -> None:
        self.inner = inner
        self.backend: CacheBackend = inner.backend
        self.budget = budget
        self.breaker = breaker
        self._on_error = on_error
        self._pending: set[str] = set()
        self._pending_lists = False
        self._retire_all_pending = False
        self._probe: asyncio.Task[None] | None = None
        self._inner_peek: Callable[[CacheKey], bytes | None] | None = getattr(inner, "peek", None)
        self._prober: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED

    async def _call(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allows_calls():
            self._maybe_probe()
            raise CacheUnavailable(f"{op}: breaker open")
        try:
            async with asyncio.timeout(self.budget):
                result = await call()
        except (Exception, TimeoutError) as exc:  # every failure degrades, none escapes
            self._on_error(op)
            self.breaker.record_failure()
            if not self.breaker.allows_calls():
                self._start_prober()
            log.warning("cache %s failed: %s", op, type(exc).__name__)
            raise CacheUnavailable(op) from exc
        self.breaker.record_success()
        return result

    def peek(self, key: CacheKey) -> bytes | None:
        """Synchronous hit from an in-process cache; None (ask lease()) for any other."""
        if self._inner_peek is None or not self.breaker.allows_calls():
            return None
        return self._inner_peek(key)

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup:
        return await self._call("lease", lambda: self.inner.lease(key, lease_ms))

    async def fill(self, resolved: str, token: str, value: bytes, ttl_ms: int) -> bool:
        return await self._call("fill", lambda: self.inner.fill(resolved, token, value, ttl_ms))

    async def invalidate(self, item_names: Sequence[str]) -> None:
        try:
            await self._call("invalidate", lambda: self.inner.invalidate(item_names))
        except CacheUnavailable:
            self._remember(item_names)
            self._trip()

    async def retire_all(self) -> None:
        try:
            await self._call("retire_all", self.inner.retire_all)
        except CacheUnavailable:
            self._retire_all_pending = True
            self._trip()

    async def ping(self) -> None:
        await self._call("ping", self.inner.ping)

    async def close(self) -> None:
        for task in (self._probe, self._prober):
            if task is not None:
                task.cancel()
        await self.inner.close()

    def _remember(self, item_names: Sequence[str]) -> None:
        self._pending.update(item_names)
        self._pending_lists = True
        if len(self._pending) > MAX_PENDING:
            self._retire_all_pending = True
            self._pending.clear()

    def _trip(self) -> None:
        # Re-tripping an open breaker would restart its reset period: under steady writes
        # the probe would never come.
        if self.breaker.allows_calls():
            self.breaker.trip()
        self._start_prober()

    def _maybe_probe(self) -> None:
        """A call that finds the reset period over starts the probe at once."""
        if self.breaker.probe_due():
            self._probe = asyncio.create_task(self.probe())
        else:
            self._start_prober()

    def _start_prober(self) -> None:
        """Probe on a timer too, so an idle process (only /metrics scraped) also recovers."""
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe_until_closed())

    async def _probe_until_closed(self) -> None:
        while not self.breaker.allows_calls():
            # Scheduling, not synchronisation: wait out the breaker's reset period.
            await asyncio.sleep(self.breaker.reset_timeout)
            if self.breaker.probe_due():
                await self.probe()

    async def probe(self) -> None:
        """Check the cache and replay missed invalidations; close the breaker only if both work."""
        pending, retire = sorted(self._pending), self._retire_all_pending
        try:
            async with asyncio.timeout(self.budget * 4):
                await self.inner.ping()
                if retire:
                    await self.inner.retire_all()
                elif pending or self._pending_lists:
                    await self.inner.invalidate(pending)
        except (Exception, TimeoutError) as exc:
            log.info("cache still unavailable: %s", type(exc).__name__)
            self.breaker.trip()
            return
        self._pending.difference_update(pending)
        self._pending_lists = bool(self._pending)
        self._retire_all_pending = self._retire_all_pending and not retire
        if self._pending or self._retire_all_pending:
            self.breaker.trip()  # more failed while we replayed: go round again
            return
        log.info("cache reachable again; breaker closed")
        self.breaker.close()
