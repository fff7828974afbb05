"""GuardedCache: any Cache with a time budget, a circuit breaker, and the change log relayed
into it. This is the cache the rest of the app sees.

- Every call gets ``budget`` seconds in total; past that it raises CacheUnavailable. This
  is the one bound on a cache call, and so the reason no request ever hangs on a cache.
  It is an ``asyncio.timeout`` around the call, except for a cache that ends its calls by a
  deadline itself (``keeps_deadlines``: RedisCache, whose connection fails every overdue
  call with one timer): it is handed the deadline in CALL_DEADLINE instead, which costs a
  context variable per call rather than a timer per call.
- While the breaker is open, calls raise CacheUnavailable at once (no I/O at all).
- An invalidation that cannot be delivered trips the breaker, so this process reads from
  the store, never from a cache that may hold the old value. Nothing needs remembering:
  the write is in the store's change log, which the relay applies.
- One background task per process (``start``): while the breaker is closed it relays the
  change log into the cache every ``interval`` (relay.py); while it is open it probes the
  cache once per reset period: drop its connections (after an outage they are dead),
  ping, relay everything missed, and only then close the breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import TypeVar

from eventapi.cache.base import (
    Cache,
    CacheBackend,
    CacheKey,
    CacheUnavailable,
    Fill,
    Lookup,
    Peekable,
    WriteLease,
)
from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.relay import catch_up
from eventapi.changes import Change, ChangeFeed
from eventapi.errors import StoreUnavailable

log = logging.getLogger("eventapi.cache")

T = TypeVar("T")

# A write's invalidation may take longer than a read's lookup: a read that gives up just
# reads the store, but a write that gives up is acknowledged while other processes may
# still serve the old value (until the relay delivers it). So it waits for a slow Redis
# (an overloaded host, a busy event loop) up to this long, still well inside any client's
# patience.
INVALIDATION_BUDGET = 0.2

# The deadline (the event loop's clock) of the guarded call under way in this task, handed
# to a cache that keeps deadlines itself: its every await ends by it, raising one of its
# failures or TimeoutError. None outside such a call: the cache then bounds its calls by
# its own time-outs.
CALL_DEADLINE: ContextVar[float | None] = ContextVar("cache_call_deadline", default=None)


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
        self.failures = inner.failures
        self._failed: tuple[type[Exception], ...] = (*inner.failures, TimeoutError)
        self._probe_failed: tuple[type[Exception], ...] = (*self._failed, StoreUnavailable)
        self.budget = budget
        self.breaker = breaker
        self._on_error = on_error
        self._inner_peek = inner.peek if isinstance(inner, Peekable) else None
        self._feed: ChangeFeed | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def connected(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED

    async def _call(
        self, op: str, call: Callable[[], Awaitable[T]], budget: float | None = None
    ) -> T:
        if not self.breaker.allows_calls():
            raise CacheUnavailable(f"{op}: breaker open")
        try:
            if getattr(self.inner, "keeps_deadlines", False):  # (asked of whatever is inner now)
                deadline = asyncio.get_running_loop().time() + (budget or self.budget)
                handed = CALL_DEADLINE.set(deadline)
                try:
                    result = await call()
                finally:
                    CALL_DEADLINE.reset(handed)
            else:
                async with asyncio.timeout(budget or self.budget):
                    result = await call()
        except self._failed as exc:  # the cache failed: degrade (a bug is not caught here)
            self._on_error(op)
            self.breaker.record_failure()
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

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        return await self._call(
            "lease_for_write", lambda: self.inner.lease_for_write(key, lease_ms)
        )

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill] = ()
    ) -> None:
        try:
            await self._call(
                "invalidate",
                lambda: self.inner.invalidate(item_names, seqs, fills),
                max(self.budget, INVALIDATION_BUDGET),
            )
        except CacheUnavailable:
            self._trip()

    async def retire_all(self) -> None:
        try:
            await self._call("retire_all", self.inner.retire_all)
        except CacheUnavailable:
            self._trip()

    async def watermark(self) -> int | None:
        return await self._call("watermark", self.inner.watermark)

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        await self._call("catch_up", lambda: self.inner.catch_up(changes, through))

    async def reset(self, head: int) -> None:
        await self._call("reset", lambda: self.inner.reset(head))

    async def reconnect(self) -> None:
        await self._call("reconnect", self.inner.reconnect)

    async def ping(self) -> None:
        await self._call("ping", self.inner.ping)

    async def start(self, feed: ChangeFeed, interval: float) -> None:
        """Relay ``feed`` into the cache now (a new in-process cache is reset while it is
        still empty), then every ``interval`` seconds; probe while the cache is down."""
        self._feed = feed
        await self.relay()
        self._task = asyncio.create_task(self._maintain(interval), name="cache-relay")

    async def close(self) -> None:
        # The flag as well as the cancel: redis-py can swallow a cancellation that lands
        # while it releases a connection, and the loop must end all the same.
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.inner.close()

    def _trip(self) -> None:
        # Re-tripping an open breaker would restart its reset period: under steady writes
        # the probe would never come.
        if self.breaker.allows_calls():
            self.breaker.trip()

    async def _maintain(self, interval: float) -> None:
        while not self._closing:
            # Scheduling, not synchronisation: the relay's period, or the breaker's.
            await asyncio.sleep(min(interval, self.breaker.seconds_until_probe()))
            if self.breaker.allows_calls():
                await self.relay()
            elif self.breaker.begin_probe():
                try:
                    await self.probe()
                except Exception:  # a bug: reported, and the breaker stays open
                    log.exception("cache probe failed")
                    self.breaker.trip()

    async def relay(self) -> None:
        """One pass of the relay; a failure is the breaker's business, or the store's, and
        the next pass tries again (the log keeps what this one could not apply)."""
        assert self._feed is not None
        try:
            await catch_up(self, self._feed)
        except (CacheUnavailable, StoreUnavailable):
            pass
        except Exception:  # a bug must not end the relay for the life of the process
            log.exception("cache relay pass failed")

    async def probe(self) -> None:
        """Reconnect, check the cache and relay what it missed; close the breaker only if
        all of that worked."""
        try:
            async with asyncio.timeout(self.budget * 4):
                await self.inner.reconnect()
                await self.inner.ping()
            # Each call below is bounded by the Redis client's socket timeout and the
            # store's own timeout.
            if self._feed is not None:
                await catch_up(self.inner, self._feed)
        except self._probe_failed as exc:
            log.info("cache still unavailable: %s", type(exc).__name__)
            self.breaker.trip()
            return
        log.info("cache reachable again; breaker closed")
        self.breaker.close()
