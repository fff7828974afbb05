"""In-process cache: bounded LRU with per-entry TTL and the same lease semantics as Redis. It
keeps the values themselves (the app's: Entry objects, so a hit decodes nothing).

Bounded twice: in entries and in bytes (the values' sizes, ``sizeof``, plus a fixed cost
per entry), so
that many large list pages cannot grow the process without limit; the least recently used
entries go first, and a value larger than the whole budget is not kept at all.
Every method runs without awaiting, so each one is atomic on the event loop.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Generic

from eventapi.cache.base import (
    CacheBackend,
    CacheKey,
    Fill,
    Lookup,
    LookupState,
    V,
    WriteLease,
    item_key,
)
from eventapi.changes import Change

# Delivered seqs kept above the watermark; past this many, the highest are forgotten (the
# relay then applies those changes once more: harmless).
MAX_DELIVERED = 10_000
# What an entry costs besides its value's bytes: its key, its tuple, the dict's slot and the
# value's object header (tracemalloc, 20,000 item entries: about 226 bytes, plus 33).
ENTRY_OVERHEAD = 256


class MemoryCache(Generic[V]):
    backend: CacheBackend = "memory"
    failures: tuple[type[Exception], ...] = ()  # it does no I/O
    refusals: tuple[type[Exception], ...] = ()

    def __init__(
        self,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 64 * 1024 * 1024,
        sizeof: Callable[[Any], int] = len,  # a value's bytes (Entry.cost for an Entry)
    ) -> None:
        self._sizeof: Callable[[V], int] = sizeof
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0  # the values' sizes plus ENTRY_OVERHEAD each
        self._clock = clock
        self._values: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._leases: dict[str, tuple[float, str]] = {}
        self._epoch = 0
        self._generation = 0
        self._applied: int | None = None
        self._delivered: set[int] = set()

    def _resolve(self, key: CacheKey) -> str:
        resolved = f"{self._epoch}:{key.name}"
        return f"{resolved}:g{self._generation}" if key.is_list else resolved

    def peek(self, key: CacheKey) -> V | None:
        """The value if present and fresh, synchronously (no lease is taken on a miss)."""
        resolved = self._resolve(key)
        entry = self._values.get(resolved)
        if entry is None or entry[0] <= self._clock():
            return None
        self._values.move_to_end(resolved)
        return entry[1]

    async def lease(self, key: CacheKey, lease_ms: int) -> Lookup[V]:
        now = self._clock()
        resolved = self._resolve(key)
        entry = self._values.get(resolved)
        if entry is not None:
            if entry[0] > now:
                self._values.move_to_end(resolved)
                return Lookup(LookupState.HIT, resolved, value=entry[1])
            self._remove(resolved)
        held = self._leases.get(resolved)
        if held is not None and held[0] > now:
            return Lookup(LookupState.BUSY, resolved)
        token = secrets.token_hex(8)
        self._leases[resolved] = (now + lease_ms / 1000, token)
        return Lookup(LookupState.LEASED, resolved, token=token)

    async def fill(self, resolved: str, token: str, value: V, ttl_ms: int) -> bool:
        if not self._holds(resolved, token):
            return False
        del self._leases[resolved]
        self._store(resolved, value, ttl_ms)
        return True

    def _holds(self, resolved: str, token: str) -> bool:
        held = self._leases.get(resolved)
        return held is not None and held[1] == token and held[0] > self._clock()

    def _store(self, resolved: str, value: V, ttl_ms: int) -> None:
        self._remove(resolved)
        size = self._sizeof(value) + ENTRY_OVERHEAD
        if size > self._max_bytes:
            return  # larger than the whole budget: a miss each time, never an eviction storm
        self._values[resolved] = (self._clock() + ttl_ms / 1000, value)
        self._bytes += size
        while len(self._values) > self._max or self._bytes > self._max_bytes:
            _, (_, evicted) = self._values.popitem(last=False)
            self._bytes -= self._sizeof(evicted) + ENTRY_OVERHEAD

    def _remove(self, resolved: str) -> None:
        entry = self._values.pop(resolved, None)
        if entry is not None:
            self._bytes -= self._sizeof(entry[1]) + ENTRY_OVERHEAD

    @property
    def size_bytes(self) -> int:
        """What the entries cost against the byte budget."""
        return self._bytes

    async def lease_for_write(self, key: CacheKey, lease_ms: int) -> WriteLease:
        resolved = self._resolve(key)
        token = secrets.token_hex(8)
        self._leases[resolved] = (self._clock() + lease_ms / 1000, token)
        return WriteLease(resolved, token)

    async def invalidate(
        self, item_names: Sequence[str], seqs: Sequence[int] = (), fills: Sequence[Fill[V]] = ()
    ) -> None:
        for name in item_names:
            self._drop(name)
        for fill in fills:
            resolved = self._resolve(CacheKey(fill.name))
            if resolved == fill.lease.resolved and self._holds(resolved, fill.lease.token):
                del self._leases[resolved]
                self._store(resolved, fill.value, fill.ttl_ms)
            else:
                self._drop(fill.name)
        self._generation += 1
        if self._applied is not None and seqs:
            self._delivered.update(s for s in seqs if s > self._applied)
            self._advance(self._applied)

    def _drop(self, name: str) -> None:
        resolved = self._resolve(CacheKey(name))
        self._remove(resolved)
        self._leases.pop(resolved, None)

    async def retire_all(self) -> None:
        self._epoch += 1
        self._values.clear()
        self._bytes = 0
        self._leases.clear()

    async def watermark(self) -> int | None:
        return self._applied

    async def catch_up(self, changes: Sequence[Change], through: int) -> None:
        if self._applied is None:  # nothing known to be applied: as RESET (redis.py)
            await self.reset(through)
            return
        pending = [c for c in changes if c.seq > self._applied and c.seq not in self._delivered]
        for change in pending:
            if change.event_id is None:
                await self.retire_all()
            else:
                self._drop(item_key(change.event_id).name)
        if pending:
            self._generation += 1
        self._advance(max(self._applied, through))

    async def reset(self, head: int) -> None:
        await self.retire_all()
        self._advance(max(self._applied or 0, head))

    def _advance(self, applied: int) -> None:
        """Move the watermark over every delivered seq that directly follows it."""
        while applied + 1 in self._delivered:
            applied += 1
        self._applied = applied
        self._delivered = {s for s in self._delivered if s > applied}
        if len(self._delivered) > MAX_DELIVERED:
            self._delivered = set(sorted(self._delivered)[:MAX_DELIVERED])

    async def reconnect(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._values.clear()
        self._bytes = 0
        self._leases.clear()

    def __len__(self) -> int:
        return len(self._values)
