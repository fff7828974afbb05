"""The connections to Redis, on one Redis or on a Redis Cluster.

Clients. On one Redis (and behind a proxy) the scripts and the other commands are pipelined
by a lean RESP client (resp.py: every cached GET runs a script, and redis-py's per-command
pool checkout, writes and read time-outs cost more CPU than the rest of the GET), on two
connections: the reads' leases and fills on one, the writes' invalidations and the relay's
scripts on the other (a Script's ``lane``). So neither waits behind the other's commands (a burst of
reads, a catch-up of hundreds of changes), and a connection lost fails only its own calls: a
write whose invalidation failed does not take the reads in flight with it. redis-py still
asks the node whether it is a cluster (INFO), and serves a cluster (its client routes every
command to the node of its slot), and a URL the lean client does not speak (RESP3, or an
option only redis-py knows).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

from eventapi.cache.guard import CALL_DEADLINE
from eventapi.cache.resp import RespClient, ServerIdentity

if TYPE_CHECKING:
    from eventapi.cache.redis.scripts import Script

T = TypeVar("T")
Client = aioredis.Redis | RedisCluster

# What a Redis client raises when Redis (or the way to it) fails. RedisClusterException is
# not a RedisError: the cluster client raises it when no node answers (or the slots are not
# all served). It is also what it raises for keys of several slots in one call, which these
# scripts never make: every key of a namespace carries the namespace's hash tag.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, OSError, RedisClusterException)

# The lean client's connections (a Script's ``lane``; see the module docstring).
READS, WRITES = 0, 1


def connect(
    url: str, timeout: float, max_connections: int = 128, socket_timeout: float | None = None
) -> aioredis.Redis:
    """A client of one Redis that never waits beyond ``timeout``: the caller owns the budget.

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


class _Cluster(RedisCluster):
    # As for one Redis: a dead connection is retried once (after the client has asked the
    # cluster for its layout again), a time-out never (the caller's budget is spent).
    # (redis-py's own tuple, less TimeoutError; its type is that exact tuple's.)
    ERRORS_ALLOW_RETRY = (RedisConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]


def connect_cluster(
    url: str, timeout: float, max_connections: int = 128, socket_timeout: float | None = None
) -> RedisCluster:
    """A Redis Cluster client, given the URL of any of its nodes: it learns the others (and
    which serves which slot) from it on first use. Its pools do not wait for a free
    connection: RedisLink bounds the calls in flight instead."""
    client: RedisCluster = _Cluster.from_url(
        url,
        max_connections=max_connections,
        socket_timeout=socket_timeout or timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
        decode_responses=False,
    )
    return client


async def cluster_enabled(client: aioredis.Redis) -> bool:
    """Whether the Redis ``client`` talks to is a node of a Redis Cluster (INFO cluster).
    One that refuses INFO (a proxy) is not: whatever is behind it routes for itself."""
    try:
        info = await client.info("cluster")
    except ResponseError:
        return False
    return str(info.get("cluster_enabled", 0)) == "1"


async def _nothing(client: Client) -> None:
    return None


