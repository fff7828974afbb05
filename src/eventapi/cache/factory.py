"""Opens the cache named by the settings, and the rate limits' client of the same Redis. Only
the composition root (app.py) calls this."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from eventapi.cache.base import Cache
from eventapi.cache.breaker import CircuitBreaker
from eventapi.cache.entry import ENTRY_CODEC, Entry
from eventapi.cache.guard import INVALIDATION_BUDGET, GuardedCache, fence_for
from eventapi.metrics import Metrics
from eventapi.settings import Settings, sqlite_path, without_password

if TYPE_CHECKING:
    from eventapi.cache.redis import RedisLink

log = logging.getLogger("eventapi.cache")

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# How long start-up waits for Redis to say whether it is a cluster node (and, if it is, for
# the cluster's layout). Past it the app starts all the same and asks on first use.
DETECT_WITHIN = 1.0


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


async def detect_cluster(link: RedisLink) -> None:
    """Ask the node the URL names whether it belongs to a Redis Cluster (INFO cluster), and
    if so learn the cluster's nodes and slots: the cache is then used as a cluster. A node
    that does not answer now is asked again before the cache's first command."""
    from eventapi.cache.redis import REDIS_FAILURES

    failed: tuple[type[Exception], ...] = (*REDIS_FAILURES, TimeoutError)
    try:
        async with asyncio.timeout(DETECT_WITHIN):
            await link.open()
    except failed as exc:
        log.info("cache: Redis did not answer at start-up (%s)", type(exc).__name__)
        return
    if link.cluster:
        log.info("cache: Redis Cluster (the URL names one of its nodes)")


async def resolve_cache_url(settings: Settings) -> str:
    if settings.cache_url is not None:
        log.info("cache: %s (EVENTAPI_CACHE_URL)", without_password(settings.cache_url))
        return settings.cache_url
    if await redis_answers(DEFAULT_REDIS_URL):
        log.info("cache: %s (auto-detected; set EVENTAPI_CACHE_URL to choose)", DEFAULT_REDIS_URL)
        return DEFAULT_REDIS_URL
    log.info("cache: memory:// (no Redis at %s; set EVENTAPI_CACHE_URL)", DEFAULT_REDIS_URL)
    return "memory://"


@asynccontextmanager
async def open_cache(
    settings: Settings, metrics: Metrics
) -> AsyncIterator[GuardedCache[Entry] | None]:
    """The cache of Entry values the settings name (None: EVENTAPI_CACHE_URL=none)."""
    url = await resolve_cache_url(settings)
    if url == "none":
        log.info("cache: off")
        yield None
        return
    inner: Cache[Entry]
    fence = 0.0  # the in-process cache: no other process reads it
    if url.startswith("memory:"):
        from eventapi.cache.memory import MemoryCache

        inner = MemoryCache(
            settings.cache_max_entries, max_bytes=settings.cache_max_bytes, sizeof=Entry.cost
        )
    else:
        from eventapi.cache.redis import RedisCache, RedisLink

        # The socket may wait as long as the longest budget (a write's invalidation); each
        # call's own budget is the guard's.
        longest = max(settings.cache_timeout, INVALIDATION_BUDGET)
        link = RedisLink(url, settings.cache_timeout, socket_timeout=longest)
        await detect_cluster(link)
        inner = RedisCache(link, namespace(settings), ENTRY_CODEC)
        fence = fence_for(settings.cache_relay_interval)
    breaker = CircuitBreaker(reset_timeout=settings.cache_breaker_reset)
    cache = GuardedCache(
        inner,
        settings.cache_timeout,
        breaker,
        on_error=lambda op: metrics.cache_errors.labels(op).inc(),
        fence=fence,
    )
    try:
        yield cache
    finally:
        await cache.close()


# The rate limits' connections to Redis, beside the cache's own (ratelimit/shared.py).
LIMITS_MAX_CONNECTIONS = 64


def limits_link(settings: Settings, cache: GuardedCache[Entry] | None) -> RedisLink | None:
    """A client of the Redis the cache uses (named, or auto-detected), for the rate limits;
    None when the cache is not Redis, so each process limits on its own. Connections are
    made, and whether it is a cluster found out, on first use. A restarted Redis is no
    danger to rate limits (a bucket lost or restored is just a bucket): its connections
    need not watch for one."""
    url = settings.cache_url
    if url is None and cache is not None and cache.backend == "redis":
        url = DEFAULT_REDIS_URL
    if url is None or not url.startswith(("redis:", "rediss:")):
        return None
    from eventapi.cache.redis import RedisLink

    return RedisLink(
        url, settings.cache_timeout, max_connections=LIMITS_MAX_CONNECTIONS, watch_restarts=False
    )
