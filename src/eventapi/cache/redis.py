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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from eventapi.cache.base import (
    SCHEMA_VERSION,
    CacheBackend,
    CacheKey,
    Lookup,
    LookupState,
    item_key,
)
from eventapi.changes import Change

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

# The change-log scripts share one key layout. KEYS: epoch, generation, watermark, delivered
# (a sorted set of seqs delivered above the watermark). ADVANCE moves the watermark over
# every delivered seq that directly follows it; the set keeps at most 10000 seqs (a
# forgotten one is applied again by the relay: harmless).
_ADVANCE = """
local function advance(applied)
  while redis.call('ZSCORE', KEYS[4], applied + 1) do applied = applied + 1 end
  redis.call('SET', KEYS[3], applied)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', applied)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 10000, -1)
end
local function base()
  return ARGV[1] .. ':' .. (redis.call('GET', KEYS[1]) or '0') .. ':'
end
"""

# ARGV: prefix, number of seqs, seqs..., item names...
_INVALIDATE = (
    _ADVANCE
    + """
local nseqs = tonumber(ARGV[2])
local prefix = base()
for i = 3 + nseqs, #ARGV do
  redis.call('DEL', prefix .. ARGV[i], prefix .. ARGV[i] .. ':lease')
end
redis.call('INCR', KEYS[2])
local applied = redis.call('GET', KEYS[3])
if applied and nseqs > 0 then
  applied = tonumber(applied)
  for i = 3, 2 + nseqs do
    local seq = tonumber(ARGV[i])
    if seq > applied then redis.call('ZADD', KEYS[4], seq, seq) end
  end
  advance(applied)
end
return 1
"""
)

# ARGV: prefix, through, then (seq, item name or '*' for everything) pairs.
_CATCH_UP = (
    _ADVANCE
    + """
local applied = redis.call('GET', KEYS[3])
if not applied then return 0 end
applied = tonumber(applied)
local touched = false
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > applied and not redis.call('ZSCORE', KEYS[4], seq) then
    if ARGV[i + 1] == '*' then
      redis.call('INCR', KEYS[1])
    else
      local key = base() .. ARGV[i + 1]
      redis.call('DEL', key, key .. ':lease')
    end
    touched = true
  end
end
if touched then redis.call('INCR', KEYS[2]) end
local through = tonumber(ARGV[2])
if through > applied then applied = through end
advance(applied)
return 1
"""
)

# ARGV: prefix, head.
_RESET = (
    _ADVANCE
    + """
redis.call('INCR', KEYS[1])
local applied = tonumber(redis.call('GET', KEYS[3]) or '0')
local head = tonumber(ARGV[2])
if head > applied then applied = head end
advance(applied)
return 1
"""
)

_STATES = {1: LookupState.HIT, 2: LookupState.LEASED, 3: LookupState.BUSY}


def connect(
    url: str, timeout: float, max_connections: int = 128, socket_timeout: float | None = None
) -> aioredis.Redis:
    """A client that never waits beyond ``timeout``: the caller owns the budget.

    The pool blocks (up to ``timeout``) for a free connection instead of failing at once,
    so a burst of requests queues briefly rather than opening the circuit breaker. A call
    that finds its pooled connection dead (Redis restarted) retries once on a new one, at
    once; a time-out is never retried. Every script is safe to run twice.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=socket_timeout or timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        health_check_interval=0,
        decode_responses=False,
    )
    client: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return client


class RedisCache:
    backend: CacheBackend = "redis"
    failures: tuple[type[Exception], ...] = (RedisError, OSError)

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self._client = client
        self._prefix = f"{namespace}:{SCHEMA_VERSION}"
        self._epoch_key = f"{self._prefix}:epoch"
        self._generation_key = f"{self._prefix}:generation"
        self._log_keys = [
            self._epoch_key,
            self._generation_key,
            f"{self._prefix}:watermark",
            f"{self._prefix}:delivered",
        ]
        self._lease_script = client.register_script(_LEASE)
        self._fill_script = client.register_script(_FILL)
        self._invalidate_script = client.register_script(_INVALIDATE)
        self._catch_up_script = client.register_script(_CATCH_UP)
        self._reset_script = client.register_script(_RESET)

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

    async def invalidate(self, item_names: Sequence[str], seqs: Sequence[int] = ()) -> None:
        args: list[str | int] = [self._prefix, len(seqs), *seqs, *item_names]
        await self._invalidate_script(keys=self._log_keys, args=args)

    async def retire_all(self) -> None:
        await self._client.incr(self._epoch_key)

    async def watermark(self) -> int | None:
        raw = await self._client.get(self._log_keys[2])
        return None if raw is None else int(raw)

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        args: list[str | int] = [self._prefix, through]
        for change in changes:
            name = "*" if change.event_id is None else item_key(change.event_id).name
            args += [change.seq, name]
        await self._catch_up_script(keys=self._log_keys, args=args)

    async def reset(self, head: int) -> None:
        await self._reset_script(keys=self._log_keys, args=[self._prefix, head])

    async def reconnect(self) -> None:
        await self._client.connection_pool.disconnect()

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        await self._client.aclose()
