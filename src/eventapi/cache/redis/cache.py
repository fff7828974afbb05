"""Redis cache, on one Redis or on a Redis Cluster. Each operation is one Lua script: atomic on
the server and a single round trip, so the lease check and the fill cannot interleave with a
writer's invalidation (scripts.py). The connections are link.py's.

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
instead of naming the epoch ('*': BOOKKEEPING), which cannot fail that way: an invalidation
is never lost to churn of the epoch (under allkeys-random eviction, the epoch key itself
goes now and then).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator, Sequence
from typing import Any, Generic, Protocol

from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT

from eventapi.cache.base import (
    SCHEMA_VERSION,
    CacheBackend,
    CacheKey,
    Fill,
    Lookup,
    LookupState,
    V,
    WriteLease,
    item_key,
)
from eventapi.cache.redis.link import REDIS_FAILURES, WRITES, Client, RedisLink
from eventapi.cache.redis.scripts import (
    ANY_EPOCH,
    ATTEMPTS,
    CATCH_UP,
    FILL,
    INVALIDATE,
    LEASE,
    LEASE_SUFFIX,
    NAMES_CHANGED,
    RESET,
    RETIRE_ALL,
    STATES,
    UNKNOWN,
    WRITE_LEASE,
    Script,
)
from eventapi.changes import Change


class NamesChanged(RedisError):
    """The epoch changed under every attempt of an operation: a failure like any other."""


def hash_tag(namespace: str) -> str:
    """``{namespace}``: the part of a key a cluster hashes. Escaped, so that no namespace
    (not even an empty one, or one holding a '}') ends the tag early."""
    body = namespace.replace("%", "%25").replace("}", "%7D")
    return "{" + (body or "%") + "}"


def _name(raw: bytes | str) -> str:
    """An epoch or generation as a script replied it; UNKNOWN for one that is missing."""
    name = raw.decode() if isinstance(raw, bytes) else raw
    return name or UNKNOWN


class Codec(Protocol[V]):
    """How a value is kept in Redis: as the bytes ``encode`` makes of it. ``decode`` gives
    None for bytes of another format (another release's, during a rolling upgrade): the
    lookup is then a miss that does not fill over them."""

    def encode(self, value: V) -> bytes: ...

    def decode(self, raw: bytes) -> V | None: ...


class Bytes:
    """Values that are bytes already (a RedisCache built without a codec)."""

    @staticmethod
    def encode(value: bytes) -> bytes:
        return value

    @staticmethod
    def decode(raw: bytes) -> bytes:
        return raw


class RedisCache(Generic[V]):
    backend: CacheBackend = "redis"
    failures: tuple[type[Exception], ...] = REDIS_FAILURES
    # An error reply: Redis is there and refuses (OOM, READONLY, MISCONF, BUSY, LOADING...).
    refusals: tuple[type[Exception], ...] = (ResponseError,)
    # Every call ends by the guard's deadline (CALL_DEADLINE): RedisLink sees to it.
    keeps_deadlines = True

    # (mypy cannot see that the default's V is the default V, bytes.)
    def __init__(
        self,
        client: Client | RedisLink,
        namespace: str,
        codec: Codec[V] = Bytes(),  # type: ignore[assignment]  # noqa: B008
    ) -> None:
        self._codec = codec
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
        self._lease_script = Script(LEASE)
        self._fill_script = Script(FILL)
        self._invalidate_script = Script(INVALIDATE, WRITES)
        self._write_lease_script = Script(WRITE_LEASE, WRITES)
        self._catch_up_script = Script(CATCH_UP, WRITES)
        self._reset_script = Script(RESET, WRITES)
        self._retire_script = Script(RETIRE_ALL, WRITES)
        self._probe_key = f"{self._prefix}:probe"

    def _item(self, epoch: str, name: str) -> str:
        return f"{self._prefix}:{epoch}:{name}"

    def _learn(self, reply: list[Any]) -> bool:
        """Take the epoch (and generation) a change-log script replied; False if it did
        nothing because its names were out of date."""
        self._epoch = _name(reply[1])
        if int(reply[0]) == NAMES_CHANGED:
            return False
        self._generation = _name(reply[2])
        return True

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup[V]:
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
            if code == NAMES_CHANGED:
                self._epoch = _name(reply[1])
                if key.is_list:
                    self._generation = _name(reply[2])
                continue
            state = STATES[code]
            if state is LookupState.HIT:
                value = self._codec.decode(bytes(reply[1]))
                if value is None:  # another format's: read the store (readthrough.py)
                    return Lookup(LookupState.LEASED, resolved, foreign=True)
                return Lookup(state, resolved, value=value)
            return Lookup(state, resolved, token=token if state is LookupState.LEASED else None)
        # A write changed the names under both attempts: as if someone else held the lease
        # (the caller looks again, or reads the store and does not fill).
        return Lookup(LookupState.BUSY, resolved)

    def _new_token(self) -> str:
        return f"{self._token_prefix}{next(self._tokens):x}"

    async def fill(self, resolved: str, token: str, value: V, ttl_ms: int) -> bool:
        keys = [resolved, resolved + LEASE_SUFFIX]
        raw = self._codec.encode(value)
        done = await self._link.run(self._fill_script, keys, [token, raw, ttl_ms])
        return bool(done)

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        token = self._new_token()
        for _ in range(ATTEMPTS):
            epoch = self._epoch
            resolved = self._item(epoch, key.name)
            keys = [self._epoch_key, resolved + LEASE_SUFFIX]
            reply = await self._link.run(self._write_lease_script, keys, [epoch, token, lease_ms])
            if int(reply[0]) != NAMES_CHANGED:
                return WriteLease(resolved, token)
            self._epoch = _name(reply[1])
        raise NamesChanged("lease_for_write: the epoch kept changing")

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill[V]] = ()
    ) -> None:
        for epoch in self._epochs_to_try():
            keys = list(self._log_keys)
            args: list[EncodableT] = [epoch, self._new_token(), len(seqs), *seqs]
            # The fills first: the script tries their SET before any removal (INVALIDATE).
            for fill in fills:
                value = self._item(epoch, fill.name)
                keys += [value, value + LEASE_SUFFIX]
                # A lease named under another epoch is not this item's lease: delete.
                token = fill.lease.token if fill.lease.resolved == value else ""
                args += [token, self._codec.encode(fill.value), fill.ttl_ms]
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
