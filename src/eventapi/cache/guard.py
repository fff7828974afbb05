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
- A cache that answers but refuses a command (``refusals``: Redis full under noeviction, a
  read-only replica, a failed save, a busy script) is failing, not working: it trips the
  breaker at once, whatever else succeeds meanwhile (hits of entries it still holds would
  otherwise keep resetting the failure count). ``state`` then says "refusing writes".
  So does a cache whose server was replaced (CacheReplaced: a Redis restarted from a
  snapshot may hold values older than writes acknowledged since).
  While it is open for refusals, invalidations are still sent: a full Redis runs them
  (redis.py), they cost a round trip, not a time-out, and every other process, whose
  breaker may still be closed, then never serves what this process's writes replaced.
- The log names each episode once: when the breaker opens (with its reason) and when it
  closes again; the failures in between are at debug level.
- One background task per process (``start``): while the breaker is closed it relays the
  change log into the cache every ``interval`` (relay.py); while it is open it probes the
  cache once per reset period: drop its connections (after an outage they are dead),
  ping, relay everything missed, and only then close the breaker.
- The fence (a cache other processes read: Redis). A write whose invalidation failed is in
  the change log, but another process may still find the old value in the cache until its
  relay applies the change. So two rules, with one length of time, ``fence``:
  - the gate: this process reads the cache only while its last completed relay pass
    *started* less than ``fence`` ago; otherwise its reads go to the store (BYPASS);
  - the fence: a write whose invalidation failed is acknowledged only ``fence`` after its
    commit (``invalidate`` and ``retire_all`` wait that long before they return).
  When the acknowledgement goes out, every other process has either completed a pass that
  started after the commit (it read the change from the log and applied it before any
  later lookup), or its last completed pass started more than ``fence`` ago: it is gated
  until a pass started after the commit completes. Either way no read sent after the
  acknowledgement is served the old value (tests/cache/model: ``fenced``;
  tests/cache/processes/test_fence.py). Only durations are compared, each on one process's
  clock, so the processes need no common clock; they must share the relay interval (the
  settings), of which the fence is a multiple.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Generic, TypeVar

