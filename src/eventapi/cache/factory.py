"""Opens the cache named by the settings. Only the composition root calls this."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from eventapi.cache.base import Cache
from eventapi.cache.breaker import CircuitBreaker
from eventapi.cache.guard import INVALIDATION_BUDGET, GuardedCache
from eventapi.metrics import Metrics
from eventapi.settings import Settings, sqlite_path

log = logging.getLogger("eventapi.cache")

DEFAULT_REDIS_URL = "redis://localhost:6379/0"


def namespace(settings: Settings) -> str:
    """Key prefix: two deployments with different databases never share entries."""
    if settings.cache_namespace:
        return settings.cache_namespace
    url = settings.database_url
    if settings.store_backend == "sqlite":
        url = "sqlite:" + str(Path(sqlite_path(url)).resolve())
    return "eventapi:" + hashlib.sha256(url.encode()).hexdigest()[:12]


async def redis_answers(url: str, timeout: float = 0.25) -> bool:
    from eventapi.cache.redis import connect

    client = connect(url, timeout)
    try:
        async with asyncio.timeout(timeout):
            await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


async def resolve_cache_url(settings: Settings) -> str:
    if settings.cache_url is not None:
        return settings.cache_url
    if await redis_answers(DEFAULT_REDIS_URL):
        log.info("cache: %s (auto-detected; set EVENTAPI_CACHE_URL to choose)", DEFAULT_REDIS_URL)
        return DEFAULT_REDIS_URL
    log.info("cache: memory:// (no Redis at %s; set EVENTAPI_CACHE_URL)", DEFAULT_REDIS_URL)
    return "memory://"


@asynccontextmanager
async def open_cache(settings: Settings, metrics: Metrics) -> AsyncIterator[GuardedCache | None]:
    url = await resolve_cache_url(settings)
    if url == "none":
        log.info("cache: off")
        yield None
        return
    inner: Cache
    if url.startswith("memory:"):
        from eventapi.cache.memory import MemoryCache

        inner = MemoryCache(settings.cache_max_entries)
    else:
        from eventapi.cache.redis import RedisCache, connect

        # The socket may wait as long as the longest budget (a write's invalidation); each
        # call's own budget is the guard's.
        longest = max(settings.cache_timeout, INVALIDATION_BUDGET)
        client = connect(url, settings.cache_timeout, socket_timeout=longest)
        inner = RedisCache(client, namespace(settings))
    breaker = CircuitBreaker(reset_timeout=settings.cache_breaker_reset)
    cache = GuardedCache(
        inner,
        settings.cache_timeout,
        breaker,
        on_error=lambda op: metrics.cache_errors.labels(op).inc(),
    )
    try:
        yield cache
    finally:
        await cache.close()
