"""Redis cache, on one Redis or on a Redis Cluster. Each operation is one Lua script: atomic on
the server and a single round trip, so the lease check and the fill cannot interleave with a
writer's invalidation.

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

Key layout. The namespace is the hash tag of every key, so all of a namespace's keys live in
one slot, on one node of a cluster (a script may only touch keys of one slot):

    {ns}:v1:epoch                                bumped to retire every entry
    {ns}:v1:generation                           bumped to retire every list page
    {ns}:v1:watermark, {ns}:v1:delivered         the change log's (base.py)
    {ns}:v1:<epoch>:item:<id>                    an event; its lease: + ':lease'
    {ns}:v1:<epoch>:list:<digest>:g<generation>  a list page; its lease: + ':lease'

Every key a script touches is passed in KEYS: a cluster client routes a script by its keys,
and a cluster node (or a managed proxy) refuses one that touches a key it was not given. An
entry's name holds the epoch (a list page's the generation too), which the scripts used to
read and build names from themselves. Now the client names the keys with the epoch and
generation it last saw (kept here, learned from the scripts' replies) and passes those
values in ARGV; the script first checks they are still the current ones, and only then does
what it always did, on the very keys it would have named itself. If they are not, it changes
nothing and returns the current ones, and the client retries at once with them. A lease
whose names changed again under its retry reports BUSY (look again); an invalidation or a
catch-up raises NamesChanged, a RedisError: the guard trips the breaker and the relay
delivers it, as for any failed invalidation.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT

from eventapi.cache.base import (
    SCHEMA_VERSION,
    CacheBackend,
    CacheKey,
    Fill,
    Lookup,
    LookupState,
    WriteLease,
    item_key,
)
from eventapi.cache.guard import CALL_DEADLINE
from eventapi.cache.resp import RespClient
from eventapi.changes import Change

T = TypeVar("T")
Client = aioredis.Redis | RedisCluster

# What a Redis client raises when Redis (or the way to it) fails. RedisClusterException is
# not a RedisError: the cluster client raises it when no node answers (or the slots are not
# all served). It is also what it raises for keys of several slots in one call, which these
# scripts never make: every key of a namespace carries the namespace's hash tag.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, OSError, RedisClusterException)

# The first reply of a script whose key names are out of date: it did nothing.
_NAMES_CHANGED = 0
# Attempts of one operation: the names the client knows, then the ones the script returned.
ATTEMPTS = 2
# The epoch or generation before the client has seen one: never equal to a real one.
UNKNOWN = "?"
LEASE_SUFFIX = ":lease"
# The lean client's connections (a Script's ``lane``; see the module docstring).
READS, WRITES = 0, 1

# KEYS: epoch, generation, value, lease. ARGV: the epoch and generation the names hold
# (generation '' for an item, whose name has none), token, lease_ms.
# Reply: {0, epoch, generation} the names are out of date, nothing done; {1, value} HIT;
# {2} LEASED; {3} BUSY.
_LEASE = """
local epoch = redis.call('GET', KEYS[1]) or '0'
local generation = ''
if ARGV[2] ~= '' then generation = redis.call('GET', KEYS[2]) or '0' end
if epoch ~= ARGV[1] or generation ~= ARGV[2] then return {0, epoch, generation} end
local value = redis.call('GET', KEYS[3])
if value then return {1, value} end
if redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4]) then return {2} end
return {3}
"""

# KEYS: value, lease. ARGV: token, value, ttl_ms
_FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# A writer's lease (base.py, Warm writes): taken whoever holds it. KEYS: epoch, lease.
# ARGV: the epoch the name holds, token, lease_ms. Reply: {0, epoch} the name is out of
# date, nothing done; {1} taken.
_WRITE_LEASE = """
local epoch = redis.call('GET', KEYS[1]) or '0'
if epoch ~= ARGV[1] then return {0, epoch} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1}
"""

# The change-log scripts share one key layout. KEYS: epoch, generation, watermark, delivered
# (a sorted set of seqs delivered above the watermark), then for each item the script may
# delete its value and its lease, named with the epoch ARGV[1]. ADVANCE moves the watermark
# over every delivered seq that directly follows it; the set keeps at most 10000 seqs (a
# forgotten one is applied again by the relay: harmless). Each script replies {0, epoch} if
# ARGV[1] is not the epoch (nothing done), else {1, epoch, generation} as they now are.
_ADVANCE = """
local function advance(applied)
  while redis.call('ZSCORE', KEYS[4], applied + 1) do applied = applied + 1 end
  redis.call('SET', KEYS[3], applied)
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', applied)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 10000, -1)
end
local function current()
  return {1, redis.call('GET', KEYS[1]) or '0', redis.call('GET', KEYS[2]) or '0'}
end
local epoch = redis.call('GET', KEYS[1]) or '0'
"""

# ARGV: epoch, number of seqs, seqs..., then for each item: the token of a writer's lease
# ('' for none), the value to store if that lease is still the item's, its ttl_ms. KEYS
# from 5: value and lease of each item. An item whose lease is not that token is deleted.
_INVALIDATE = (
    _ADVANCE
    + """
