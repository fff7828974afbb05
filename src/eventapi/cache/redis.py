"""Redis cache (redis-py asyncio + hiredis). Each operation is one Lua script: atomic on the
server and a single round trip, so the lease check and the fill cannot interleave with a
writer's invalidation.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from eventapi.cache.base import SCHEMA_VERSION, CacheBackend, CacheKey, Lookup, LookupState

# KEYS: epoch, generation. ARGV: prefix, name, is_list, token, lease_ms
_LEASE = """
local key = ARGV[1] .. ':' .. (redis.call('GET', KEYS[1]) or '0') .. ':' .. ARGV[2]
if ARGV[3] == '1' then key = key .. ':g' .. (redis.call('GET', KEYS[2]) or '0') end
local value = redis.call('GET', key)
if value then return {1, key, value} end
if redis.call('SET', key .. ':lease', ARGV[4], 'NX', 'PX', ARGV[5]) then
  return {2, key, ''}
end
return {3, key, ''}
"""

# KEYS: resolved key. ARGV: token, value, ttl_ms
_FILL = """
if redis.call('GET', KEYS[1] .. ':lease') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[1] .. ':lease')
  return 1
end
return 0
"""

# KEYS: epoch, generation. ARGV: prefix, item names...
_INVALIDATE = """
local base = ARGV[1] .. ':' .. (redis.call('GET', KEYS[1]) or '0') .. ':'
for i = 2, #ARGV do
  redis.call('DEL', base .. ARGV[i], base .. ARGV[i] .. ':lease')
end
return redis.call('INCR', KEYS[2])
"""

_STATES = {1: LookupState.HIT, 2: LookupState.LEASED, 3: LookupState.BUSY}


def connect(url: str, timeout: float, max_connections: int = 128) -> aioredis.Redis:
    """A client that never retries or waits beyond ``timeout``: the caller owns the budget.

    The pool blocks (up to ``timeout``) for a free connection instead of failing at once,
    so a burst of requests queues briefly rather than opening the circuit breaker.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        decode_responses=False,
    )
    client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return client


class RedisCache:
    backend: CacheBackend = "redis"

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self._client = client
        self._prefix = f"{namespace}:{SCHEMA_VERSION}"
        self._epoch_key = f"{self._prefix}:epoch"
        self._generation_key = f"{self._prefix}:generation"
        self._lease_script = client.register_script(_LEASE)
        self._fill_script = client.register_script(_FILL)
        self._invalidate_script = client.register_script(_INVALIDATE)

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup:
        token = secrets.token_hex(8)
        args = [self._prefix, key.name, "1" if key.is_list else "0", token, lease_ms]
        reply: list[Any] = await self._lease_script(
            keys=[self._epoch_key, self._generation_key], args=args
        )
        state = _STATES[int(reply[0])]
        resolved = reply[1].decode()
        if state is LookupState.HIT:
            return Lookup(state, resolved, value=bytes(reply[2]))
        return Lookup(state, resolved, token=token if state is LookupState.LEASED else None)

    async def fill(self, resolved: str, token: str, value: bytes, ttl_ms: int) -> bool:
        done = await self._fill_script(keys=[resolved], args=[token, value, ttl_ms])
        return bool(done)

    async def invalidate(self, item_names: Sequence[str]) -> None:
        await self._invalidate_script(
            keys=[self._epoch_key, self._generation_key], args=[self._prefix, *item_names]
        )

    async def retire_all(self) -> None:
        await self._client.incr(self._epoch_key)

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
