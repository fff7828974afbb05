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

    {ns}:v2:epoch                                replaced to retire every entry
    {ns}:v2:generation                           replaced to retire every list page
    {ns}:v2:watermark, {ns}:v2:delivered         the change log's (base.py)
    {ns}:v2:<epoch>:item:<id>                    an event; its lease: + ':lease'
    {ns}:v2:<epoch>:list:<digest>:g<generation>  a list page; its lease: + ':lease'

The epoch and the generation are names, not counters: each new one is made from a token no
process has used before, so a retired name never comes back. Any key may vanish at any
moment (eviction under any maxmemory-policy, DEL, FLUSHDB, a restart), and a missing epoch
or generation means "unknown": the next script that needs one makes a fresh name, and
every entry named under the old one stays retired. (Counters read as 0 when missing would
count up again to names whose entries are still alive.)

Every key a script touches is passed in KEYS: a cluster client routes a script by its keys,
and a cluster node (or a managed proxy) refuses one that touches a key it was not given. An
entry's name holds the epoch (a list page's the generation too), which the scripts used to
read and build names from themselves. Now the client names the keys with the epoch and
generation it last saw (kept here, learned from the scripts' replies) and passes those
values in ARGV; the script first checks they are still the current ones, and only then does
what it always did, on the very keys it would have named itself. If they are not, it changes
nothing and returns the current ones, and the client retries at once with them. A lease
whose names changed again under its retry reports BUSY (look again); an invalidation or a
catch-up whose names changed again is made a third time, told to retire everything
instead of naming the epoch ('*': _BOOKKEEPING), which cannot fail that way: an invalidation
is never lost to churn of the epoch (under allkeys-random eviction, the epoch key itself
goes now and then).

A full Redis (maxmemory with noeviction) refuses what would add to it: a lease, a fill, a
warm write's value. It never refuses what retires entries: invalidations, the relay's
catch-up and reset, retire_all (see _BOOKKEEPING). Refusals are failures (guard.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
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
from eventapi.cache.resp import RespClient, ServerIdentity
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
# A change-log script's last resort after those: retire everything ('*', _BOOKKEEPING).
ANY_EPOCH = "*"
# The epoch or generation before the client has seen one: never equal to a real one.
UNKNOWN = "?"
LEASE_SUFFIX = ":lease"
# The lean client's connections (a Script's ``lane``; see the module docstring).
READS, WRITES = 0, 1

# KEYS: epoch, generation, value, lease. ARGV: the epoch and generation the names hold
# (generation '' for an item, whose name has none), token, lease_ms.
# Reply: {0, epoch, generation} the names are out of date, nothing done; {1, value} HIT;
# {2} LEASED; {3} BUSY. A missing epoch or generation is created with a fresh name made
# from the token (a write: Redis refuses it when full, and the read goes to the store).
_LEASE = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = 'e' .. ARGV[3]
  redis.call('SET', KEYS[1], epoch)
end
local generation = ''
if ARGV[2] ~= '' then
  generation = redis.call('GET', KEYS[2])
  if not generation then
    generation = 'g' .. ARGV[3]
    redis.call('SET', KEYS[2], generation)
  end
end
if epoch ~= ARGV[1] or generation ~= ARGV[2] then return {0, epoch, generation} end
local value = redis.call('GET', KEYS[3])
if value then return {1, value} end
if redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4]) then return {2} end
return {3}
"""

# KEYS: value, lease. ARGV: token, value, ttl_ms. Its SET is the script's first write, so
# a full Redis refuses the fill (and nothing else happens).
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
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = 'e' .. ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
if epoch ~= ARGV[1] then return {0, epoch} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1}
"""