if epoch ~= ARGV[1] then return {0, epoch} end
local nseqs = tonumber(ARGV[2])
local a = 3 + nseqs
for i = 5, #KEYS, 2 do
  local token = ARGV[a]
  if token ~= '' and redis.call('GET', KEYS[i + 1]) == token then
    redis.call('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a + 2])
    redis.call('DEL', KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i], KEYS[i + 1])
  end
  a = a + 3
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
return current()
"""
)

# ARGV: epoch, through, then (seq, '*' for everything or '' for an item) pairs; KEYS from 5:
# value and lease of each item change, in the order of the pairs. An item deleted after a
# '*' in the same run is deleted under the epoch just retired: under the new one, created
# by this very script, there is nothing yet to delete.
_CATCH_UP = (
    _ADVANCE
    + """
local applied = redis.call('GET', KEYS[3])
if not applied then return current() end
if epoch ~= ARGV[1] then return {0, epoch} end
applied = tonumber(applied)
local touched = false
local k = 5
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  local everything = ARGV[i + 1] == '*'
  if seq > applied and not redis.call('ZSCORE', KEYS[4], seq) then
    if everything then
      redis.call('INCR', KEYS[1])
    else
      redis.call('DEL', KEYS[k], KEYS[k + 1])
    end
    touched = true
  end
  if not everything then k = k + 2 end
end
if touched then redis.call('INCR', KEYS[2]) end
local through = tonumber(ARGV[2])
if through > applied then applied = through end
advance(applied)
return current()
"""
)

# ARGV: head. Needs no epoch: it retires whichever is current.
_RESET = (
    _ADVANCE
    + """
