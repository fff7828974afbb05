"""EventService: every read and write of events goes through here.

Reads are cache-aside through ReadThrough (single-flight + leases) and return a cache
Entry: the exact response bytes with their ETag, identical on HIT and MISS. Writes commit
to the store first, then invalidate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import TypeAdapter

from eventapi.cache.base import item_key, list_key
from eventapi.cache.readthrough import Outcome, ReadThrough
from eventapi.errors import EventNotFound
from eventapi.events.entry import Entry
from eventapi.events.links import page_links
from eventapi.events.schemas import EventCreate, EventQuery, EventRead, EventUpdate
from eventapi.events.store import EventStore
from eventapi.metrics import Metrics

_EVENT_LIST = TypeAdapter(list[EventRead])


@dataclass(frozen=True, slots=True)
class Ttls:
    item: float = 3600.0
    missing: float = 30.0
    page: float = 60.0


@dataclass(frozen=True, slots=True)
class Served:
    entry: Entry
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Written:
    event_id: str
    body: bytes


def render(event: EventRead) -> bytes:
    return event.model_dump_json().encode()


def query_digest(query: EventQuery) -> str:
    # The validated model has every default filled and a fixed field order, so equivalent
    # query strings (any parameter order, explicit defaults) share one key.
    return hashlib.sha256(query.model_dump_json().encode()).hexdigest()


class EventService:
    def __init__(
        self,
        store: EventStore,
        reads: ReadThrough,
        metrics: Metrics,
        ttls: Ttls = Ttls(),
    ) -> None:
        self._store = store
        self._reads = reads
        self._metrics = metrics
        self._ttls = ttls

    async def get(self, event_id: str) -> Served:
        """The event's entry; a 404 entry (cached "not found" too) when there is none."""

        async def load() -> tuple[bytes, float]:
            self._metrics.store_operations.labels("get").inc()
            event = await self._store.get(event_id)
            if event is None:
                return Entry.build(404, b"").encode(), self._ttls.missing
            return Entry.build(200, render(event)).encode(), self._ttls.item

        read = await self._reads.read(item_key(event_id), load)
        self._metrics.cache_requests.labels("item", read.outcome.lower()).inc()
        return Served(Entry.decode(read.value), read.outcome)

    async def list(self, query: EventQuery) -> Served:
        async def load() -> tuple[bytes, float]:
            self._metrics.store_operations.labels("list").inc()
            page = await self._store.list(query)
            body = _EVENT_LIST.dump_json(page.items)
            link = page_links(query, page.total)
            return Entry.build(200, body, str(page.total), link).encode(), self._ttls.page

        read = await self._reads.read(list_key(query_digest(query)), load)
        self._metrics.cache_requests.labels("list", read.outcome.lower()).inc()
        return Served(Entry.decode(read.value), read.outcome)

    async def create(self, data: EventCreate) -> Written:
        self._metrics.store_operations.labels("create").inc()
        saved = await self._store.create(data)
        await self._invalidate(saved.event.id, saved.seq)
        return Written(saved.event.id, render(saved.event))

    async def replace(self, event_id: str, data: EventCreate) -> Written:
        return await self._update(event_id, data.model_dump())

    async def patch(self, event_id: str, data: EventUpdate) -> Written:
        return await self._update(event_id, data.changes())

    async def _update(self, event_id: str, changes: dict[str, object]) -> Written:
        self._metrics.store_operations.labels("update").inc()
        saved = None
        try:
            saved = await self._store.update(event_id, changes)
        finally:
            # Also after a failed call: a write that timed out may still have committed
            # (and if it did, the relay delivers its change-log record too).
            await self._invalidate(event_id, saved.seq if saved else 0)
        if saved is None:
            raise EventNotFound(event_id)
        return Written(saved.event.id, render(saved.event))

    async def delete(self, event_id: str) -> None:
        self._metrics.store_operations.labels("delete").inc()
        seq = None
        try:
            seq = await self._store.delete(event_id)
        finally:
            await self._invalidate(event_id, seq or 0)
        if seq is None:
            raise EventNotFound(event_id)

    async def _invalidate(self, event_id: str, seq: int) -> None:
        """Before the write is acknowledged; ``seq`` (0: none) tells the relay it is done."""
        await self._reads.invalidate([item_key(event_id).name], [seq] if seq else [])
