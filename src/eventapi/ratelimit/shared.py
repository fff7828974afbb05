"""A limit shared by every process through Redis, without a Redis call on every request.

Redis holds one GCRA bucket per client and limit (local.py explains GCRA), under the
cache's namespace; one Lua script takes up to ``want`` tokens at once, by Redis' own clock
(TIME), so the processes' clocks do not matter. A process takes a *batch* of tokens when it
has none, keeps them, and lets the next requests of that client through on them with no
I/O at all. A refusal is remembered too: until the next token is due, the same client is
refused without asking Redis again. So Redis sees about one call per batch of accepted
requests, and one per token period of a client that keeps knocking.

The batch is a tenth of the rate per second, capped at MAX_BATCH and at a tenth of the
count; below 20 requests a second it is 1 (a call per accepted request: limits that low
guard writes, which go to the store anyway). Held tokens are spent within LEASE_SECONDS or
dropped. Only one batch per client is on its way from Redis at a time: a request that finds
one on its way waits for it and takes from it (and after MAX_WAITS such batches ran out
before its turn, takes a single token for itself).

How exact. Tokens are taken from Redis before they are spent, so the shared bucket is never
overdrawn; the only slack is in the tokens processes hold. With P processes, the requests
accepted from one client under one limit in any interval of t seconds are at most

    count + rate * t + P * (batch - 1)

where ``count + rate * t`` is what a single exact bucket accepts. With a batch of 1 (any
limit below 20/second: the production write limit, 20/minute...) the limit is exact across
processes. Tokens held by one process are not usable by another, so a client spreading its
requests over processes may be refused up to P * (batch - 1) requests early.

Redis Cluster. The URL may name any node of a cluster: the client then asks it (INFO cluster,
before its first call) and uses the cluster (cache/redis/link.py, RedisLink). The script touches
one key, given in KEYS, so any cluster node, or a proxy, routes it; the buckets carry no hash
tag and so spread over every node.

Redis failing never blocks a request: every call has ``budget`` seconds (the cache's time
budget) and a circuit breaker; a failed or late call, and every call while the breaker is
open, is answered by a LocalBuckets of the same rate in this process. While Redis is away
each process limits on its own: P processes accept up to P times the limit. The breaker
lets one request probe Redis once per reset period, and sharing resumes when it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from eventapi.cache.breaker import BreakerState, CircuitBreaker
from eventapi.cache.redis import REDIS_FAILURES, Client, RedisLink, Script
from eventapi.ratelimit.local import LocalBuckets
from eventapi.ratelimit.rates import Rate

log = logging.getLogger("eventapi.ratelimit")

MAX_BATCH = 50
LEASE_SECONDS = 1.0
MAX_WAITS = 3
_FAILURES: tuple[type[Exception], ...] = (*REDIS_FAILURES, TimeoutError)

# KEYS: the bucket. ARGV: interval (microseconds, may have a fraction), period (microseconds),
# tokens wanted. Returns {tokens granted, microseconds until the next token when none was}.
# The TAT is kept as a whole number of microseconds of Redis' clock, and expires when the
# bucket is full again (a missing bucket is a full one).
TAKE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local room = math.floor((now + period - tat) / interval + 1e-9)
local granted = math.min(room, tonumber(ARGV[3]))
if granted < 1 then
  return {0, math.max(1, math.ceil(tat + interval - period - now))}
end
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return {granted, 0}
"""


