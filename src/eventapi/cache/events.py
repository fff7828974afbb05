"""EventCache: the cache as the event service sees it, in its own terms: read an event, read a
page of the list, write an event (leaving its new value behind), forget an event. It owns
what the service need not know: the entries' form (entry.py), the keys, the TTLs, and the
leases, on top of ReadThrough (single-flight and leases, readthrough.py) over the guarded
cache (guard.py), or over none (EVENTAPI_CACHE_URL=none: every read goes to the store).

Every read returns an Entry: the exact response bytes with their ETag, identical on HIT and
MISS, and the change cursor it is consistent with: the change log's head as this process
knew it before the store was read (``head``, follow/watch.py), kept with the entry. A write
is acknowledged only after ``write`` or ``forget`` has returned: by then the cache holds
the written value or nothing for the event, and no list page from before it (base.py: the
lease protocol and Warm writes; guard.py: what happens when the cache fails).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventapi.cache.base import CacheKey, Fill, item_key, list_key
from eventapi.cache.entry import Entry
from eventapi.cache.guard import GuardedCache
from eventapi.cache.readthrough import Outcome, ReadThrough, jittered_ms
from eventapi.events.schemas import EventQuery
from eventapi.follow import cursor
from eventapi.settings import Settings


@dataclass(frozen=True, slots=True)
class Ttls:
    item: float = 3600.0
    missing: float = 30.0  # a "not found" (404) entry
    page: float = 60.0


@dataclass(frozen=True, slots=True)
class Served:
    entry: Entry
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Page:
    """A page of the list as the store gave it, rendered: the JSON of its events, the total
    count and the Link header for it."""

    body: bytes
    total: int
    link: str


@dataclass(frozen=True, slots=True)
class Item:
    """An event as the store gave it, rendered: its body, and its Last-Modified ("" when
    it has no modification date)."""

    body: bytes
    modified: str = ""


@dataclass(frozen=True, slots=True)
class Committed:
    """A store write that committed: its change-log record and the event's body now."""

    seq: int
    body: bytes
    modified: str = ""


@functools.lru_cache(maxsize=1024)  # a frozen model: hashable; the hot pages repeat
def query_digest(query: EventQuery) -> str:
    # The validated model has every default filled and a fixed field order, so equivalent
    # query strings (any parameter order, explicit defaults) share one key.
    return hashlib.sha256(query.model_dump_json().encode()).hexdigest()


class EventCache:
    def __init__(
        self,
        cache: GuardedCache[Entry] | None,
        lease_seconds: float,
        wait_seconds: float,
        ttls: Ttls = Ttls(),
        head: Callable[[], int] = lambda: 0,
    ) -> None:
        self.reads = ReadThrough(cache, lease_seconds, wait_seconds)
        self._ttls = ttls
        self._head = head

    def _cursor(self) -> str:
        return cursor.encode(self._head())

    @classmethod
    def configured(
        cls,
        cache: GuardedCache[Entry] | None,
        settings: Settings,
        head: Callable[[], int] = lambda: 0,
    ) -> EventCache:
        # A lease lasts as long as the slowest store read may; an orphaned one (its holder
        # crashed, or Redis ran it after the caller gave up) only costs other readers
        # cache_lease_wait before they read the store themselves.
        ttls = Ttls(settings.cache_ttl, settings.cache_missing_ttl, settings.cache_list_ttl)
        return cls(cache, settings.store_timeout, settings.cache_lease_wait, ttls, head)

    async def event(
        self, event_id: str, load: Callable[[], Awaitable[Item | bytes | None]]
    ) -> Served:
        """The event's entry: 200 with ``load``'s body, or 404 (cached too) when it gives
        None."""
        return await self._read(item_key(event_id), load, self._ttls.item)

    async def occurrence(
        self, occurrence_id: str, load: Callable[[], Awaitable[Item | bytes | None]]
    ) -> Served:
        """One occurrence of a recurring event, kept with the list pages: any write retires
        it (a write names its series, not the occurrences it moves or removes)."""
        return await self._read(list_key(occurrence_id), load, self._ttls.item)

    async def calendar(
        self, name: str, load: Callable[[], Awaitable[Page | Item | None]]
    ) -> Served:
        """An .ics answer (named ``name`` by the caller), kept with the list pages: any write
        retires it (a calendar of one event carries its SEQUENCE too, and a page of them
        depends on every event)."""
        return await self._read(list_key(f"ics:{name}"), load, self._ttls.page)

    async def page(self, query: EventQuery, load: Callable[[], Awaitable[Page]]) -> Served:
        return await self._read(list_key(query_digest(query)), load, self._ttls.page)

    async def _read(
        self, key: CacheKey, load: Callable[[], Awaitable[Page | Item | bytes | None]], ttl: float
    ) -> Served:
        """The entry at ``key``, built from ``load`` on a miss and kept ``ttl`` seconds (a
        404, when ``load`` finds nothing, the missing TTL). Its change cursor is the head
        read before ``load``: whatever the load missed has a higher seq (follow/watch.py)."""

        async def entry() -> tuple[Entry, float]:
            at = self._cursor()
            found = await load()
            if found is None:
                return Entry.build(404, b"", cursor=at), self._ttls.missing
            if isinstance(found, bytes):
                found = Item(found)
            if isinstance(found, Item):
                return Entry.build(200, found.body, modified=found.modified, cursor=at), ttl
            return Entry.build(200, found.body, str(found.total), found.link, cursor=at), ttl

        read = await self.reads.read(key, entry)
        return Served(read.value, read.outcome)

    async def write(
        self, event_id: str, commit: Callable[[], Awaitable[Committed | None]]
    ) -> Entry | None:
        """Run ``commit``, the store write (None: there was no event to write), and return
        the entry a GET of the event now answers, left in the cache when no other write
        overtook this one (base.py, Warm writes). Whatever else happens (no event, a
        failure, a cancellation), the event is forgotten before this returns or raises."""
        key = item_key(event_id)
        # The write's lease, so the cache can take the written value after it. Its reply
        # is awaited BEFORE the store write: a lease that reached the cache after the
        # commit could outlive a later writer's and let this older value be filled over
        # its newer one (tests/cache/model: the race of lease_before_commit=False).
        lease = await self.reads.lease_for_write(key)
        at = self._cursor()
        try:
            committed = await commit()
        except BaseException:
            # A write that failed (timed out) may still have committed; if it did, the
            # relay delivers its change-log record too.
            await self.forget(event_id)
            raise
        if committed is None:
            await self.forget(event_id)  # nothing was written: frees the lease
            return None
        entry = Entry.build(200, committed.body, modified=committed.modified, cursor=at)
        if lease is None:
            await self.forget(event_id, committed.seq)
        else:
            fill = Fill(key.name, lease, entry, jittered_ms(self._ttls.item))
            await self.reads.invalidate([], [committed.seq], [fill])
        return entry

    async def forget(self, event_id: str, seq: int = 0) -> None:
        """Drop the event and every list page, after a write and before it is acknowledged;
        ``seq`` (0: none) is the write's change-log record, which this delivers."""
        await self.reads.invalidate([item_key(event_id).name], [seq] if seq else [])
