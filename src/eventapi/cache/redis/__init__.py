"""Redis as the cache: the cache (cache.py: key layout and operations), its Lua scripts
(scripts.py) and its connections (link.py: one Redis, a cluster, the lean RESP client)."""

from eventapi.cache.redis.cache import RedisCache, hash_tag
from eventapi.cache.redis.link import (
    READS,
    REDIS_FAILURES,
    WRITES,
    Client,
    RedisLink,
    cluster_enabled,
    connect,
    connect_cluster,
)
from eventapi.cache.redis.scripts import Script

__all__ = [
    "READS",
    "REDIS_FAILURES",
    "WRITES",
    "Client",
    "RedisCache",
    "RedisLink",
    "Script",
    "cluster_enabled",
    "connect",
    "connect_cluster",
    "hash_tag",
]