# The scripts that retire entries and move the change log's bookkeeping share one key
# layout. KEYS: epoch, generation, watermark, delivered (a sorted set of seqs delivered
# above the watermark), then for each item the script may delete its value and its lease,
# named with the epoch ARGV[1]. ARGV[2] is a fresh token: the names they make from it
# have never been used.
#
# They must work when Redis is full (maxmemory, noeviction): that is when an invalidation
# lost would leave an old value served for an hour. Redis refuses a script's memory-growing
# command (SET, ZADD) only while the script has not written anything yet, so each one's
# first write is a removal (DEL, ZREMRANGEBYSCORE), and after it the few small SETs that
# follow are let through. (Tested against a full Redis: tests/cache/test_full_redis.py.)
#
# retire(key, name): replace an epoch or generation by a name never used before. Deleted
# first (the removal above); a missing one stays missing only if the SET is refused, and a
# missing one means "unknown": the next lease makes a fresh name, never an old one.
# advance(applied): move the watermark over every delivered seq that directly follows it;
# the set keeps at most 10000 seqs (a forgotten one is applied again by the relay).
# named(epoch): whether the script may go on with the keys it was given. A missing epoch
# means everything is retired already: a fresh one is made and the script goes on (its
# keys, named under an old epoch, hold nothing anyone can read). ARGV[1] '*' means the
# client has given up naming the epoch (it kept changing under it: eviction, other
# processes retiring): the script retires everything instead, which is always correct,
# and goes on. Otherwise ARGV[1] must be the epoch.
# Replies: {0, epoch} ARGV[1] is not the epoch, nothing done; else {1, epoch, generation}
# as they now are ('' for one that is missing).
_BOOKKEEPING = """
local function retire(key, name)
  redis.call('DEL', key)
  redis.call('SET', key, name)
  return name
end
local function advance(applied)
  while redis.call('ZSCORE', KEYS[4], applied + 1) do applied = applied + 1 end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', applied)
  redis.call('SET', KEYS[3], applied)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 10000, -1)
end
local epoch = redis.call('GET', KEYS[1])
local function named()
  if epoch == ARGV[1] then return true end
  if epoch and ARGV[1] ~= '*' then return false end
  epoch = retire(KEYS[1], 'e' .. ARGV[2])
  return true
end
"""

# ARGV: epoch, fresh, number of seqs, seqs..., then for each item: the token of a writer's
# lease ('' for none), the value to store if that lease is still the item's, its ttl_ms.
# KEYS from 5: value and lease of each item, the items with a writer's lease first, so that
# their SET comes before any removal: a full Redis refuses it (pcall), and the item is
# deleted instead. An item whose lease is not that token is deleted.
_INVALIDATE = (
    _BOOKKEEPING
    + """
if not named() then return {0, epoch} end
local nseqs = tonumber(ARGV[3])
local a = 4 + nseqs
for i = 5, #KEYS, 2 do
  local token = ARGV[a]
  local filled = false
  if token ~= '' and redis.call('GET', KEYS[i + 1]) == token then
    filled = not redis.pcall('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a + 2])['err']
  end
  if filled then
    redis.call('DEL', KEYS[i + 1])
  else
    redis.call('DEL', KEYS[i], KEYS[i + 1])
  end
  a = a + 3
end
local generation = retire(KEYS[2], 'g' .. ARGV[2])
local applied = redis.call('GET', KEYS[3])
if applied and nseqs > 0 then
  applied = tonumber(applied)
  for i = 4, 3 + nseqs do
    local seq = tonumber(ARGV[i])
    if seq > applied then redis.call('ZADD', KEYS[4], seq, seq) end
  end
  advance(applied)
end
return {1, epoch, generation}
"""
)

# ARGV: epoch, fresh, through, then (seq, '*' for everything or '' for an item) pairs; KEYS
# from 5: value and lease of each item change, in the order of the pairs. An item deleted
# after a '*' in the same run is deleted under the epoch just retired: under the new one,
# created by this very script, there is nothing yet to delete. Without a watermark (lost
# since the relay read it) it cannot tell what was applied: it retires everything and sets
# the watermark to ``through``, as RESET does (doing nothing would end the relay's pass as
# if it had applied the changes: the model's catch_up_resets=False).
_CATCH_UP = (
    _BOOKKEEPING
    + """
local applied = redis.call('GET', KEYS[3])
if not applied then
  epoch = retire(KEYS[1], 'e' .. ARGV[2])
  local generation = retire(KEYS[2], 'g' .. ARGV[2])
  advance(tonumber(ARGV[3]))
  return {1, epoch, generation}
end
if not named() then return {0, epoch} end
applied = tonumber(applied)
local touched = false
local k = 5
for i = 4, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  local everything = ARGV[i + 1] == '*'
  if seq > applied and not redis.call('ZSCORE', KEYS[4], seq) then
    if everything then
      epoch = retire(KEYS[1], 'e' .. ARGV[2] .. '.' .. i)
    else
      redis.call('DEL', KEYS[k], KEYS[k + 1])
    end
    touched = true
  end
  if not everything then k = k + 2 end
end
local generation = redis.call('GET', KEYS[2]) or ''
if touched then generation = retire(KEYS[2], 'g' .. ARGV[2]) end
local through = tonumber(ARGV[3])
if through > applied then applied = through end
advance(applied)
return {1, epoch, generation}
"""
)