from eventapi.cache.base import (
    Cache,
    CacheBackend,
    CacheKey,
    CacheReplaced,
    CacheUnavailable,
    Fill,
    Lookup,
    Peekable,
    V,
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
# A write's lease (base.py, Warm writes) is awaited before its store write, but it only
# saves later reads a store read: one that has not come back by then is given up and the
# write leaves a hole. So a write waits on a slow cache at most this plus the invalidation.
WRITE_LEASE_BUDGET = 0.025
# Relay passes failed in a row that open the breaker (relay()).
RELAY_FAILURES = 2
# The fence (module docstring) is this many relay intervals, and at least MIN_FENCE: passes
# start one interval plus the pass apart, so a process is gated only when its relay has
# fallen several passes behind (a stalled or starved process), never in a busy moment.
FENCE_PASSES = 4
MIN_FENCE = 1.0


def fence_for(relay_interval: float) -> float:
    return max(MIN_FENCE, FENCE_PASSES * relay_interval)


# The deadline (the event loop's clock) of the guarded call under way in this task, handed
# to a cache that keeps deadlines itself: its every await ends by it, raising one of its
# failures or TimeoutError. None outside such a call: the cache then bounds its calls by
# its own time-outs.
CALL_DEADLINE: ContextVar[float | None] = ContextVar("cache_call_deadline", default=None)


# What /health says of the cache (``GuardedCache.state``).
CONNECTED, DISCONNECTED, REFUSING = "connected", "disconnected", "refusing writes"


class GuardedCache(Generic[V]):
    def __init__(
        self,
        inner: Cache[V],
        budget: float,
        breaker: CircuitBreaker,
        on_error: Callable[[str], None] = lambda op: None,
        fence: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.backend: CacheBackend = inner.backend
        self.failures = inner.failures
        self.refusals = inner.refusals
        self._failed: tuple[type[Exception], ...] = (*inner.failures, TimeoutError)
        self._probe_failed: tuple[type[Exception], ...] = (*self._failed, StoreUnavailable)
        self.budget = budget
        self.breaker = breaker
        self._on_error = on_error
        self._inner_peek: Callable[[CacheKey], V | None] | None = (
            inner.peek if isinstance(inner, Peekable) else None
        )
        self._feed: ChangeFeed | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._reason = DISCONNECTED  # why the breaker is open, while it is
        self._relay_failures = 0  # relay passes failed in a row
        self._probe_spoiled = False  # a retiring call failed while the probe was under way
        # The fence (module docstring); 0: none, for a cache no other process reads.
        self.fence = fence
        self._clock = clock
        self._current_since: float | None = None  # start of the last completed relay pass
        self._gated = False  # reads are gated now (logged once per episode)

    @property
    def connected(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED

    @property
    def state(self) -> str:
        """CONNECTED, or why not: DISCONNECTED or REFUSING."""
        return CONNECTED if self.connected else self._reason

    async def _call(
        self,
        op: str,
        call: Callable[[], Awaitable[T]],
        budget: float | None = None,
        *,
        trips: bool = False,
        counts: bool = True,
        retires: bool = False,
    ) -> T:
        """``call`` within the budget; a failure raises CacheUnavailable and counts against
        the breaker (unless not ``counts``), or opens it (a refusal, or ``trips``).
        ``retires``: it only removes entries, so it is made while the breaker is open for
        refusals (a refusing Redis still runs it), and while a probe is under way (see
        ``probe``)."""
        if not self.breaker.allows_calls() and not (retires and self._retiring_allowed()):
            raise CacheUnavailable(f"{op}: breaker open", self._reason)
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
            refused = isinstance(exc, self.refusals)
            reason = REFUSING if refused else DISCONNECTED
            log.debug("cache %s failed: %s", op, type(exc).__name__)
            if not self.breaker.allows_calls():  # a retiring call made while open
                self._reason = reason
                self._probe_spoiled = True
            elif refused or trips or isinstance(exc, CacheReplaced):
                self._trip(reason, op, exc)
            elif counts:
                self.breaker.record_failure()
                self._opened(reason, op, exc)
            raise CacheUnavailable(op, reason) from exc
        self.breaker.record_success()
        return result

    def peek(self, key: CacheKey) -> V | None:
        """Synchronous hit from an in-process cache; None (ask lease()) for any other."""
        if self._inner_peek is None or not self.breaker.allows_calls() or not self.current():
            return None
        return self._inner_peek(key)

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup[V]:
        # The gate is checked before the lookup is sent: the pass it trusts has completed,
        # so its catch-up ran in the cache before this lookup can.
        if not self.current():
            raise CacheUnavailable("lease: relay behind", self.state)
        return await self._call("lease", lambda: self.inner.lease(key, lease_ms))

    def current(self) -> bool:
        """The gate (module docstring): whether this process may read the cache now."""
        if self.fence <= 0 or self._feed is None:  # nobody else writes it, or no relay here
            return True
        since = self._current_since
        current = since is not None and self._clock() - since < self.fence
        if current == self._gated:  # the episode's first and last reads log it
            self._gated = not current
            if current:
                log.info("cache relay current again; reading from the cache")
            else:
                log.warning(
                    "cache relay has not completed a pass in %.1f s: reading from the store "
                    "until it does",
                    self.fence,
                )
        return current

    async def fill(self, resolved: str, token: str, value: V, ttl_ms: int) -> bool:
        return await self._call("fill", lambda: self.inner.fill(resolved, token, value, ttl_ms))

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        return await self._call(
            "lease_for_write",
            lambda: self.inner.lease_for_write(key, lease_ms),
            min(self.budget, WRITE_LEASE_BUDGET),
            counts=False,  # its budget is short on purpose: a miss of it is no failure
        )

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill[V]] = ()
    ) -> None:
        """After a write has committed; returns when it may be acknowledged (the fence)."""
        committed = self._clock()
        try:
            await self._call(
                "invalidate",
                lambda: self.inner.invalidate(item_names, seqs, fills),
                self._slow_budget,
                trips=True,
                retires=True,
            )
        except CacheUnavailable:
            await self._wait_fence(committed)

    async def retire_all(self) -> None:
        committed = self._clock()
        try:
            await self._call(
                "retire_all", self.inner.retire_all, self._slow_budget, trips=True, retires=True
            )
        except CacheUnavailable:
            await self._wait_fence(committed)

    async def _wait_fence(self, committed: float) -> None:
        """The fence: a write whose invalidation failed waits until ``fence`` has passed
        since its commit (``committed`` is taken after it), by when every process reading
        the cache has applied it or is gated (module docstring)."""
        wait = committed + self.fence - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)  # a protocol's wait: the fence is a length of time

    # The relay's calls: a failure counts like any other, and relay() counts failed passes
    # on their own as well (a refusal trips at once).
    async def watermark(self) -> int | None:
        return await self._call("watermark", self.inner.watermark, self._slow_budget)

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        await self._call(
            "catch_up", lambda: self.inner.catch_up(changes, through), self._slow_budget
        )

    async def reset(self, head: int) -> None:
        await self._call("reset", lambda: self.inner.reset(head), self._slow_budget)

    @property
    def _slow_budget(self) -> float:
        return max(self.budget, INVALIDATION_BUDGET)

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

    def _retiring_allowed(self) -> bool:
        return self._reason == REFUSING or self.breaker.state is BreakerState.HALF_OPEN

    def _trip(self, reason: str, op: str, exc: BaseException) -> None:
        # Re-tripping an open breaker would restart its reset period: under steady writes
        # the probe would never come.
        if self.breaker.allows_calls():
            self.breaker.trip()
            self._opened(reason, op, exc)

    def _opened(self, reason: str, op: str, exc: BaseException) -> None:
        """Log the episode once, when the breaker has just opened."""
        if self.breaker.allows_calls():
            return
        self._reason = reason
        log.warning(
            "cache %s (%s failed: %s): reading from the store until it recovers",
            reason,
            op,
            exc.__class__.__name__,
        )

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
        the next pass tries again (the log keeps what this one could not apply).

        Failed passes are counted on their own: RELAY_FAILURES in a row open the breaker,
        whatever hits succeed in between (they reset the breaker's own count). So a
        process whose relay cannot deliver what another process's write could not serves
        from the cache for two relay intervals at most; one failed pass alone (a slow
        moment) does not open it: an open breaker makes this process's writes skip their
        invalidations, which costs the other processes more than the pass did."""
        assert self._feed is not None
        started = self._clock()
        try:
            await catch_up(self, self._feed)
        except CacheUnavailable as failed:
            self._relay_failures += 1
            if self._relay_failures >= RELAY_FAILURES:
                self._trip(failed.reason, "relay", failed)
            return
        except StoreUnavailable:
            return
        except Exception:  # a bug must not end the relay for the life of the process
            log.exception("cache relay pass failed")
            return
        self._relay_failures = 0
        self._current_since = started

    async def probe(self) -> None:
        """Reconnect, check the cache and relay what it missed; close the breaker only if
        all of that worked. A write that commits while the probe runs may come after its
        relay has read the log: its invalidation is sent (not skipped, as while open), and
        if it fails the probe does not close the breaker (tests/cache/model: the race of
        invalidate_during_probe=False)."""
        self._probe_spoiled = False
        try:
            async with asyncio.timeout(self.budget * 4):
                await self.inner.reconnect()
                await self.inner.ping()
            # Each call below is bounded by the Redis client's socket timeout and the
            # store's own timeout.
            started = self._clock()
            if self._feed is not None:
                await catch_up(self.inner, self._feed)
        except self._probe_failed as exc:
            if isinstance(exc, self._failed):
                self._reason = REFUSING if isinstance(exc, self.refusals) else DISCONNECTED
            log.debug("cache still unavailable: %s", type(exc).__name__)
            self.breaker.trip()
            return
        if self._probe_spoiled:
            log.debug("cache probe spoiled by a failed invalidation")
            self.breaker.trip()
            return
        log.info("cache reachable again; breaker closed")
        self._relay_failures = 0  # the probe's own pass worked
        self._current_since = started
        self.breaker.close()