def batch_size(rate: Rate) -> int:
    """Tokens a process takes from Redis at once for ``rate`` (see the module docstring)."""
    per_second = rate.count / rate.period
    return max(1, min(MAX_BATCH, rate.count // 10, int(per_second / 10)))


class RedisTokens:
    """The Redis side, one per app: a client (attached in the app's lifespan), a time budget
    for every call, and a circuit breaker of its own (the cache's stays the cache's)."""

    def __init__(
        self,
        budget: float,
        breaker: CircuitBreaker,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self.budget = budget
        self.breaker = breaker
        self._on_error = on_error
        self._link: RedisLink | None = None
        self._script: Script | None = None

    def attach(self, client: Client | RedisLink) -> None:
        """Use ``client``, one Redis or any node of a cluster (cache/factory.py, limits_link)."""
        self._link = client if isinstance(client, RedisLink) else RedisLink.of(client)
        self._script = Script(TAKE)

    async def close(self) -> None:
        link, self._link, self._script = self._link, None, None
        if link is not None:
            await link.close()

    def ready(self) -> bool:
        """Whether to ask Redis now. True once per breaker reset period while it is open:
        the caller's take() is then the probe."""
        if self._link is None:
            return False
        return self.breaker.allows_calls() or self.breaker.begin_probe()

    @property
    def probing(self) -> bool:
        """Whether a probe is under way (the one ready() let through)."""
        return self.breaker.state is BreakerState.HALF_OPEN

    async def take(self, key: str, rate: Rate, want: int) -> tuple[int, float] | None:
        """Up to ``want`` tokens of the bucket ``key``: (granted, seconds until the next
        token if none was), or None if Redis did not answer in time."""
        link, script = self._link, self._script
        if link is None or script is None:  # closed meanwhile (shutting down)
            return None
        probing = self.probing
        args: list[str | int] = [repr(rate.interval * 1e6), rate.period * 1_000_000, want]
        try:
            async with asyncio.timeout(self.budget):
                if probing:  # after an outage every pooled connection is dead
                    await link.reconnect()
                reply = await link.run(script, [key], args)
            granted, wait = int(reply[0]), int(reply[1]) / 1e6
        except _FAILURES as exc:
            self._failed(type(exc).__name__)
            return None
        except Exception:  # a bug: reported, and the request is still served
            log.exception("rate limit call to Redis failed")
            self._failed("error")
            return None
        except BaseException:
            if probing:  # cancelled (the client left): the next reset period probes again
                self.breaker.trip()
            raise
        if probing:
            self.breaker.close()
            log.info("rate limits: Redis reachable again; limits shared again")
        else:
            self.breaker.record_success()
        return granted, wait

    def _failed(self, what: str) -> None:
        self._on_error()
        was_closed = self.breaker.allows_calls()
        self.breaker.record_failure()
        if was_closed and not self.breaker.allows_calls():
            log.warning(
                "rate limits: Redis unavailable (%s); each process limits on its own "
                "until it answers",
                what,
            )


class _Lease:
    __slots__ = ("blocked", "expires", "held")

    def __init__(self) -> None:
        self.held = 0  # tokens taken from Redis, not spent yet
        self.expires = 0.0  # when they stop being spendable
        self.blocked = 0.0  # until when Redis said no token is due


class SharedBuckets:
    """One limit's buckets, shared through ``redis``; in process when it is not there."""

    def __init__(
        self,
        rate: Rate,
        prefix: str,
        redis: RedisTokens,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
        batch: int | None = None,
    ) -> None:
        self.rate = rate
        self.prefix = prefix
        self.batch = batch_size(rate) if batch is None else batch
        self.fallback = LocalBuckets(rate, clock=clock, max_clients=max_clients)
        self._redis = redis
        self._clock = clock
        self._max = max_clients
        self._leases: dict[str, _Lease] = {}
        self._leasing: dict[str, asyncio.Event] = {}  # batches on their way, by client

    def take_now(self, client: str) -> float | None:
        """Take one token without I/O if that can be decided here: 0.0 if there was one,
        seconds until there is one otherwise, None if Redis must be asked (take())."""
        lease = self._leases.get(client)
        if lease is not None:
            now = self._clock()
            if lease.held and now < lease.expires:
                lease.held -= 1
                return 0.0
            if now < lease.blocked:
                return lease.blocked - now
        if self._redis.ready():
            return None
        return self.fallback.take_now(client)

    async def take(self, client: str) -> float:
        """Take one token from Redis: a batch, unless this client's batch is on its way,
        in which case wait for it and take from it (MAX_WAITS times at most, then a single
        token of one's own)."""
        for _ in range(MAX_WAITS):
            # A request that took the breaker's probe (take_now) makes it, at once.
            if self.batch == 1 or self._redis.probing:
                break
            leasing = self._leasing.get(client)
            if leasing is None:
                return await self._take(client, self.batch)
            await leasing.wait()
            wait = self.take_now(client)
            if wait is not None:
                return wait
        return await self._take(client, 1)

    async def _take(self, client: str, want: int) -> float:
        done: asyncio.Event | None = None
        if want > 1:
            done = self._leasing[client] = asyncio.Event()
        try:
            reply = await self._redis.take(self.prefix + client, self.rate, want)
        finally:
            if done is not None:
                if self._leasing.get(client) is done:
                    del self._leasing[client]
                done.set()
        if reply is None:
            return self.fallback.take_now(client)
        granted, wait = reply
        now = self._clock()
        lease = self._lease(client)
        if granted < 1:
            lease.blocked = now + wait
            return wait
        if granted > 1:
            lease.held = (lease.held if now < lease.expires else 0) + granted - 1
            lease.expires = now + LEASE_SECONDS
        return 0.0

    def _lease(self, client: str) -> _Lease:
        lease = self._leases.get(client)
        if lease is None:
            if len(self._leases) >= self._max:
                # Forgetting a lease forgets at most its held tokens (stricter) or a refusal
                # (Redis is asked again): never looser than the shared bucket.
                for old in list(self._leases)[: self._max // 4 + 1]:
                    del self._leases[old]
            lease = self._leases[client] = _Lease()
        return lease