# ARGV: head, fresh. Needs no epoch: it retires whichever is current.
_RESET = (
    _BOOKKEEPING
    + """
epoch = retire(KEYS[1], 'e' .. ARGV[2])
local generation = retire(KEYS[2], 'g' .. ARGV[2])
local applied = tonumber(redis.call('GET', KEYS[3]) or '0')
local head = tonumber(ARGV[1])
if head > applied then applied = head end
advance(applied)
return {1, epoch, generation}
"""
)

# KEYS: epoch. ARGV: fresh. Reply: the new epoch.
_RETIRE_ALL = """
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], 'e' .. ARGV[1])
return 'e' .. ARGV[1]
"""

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


def hash_tag(namespace: str) -> str:
    """``{namespace}``: the part of a key a cluster hashes. Escaped, so that no namespace
    (not even an empty one, or one holding a '}') ends the tag early."""
    body = namespace.replace("%", "%25").replace("}", "%7D")
    return "{" + (body or "%") + "}"


def _name(raw: bytes | str) -> str:
    """An epoch or generation as a script replied it; UNKNOWN for one that is missing."""
    name = raw.decode() if isinstance(raw, bytes) else raw
    return name or UNKNOWN


class RedisCache:
    backend: CacheBackend = "redis"
    failures: tuple[type[Exception], ...] = REDIS_FAILURES
    # An error reply: Redis is there and refuses (OOM, READONLY, MISCONF, BUSY, LOADING...).
    refusals: tuple[type[Exception], ...] = (ResponseError,)
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
        self._retire_script = Script(_RETIRE_ALL, WRITES)
        self._probe_key = f"{self._prefix}:probe"

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
        self._epoch = _name(reply[1])
        if int(reply[0]) == _NAMES_CHANGED:
            return False
        self._generation = _name(reply[2])
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
                self._epoch = _name(reply[1])
                if key.is_list:
                    self._generation = _name(reply[2])
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
            self._epoch = _name(reply[1])
        raise NamesChanged("lease_for_write: the epoch kept changing")

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill] = ()
    ) -> None:
        for epoch in self._epochs_to_try():
            keys = list(self._log_keys)
            args: list[EncodableT] = [epoch, self._new_token(), len(seqs), *seqs]
            # The fills first: the script tries their SET before any removal (_INVALIDATE).
            for fill in fills:
                value = self._item(epoch, fill.name)
                keys += [value, value + LEASE_SUFFIX]
                # A lease named under another epoch is not this item's lease: delete.
                token = fill.lease.token if fill.lease.resolved == value else ""
                args += [token, fill.value, fill.ttl_ms]
            for name in item_names:
                value = self._item(epoch, name)
                keys += [value, value + LEASE_SUFFIX]
                args += ["", "", 0]
            if self._learn(await self._link.run(self._invalidate_script, keys, args)):
                return
        raise AssertionError("unreachable: the last attempt retires whatever epoch there is")

    async def retire_all(self) -> None:
        keys = [self._epoch_key]
        self._epoch = _name(await self._link.run(self._retire_script, keys, [self._new_token()]))

    async def watermark(self) -> int | None:
        raw = await self._link.command("GET", self._log_keys[2], lane=WRITES)
        return None if raw is None else int(raw)

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        for epoch in self._epochs_to_try():
            keys = list(self._log_keys)
            args: list[EncodableT] = [epoch, self._new_token(), through]
            for change in changes:
                if change.event_id is None:
                    args += [change.seq, "*"]
                else:
                    value = self._item(epoch, item_key(change.event_id).name)
                    keys += [value, value + LEASE_SUFFIX]
                    args += [change.seq, ""]
            if self._learn(await self._link.run(self._catch_up_script, keys, args)):
                return
        raise AssertionError("unreachable: the last attempt retires whatever epoch there is")

    def _epochs_to_try(self) -> Iterator[str]:
        """The epoch to name a change-log script's keys with, attempt after attempt: the
        one last seen (updated by each reply), then ANY_EPOCH."""
        for _ in range(ATTEMPTS):
            yield self._epoch
        yield ANY_EPOCH

    async def reset(self, head: int) -> None:
        args: list[EncodableT] = [head, self._new_token()]
        self._learn(await self._link.run(self._reset_script, self._log_keys, args))

    async def reconnect(self) -> None:
        await self._link.reconnect()

    async def ping(self) -> None:
        """PING, then a small SET: a Redis that answers but refuses writes (full under
        noeviction, a read-only replica, a failed save) fails this check as well."""
        await self._link.ping(self._epoch_key)
        await self._link.command("SET", self._probe_key, "1", "PX", 10_000, lane=WRITES)

    async def close(self) -> None:
        await self._link.close()