class RedisLink:
    """The client for one URL: a cluster client if the node it names belongs to a Redis
    Cluster, a plain one otherwise. Unless told, it asks the node (INFO cluster) before its
    first command, and again before the next one for as long as it could not ask. A plain
    one's commands go down the lean client (resp.py) when it speaks the URL: one RespClient,
    that is one connection, per lane (``lanes``).

    A cluster's client is shared by at most ``max_connections`` calls at a time (the others
    wait, within the caller's budget), as a plain client's blocking pool does.

    Within a guarded call (guard.py: CALL_DEADLINE set) every call here ends by its
    deadline: on the lean client each command carries it; anything else (finding out what
    the URL names, redis-py's commands) runs under ``asyncio.timeout_at`` of it. Outside
    one, the clients' own time-outs bound each command.
    """

    def __init__(
        self,
        url: str | None,
        timeout: float,
        *,
        max_connections: int = 128,
        socket_timeout: float | None = None,
        client: Client | None = None,
        watch_restarts: bool = True,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_connections = max_connections
        self.socket_timeout = socket_timeout
        self._client: Client | None = None
        self._lanes: tuple[RespClient, ...] | None = None
        # The Redis the lanes know (resp.py): a restarted one fails their calls until
        # reconnect(), whose caller (the cache's probe) catches it up first.
        self._identity = ServerIdentity() if watch_restarts else None
        self._gate: asyncio.Semaphore | None = None
        if client is not None:
            self._use(client)

    @classmethod
    def of(cls, client: Client) -> RedisLink:
        return cls(None, 0.0, client=client)

    @property
    def cluster(self) -> bool | None:
        """True: a cluster; False: a single Redis (or a proxy); None: not known yet."""
        return None if self._client is None else isinstance(self._client, RedisCluster)

    @property
    def current(self) -> Client | None:
        return self._client

    @property
    def lanes(self) -> tuple[RespClient, ...] | None:
        """The lean clients the commands go down (READS, WRITES), once a single Redis that
        they can speak to is known."""
        return self._lanes

    def _use(self, client: Client) -> None:
        self._client = client
        if isinstance(client, RedisCluster):
            self._gate = asyncio.Semaphore(self.max_connections)

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        assert self.url is not None
        node = connect(self.url, self.timeout, self.max_connections, self.socket_timeout)
        try:
            is_cluster = await cluster_enabled(node)
            lanes = None if is_cluster else self._lean_clients(self.url)
        except BaseException:
            await node.aclose()
            raise
        if self._client is not None:  # another call found out first meanwhile
            await node.aclose()
            return self._client
        if not is_cluster:
            self._lanes = lanes
            self._use(node)
            return node
        await node.aclose()
        if self._client is not None:
            return self._client
        cluster = connect_cluster(self.url, self.timeout, self.max_connections, self.socket_timeout)
        self._use(cluster)
        return cluster

    def _lean_clients(self, url: str) -> tuple[RespClient, ...] | None:
        # A command given no deadline waits as long as redis-py's would (socket_timeout).
        lanes = [
            RespClient.from_url(
                url, self.socket_timeout or self.timeout, self.timeout, self._identity
            )
            for _ in (READS, WRITES)
        ]
        return tuple(lane for lane in lanes if lane is not None) or None

    async def open(self) -> None:
        """Find out what the URL names, and for a cluster learn its nodes, now."""
        client = await self.client()
        if isinstance(client, RedisCluster):
            await client.initialize()

    async def call(self, command: Callable[[Client], Awaitable[T]]) -> T:
        """``command`` on the redis-py client (found out first, if need be)."""
        deadline = CALL_DEADLINE.get()
        if deadline is None:
            return await self._call(command)
        async with asyncio.timeout_at(deadline):
            return await self._call(command)

    async def _call(self, command: Callable[[Client], Awaitable[T]]) -> T:
        client = await self.client()
        if self._gate is None:
            return await command(client)
        async with self._gate:
            return await command(client)

    async def _lean(self) -> tuple[RespClient, ...] | None:
        """The lean clients, once what the URL names is known (asked now if need be)."""
        if self._client is None:
            await self.call(_nothing)
        return self._lanes

    async def run(self, script: Script, keys: Sequence[str], args: Sequence[EncodableT]) -> Any:
        lanes = self._lanes or await self._lean()
        if lanes is not None:
            return await script.on(lanes[script.lane], keys, args, CALL_DEADLINE.get())
        return await self.call(lambda client: script(client, keys, args))

    async def command(self, *args: EncodableT, lane: int = READS) -> Any:
        """One command of one key (``args[1]``, which routes it in a cluster)."""
        lanes = self._lanes or await self._lean()
        if lanes is not None:
            return await lanes[lane].execute(*args, deadline=CALL_DEADLINE.get())
        return await self.call(lambda client: client.execute_command(*args))

    async def reconnect(self) -> None:
        """Drop every connection (after an outage they are dead), and take the Redis met
        next as the known one: the caller (the guard's probe) catches it up before using
        it. A cluster client also forgets the cluster's layout, and asks for it again on
        its next command."""
        if self._identity is not None:
            self._identity.forget()
        for lane in self._lanes or ():
            lane.drop()
        client = self._client
        if isinstance(client, RedisCluster):
            await self._bounded(client.aclose())
        elif client is not None:
            await self._bounded(client.connection_pool.disconnect())

    async def _bounded(self, step: Awaitable[T]) -> T:
        deadline = CALL_DEADLINE.get()
        if deadline is None:
            return await step
        async with asyncio.timeout_at(deadline):
            return await step

    async def ping(self, key: str) -> None:
        """PING the Redis that holds ``key``: in a cluster, the node serving its slot."""
        lanes = self._lanes or await self._lean()
        if lanes is not None:
            await lanes[READS].execute("PING", deadline=CALL_DEADLINE.get())
            return

        async def ping(client: Client) -> None:
            if isinstance(client, RedisCluster):
                await client.initialize()
                await client.ping(target_nodes=client.get_node_from_key(key))
            else:
                await client.ping()

        await self.call(ping)

    async def close(self) -> None:
        for lane in self._lanes or ():
            await lane.close()
        if self._client is not None:
            await self._client.aclose()
