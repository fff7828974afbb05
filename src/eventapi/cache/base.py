"""The Cache port: values in, values out, with leases so a stale value can never be filled.
A cache is generic in its values (``Cache[V]``): the app's caches hold cache/entry.py's
Entry (the in-process cache the objects themselves, Redis their bytes); a cache built
without saying holds bytes.

Keys are resolved by the backend as ``{prefix}:{epoch}:{name}`` (items) or
``{prefix}:{epoch}:{name}:g{generation}`` (list pages); Redis's prefix is the namespace as a
hash tag (redis.py: the key layout, and how a script checks the epoch it was named with).
Replacing the epoch retires every entry at once; replacing the generation retires every list
page at once. Neither needs the KEYS command or SCAN. A retired epoch or generation is never
current again, whatever key of the cache is lost (redis.py).

The lease protocol (after Facebook's memcache leases):
- ``lease(key)`` returns the value (HIT), or grants a lease token to exactly one caller
  (LEASED), or reports that someone else holds the lease (BUSY: wait and look again).
- ``fill(resolved, token, value)`` stores the value only if that lease is still current.
- ``invalidate`` deletes the value AND its lease, so a reader that loaded the old value
  before a write can no longer fill it after the write.

Warm writes: a write can leave its new value in the cache instead of a hole (the next
reads then hit instead of all reading the store). Before it writes to the store, the writer
takes the item's lease for itself, ``lease_for_write`` (a reader's lease is revoked: its
fill is refused); after the store has committed, ``invalidate(..., fills)`` stores the
written value only if that lease is still the current one, and otherwise deletes the
value as for any invalidation. Every other write, invalidation, catch-up or expiry in
between replaces or deletes the lease, so a fill that lands can only follow a write that
nothing has overtaken: its value is at least as new as every write acknowledged before it.
A write whose value may have been overtaken (another writer took the lease, a failure, a
time-out) leaves a hole, as before. Readers that find the writer's lease wait for its fill
as for a reader's (BUSY).

The change log (eventapi/changes.py) is applied through the same port. A cache keeps a
*watermark*: the seq up to which every change has been applied to it. ``invalidate`` is
told the seqs of the writes it delivers, so the relay does not apply them again;
``catch_up`` applies what was not delivered; ``reset`` retires everything when the log
cannot say what changed (a new or emptied cache, or a relay further behind than the log
reaches). The watermark lives in the cache itself, so a restarted Redis, which has lost
its entries, has lost its watermark too, and starts again from a reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, Literal, Protocol, runtime_checkable

from typing_extensions import TypeVar

from eventapi.changes import Change

V = TypeVar("V", default=bytes)
V_co = TypeVar("V_co", covariant=True, default=bytes)

CacheBackend = Literal["redis", "memory"]

# The key layout's version. Not bumped for a new entry format or event schema: entries carry
# their own format (entry.py), so the releases of a rolling upgrade share keys and
# invalidations. Bump only when keys must no longer be shared (the lease or epoch protocol).
SCHEMA_VERSION = "v2"


class CacheUnavailable(Exception):
    """The cache did not answer within its budget, refused a command, or is switched off by
    the breaker; ``reason`` is what /health says of it (guard.py)."""

    def __init__(self, op: str, reason: str = "disconnected") -> None:
        super().__init__(op)
        self.reason = reason


class CacheReplaced(Exception):
    """The cache's server is not the one this process talked to before (a restart): it may
    hold entries older than writes acknowledged since it was saved. The guard opens the
    breaker at once, and its probe catches the cache up before it is used again."""


class LookupState(Enum):
    HIT = "hit"
    LEASED = "leased"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class CacheKey:
    name: str  # e.g. "item:68ed254e36d0233aa05afbe9" or "list:<sha256>"
    is_list: bool = False


@dataclass(frozen=True, slots=True)
class WriteLease:
    """An item's lease, taken by a writer before its store write (``lease_for_write``)."""

    resolved: str
    token: str


@dataclass(frozen=True, slots=True)
class Fill(Generic[V]):
    """A written item's new value, stored by ``invalidate`` if ``lease`` is still current."""

    name: str  # the item's name, as in ``invalidate``'s item_names
    lease: WriteLease
    value: V
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class Lookup(Generic[V]):
    state: LookupState
    resolved: str  # the concrete key, to pass back to fill()
    value: V | None = None
    token: str | None = None
    # The key holds a value of another format (another release's, entry.py): not served,
    # not filled over; the reader removes it after reading the store.
    foreign: bool = False


class Cache(Protocol[V]):
    backend: CacheBackend
    # What this cache raises when it (or its server) fails, as opposed to a bug: the guard
    # turns these, and time-outs, into CacheUnavailable, and lets anything else through.
    failures: tuple[type[Exception], ...]
    # Those of ``failures`` that mean it answered and refused the command (a full Redis):
    # the guard opens the breaker at once for them.
    refusals: tuple[type[Exception], ...]

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup[V]: ...

    async def fill(self, resolved: str, token: str, value: V, ttl_ms: int) -> bool: ...

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        """Take the item's lease whoever holds it (see Warm writes above)."""
        ...

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill[V]] = ()
    ) -> None:
        """Delete these items (and their leases) and retire every list page; ``seqs`` are
        the change-log records this delivers. Each of ``fills`` gets its value if its write
        lease is still the item's lease, and is deleted like the others if not."""
        ...

    async def retire_all(self) -> None: ...

    async def watermark(self) -> int | None:
        """Every change up to this seq is applied; None: unknown (reset first)."""
        ...

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        """Apply the changes not applied or delivered yet, then raise the watermark to
        ``through`` (every change up to it settled). Without a watermark: as ``reset(through)``."""
        ...

    async def reset(self, head: int) -> None:
        """Retire every entry and raise the watermark to ``head``."""
        ...

    async def reconnect(self) -> None:
        """Drop pooled connections: after an outage they may be dead."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class Peekable(Protocol[V_co]):
    """A cache that can answer a hit synchronously (in-process): no task, no await."""

    def peek(self, key: CacheKey) -> V_co | None: ...


ITEM_PREFIX = "item:"
LIST_PREFIX = "list:"


def item_key(event_id: str) -> CacheKey:
    return CacheKey(ITEM_PREFIX + event_id)


def list_key(query_digest: str) -> CacheKey:
    return CacheKey(LIST_PREFIX + query_digest, is_list=True)