redis.call('INCR', KEYS[1])
local applied = tonumber(redis.call('GET', KEYS[3]) or '0')
local head = tonumber(ARGV[1])
if head > applied then applied = head end
advance(applied)
return current()
"""
)

_STATES = {1: LookupState.HIT, 2: LookupState.LEASED, 3: LookupState.BUSY}


class NamesChanged(RedisError):
    """The epoch changed under every attempt of an operation: a failure like any other."""


class Script:
    """A Lua script, run by its SHA1 and sent in full only when the server does not know
    it (a new or restarted Redis, or another node of a cluster). Routed by its keys; on the
    lean client, down the connection of its ``lane``."""

    def __init__(self, text: str, lane: int = READS) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self.lane = lane

    async def __call__(
        self, client: Client, keys: Sequence[str], args: Sequence[EncodableT]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.text, len(keys), *keys, *args)

    async def on(
        self,
        pipe: RespClient,
        keys: Sequence[str],
        args: Sequence[EncodableT],
        deadline: float | None,
    ) -> Any:
        """The same on the lean client, by ``deadline`` (None: the client's own time-out)."""
        try:
            return await pipe.execute(
                "EVALSHA", self.sha, len(keys), *keys, *args, deadline=deadline
            )
        except NoScriptError:
            return await pipe.execute("EVAL", self.text, len(keys), *keys, *args, deadline=deadline)


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
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_connections = max_connections
        self.socket_timeout = socket_timeout
        self._client: Client | None = None
        self._lanes: tuple[RespClient, ...] | None = None
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
            RespClient.from_url(url, self.socket_timeout or self.timeout, self.timeout)
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
        """Drop every connection (after an outage they are dead). A cluster client also
        forgets the cluster's layout, and asks for it again on its next command."""
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


def hash_tag(namespace: str) -> str:
    """``{namespace}``: the part of a key a cluster hashes. Escaped, so that no namespace
    (not even an empty one, or one holding a '}') ends the tag early."""
    body = namespace.replace("%", "%25").replace("}", "%7D")
    return "{" + (body or "%") + "}"


def _text(raw: bytes | int | str) -> str:
    """An epoch or generation as the scripts compare it: its decimal digits."""
    return str(int(raw))


class RedisCache:
    backend: CacheBackend = "redis"
    failures: tuple[type[Exception], ...] = REDIS_FAILURES
    # Every call ends by the guard's deadline (CALL_DEADLINE): RedisLink sees to it.
    keeps_deadlines = True

    def __init__(self, client: Client | RedisLink, namespace: str) -> None:
        self._link = client if isinstance(client, RedisLink) else RedisLink.of(client)
        self._prefix = f"{hash_tag(namespace)}:{SCHEMA_VERSION}"
        self._epoch_key = f"{self._prefix}:epoch"
        self._generation_key = f"{self._prefix}:generation"
        self._log_keys = [
            self._epoch_key,
            self._generation_key,
            f"{self._prefix}:watermark",
            f"{self._prefix}:delivered",
        ]
        # The epoch and generation as last seen: only names to try, checked by every script.
        self._epoch = UNKNOWN
        self._generation = UNKNOWN
        # Lease tokens: a random prefix (this cache object's), then a count (the lease's).
        # As unique as a random token per lease, without a getrandom() call per lookup.
        self._token_prefix = secrets.token_hex(8)
        self._tokens = itertools.count()
        self._lease_script = Script(_LEASE)
        self._fill_script = Script(_FILL)
        self._invalidate_script = Script(_INVALIDATE, WRITES)
        self._write_lease_script = Script(_WRITE_LEASE, WRITES)
        self._catch_up_script = Script(_CATCH_UP, WRITES)
        self._reset_script = Script(_RESET, WRITES)

    @property
    def _client(self) -> Client:
        client = self._link.current
        assert client is not None, "not connected yet"
        return client

    def _item(self, epoch: str, name: str) -> str:
        return f"{self._prefix}:{epoch}:{name}"

    def _learn(self, reply: list[Any]) -> bool:
        """Take the epoch (and generation) a change-log script replied; False if it did
        nothing because its names were out of date."""
        self._epoch = _text(reply[1])
        if int(reply[0]) == _NAMES_CHANGED:
            return False
        self._generation = _text(reply[2])
        return True

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup:
        token = self._new_token()
        for _ in range(ATTEMPTS):
            epoch = self._epoch
            generation = self._generation if key.is_list else ""
            resolved = self._item(epoch, key.name)
            if key.is_list:
                resolved += f":g{generation}"
            keys = [self._epoch_key, self._generation_key, resolved, resolved + LEASE_SUFFIX]
            reply: list[Any] = await self._link.run(
                self._lease_script, keys, [epoch, generation, token, lease_ms]
            )
            code = int(reply[0])
            if code == _NAMES_CHANGED:
                self._epoch = _text(reply[1])
                if key.is_list:
                    self._generation = _text(reply[2])
                continue
            state = _STATES[code]
            if state is LookupState.HIT:
                return Lookup(state, resolved, value=bytes(reply[1]))
            return Lookup(state, resolved, token=token if state is LookupState.LEASED else None)
        # A write changed the names under both attempts: as if someone else held the lease
        # (the caller looks again, or reads the store and does not fill).
        return Lookup(LookupState.BUSY, resolved)

    def _new_token(self) -> str:
        return f"{self._token_prefix}{next(self._tokens):x}"

    async def fill(self, resolved: str, token: str, value: bytes, ttl_ms: int) -> bool:
        keys = [resolved, resolved + LEASE_SUFFIX]
        done = await self._link.run(self._fill_script, keys, [token, value, ttl_ms])
        return bool(done)

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        token = self._new_token()
        for _ in range(ATTEMPTS):
            epoch = self._epoch
            resolved = self._item(epoch, key.name)
            keys = [self._epoch_key, resolved + LEASE_SUFFIX]
            reply = await self._link.run(self._write_lease_script, keys, [epoch, token, lease_ms])
            if int(reply[0]) != _NAMES_CHANGED:
                return WriteLease(resolved, token)
            self._epoch = _text(reply[1])
        raise NamesChanged("lease_for_write: the epoch kept changing")

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill] = ()
    ) -> None:
        for _ in range(ATTEMPTS):
            epoch = self._epoch
            keys = list(self._log_keys)
            args: list[EncodableT] = [epoch, len(seqs), *seqs]
            for name in item_names:
                value = self._item(epoch, name)
                keys += [value, value + LEASE_SUFFIX]
                args += ["", "", 0]
            for fill in fills:
                value = self._item(epoch, fill.name)
                keys += [value, value + LEASE_SUFFIX]
                # A lease named under another epoch is not this item's lease: delete.
                token = fill.lease.token if fill.lease.resolved == value else ""
                args += [token, fill.value, fill.ttl_ms]
            if self._learn(await self._link.run(self._invalidate_script, keys, args)):
                return
        raise NamesChanged("invalidate: the epoch kept changing")

    async def retire_all(self) -> None:
        self._epoch = _text(await self._link.command("INCR", self._epoch_key, lane=WRITES))

    async def watermark(self) -> int | None:
        raw = await self._link.command("GET", self._log_keys[2], lane=WRITES)
        return None if raw is None else int(raw)

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        for _ in range(ATTEMPTS):
            epoch = self._epoch
            keys = list(self._log_keys)
            args: list[EncodableT] = [epoch, through]
            for change in changes:
                if change.event_id is None:
                    args += [change.seq, "*"]
                else:
                    value = self._item(epoch, item_key(change.event_id).name)
                    keys += [value, value + LEASE_SUFFIX]
                    args += [change.seq, ""]
            if self._learn(await self._link.run(self._catch_up_script, keys, args)):
                return
        raise NamesChanged("catch_up: the epoch kept changing")

    async def reset(self, head: int) -> None:
        self._learn(await self._link.run(self._reset_script, self._log_keys, [head]))

    async def reconnect(self) -> None:
        await self._link.reconnect()

    async def ping(self) -> None:
        await self._link.ping(self._epoch_key)

    async def close(self) -> None:
        await self._link.close()
