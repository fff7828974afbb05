"""EventService: every read and write of events goes through here.

Reads and writes go through the event cache (cache/events.py), which keeps the cache
never stale: a read returns an Entry, the exact response bytes with their ETag, identical
on HIT and MISS; a write commits to the store first, then is forgotten by the cache (an
update leaves its new value there when no other write overtook it).

Conditional writes (If-Match, against lost updates): the ETag of an event is the strong tag
of its rendered body, so the store cannot compare it; it compares versions instead. A write
with If-Match reads the event with its version (from the store, never the cache), checks
the ETag of its rendering, then asks the store to write only if the event is still at that
version: the store's check and write are one atomic step. Whatever changed the event in
between, in this process or another, the write then fails with 412 carrying the ETag of
the event as it is now. ``If-Match: *`` needs no read: the store writes only if the event
exists.

Idempotent creates (``Idempotency-Key``): ``create(data, key=IdempotencyKey(...))`` asks the
store to create at most once per key (EventStore.create_once), which keeps the record in
the database, so a retry after a time-out or a restart, on any process, gets the original
answer (``Written.replayed``). A second request with a key that is in flight in this
process gets IdempotencyKeyInFlight at once, on every backend, without asking the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from pydantic import SerializeAsAny, TypeAdapter

from eventapi.cache.entry import strong_etag
from eventapi.cache.events import Committed, EventCache, Item, Page, Served, query_digest
from eventapi.errors import (
    EventApiError,
    EventNotFound,
    IdempotencyKeyInFlight,
    PreconditionFailed,
)
from eventapi.events import cursors, ical, timing
from eventapi.events.admission import ListAdmission
from eventapi.events.links import CALENDAR_PATH, page_links
from eventapi.events.preconditions import IfMatch, IfUnmodifiedSince
from eventapi.events.schemas import (
    FIELD_DEFAULTS,
    CalendarQuery,
    EventCreate,
    EventPage,
    EventQuery,
    EventRead,
    EventUpdate,
    occurrence_id,
    occurrence_of,
)
from eventapi.events.store import Claim, EventStore, VersionConflict
from eventapi.metrics import Metrics

# SerializeAsAny: an expanded page's occurrences keep their series_id.
_EVENT_LIST = TypeAdapter(list[SerializeAsAny[EventRead]])


@dataclass(frozen=True, slots=True)
class Written:
    event_id: str
    body: bytes
    etag: str  # of ``body``: what a GET of the event returns until its next write
    replayed: bool = False  # the answer to an earlier request with the same Idempotency-Key
    modified: str = ""  # its Last-Modified


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A create's Idempotency-Key (already validated), and whose it is: ``scope``."""

    scope: str
    key: str


def fingerprint(data: EventCreate) -> str:
    """The request a key was used for: SHA-256 of its validated body (every field, fixed
    order), so bodies that differ only in key order or spacing count as the same request.
    A field left at its default is left out, so a retry after an upgrade that added fields
    (the calendar fields) is still the same request as before it."""
    fields = data.model_dump()
    left = {name for name, default in FIELD_DEFAULTS.items() if fields[name] == default}
    return hashlib.sha256(data.model_dump_json(exclude=left).encode()).hexdigest()


def render(event: EventRead) -> bytes:
    return event.model_dump_json().encode()


def last_modified(event: EventRead) -> str:
    """The event's Last-Modified (an HTTP date, to the second), or "" when it has no
    modification date (written before they were kept)."""
    stamp = event.updated_at or event.created_at
    return "" if stamp is None else format_datetime(stamp.replace(microsecond=0), usegmt=True)


def item(event: EventRead) -> Item:
    return Item(render(event), last_modified(event))


def written(event: EventRead) -> Written:
    body = render(event)
    return Written(event.id, body, strong_etag(body), modified=last_modified(event))


class EventService:
    def __init__(
        self,
        store: EventStore,
        cache: EventCache,
        metrics: Metrics,
        admission: ListAdmission | None = None,
    ) -> None:
        self._store = store
        self.cache = cache
        self._metrics = metrics
        self._admission = admission  # None: no bound on uncached list queries
        self._in_flight: set[tuple[str, str]] = set()

    async def get(self, event_id: str) -> Served:
        """The event's entry; a 404 entry (cached "not found" too) when there is none."""

        async def load() -> Item | None:
            self._metrics.store_operation("get")
            event = await self._store.get(event_id)
            return None if event is None else item(event)

        served = await self.cache.event(event_id, load)
        self._metrics.cache_request("item", served.outcome)
        return served

    async def get_occurrence(self, series_id: str, start: datetime) -> Served:
        """The occurrence of the recurring event ``series_id`` that starts at the instant
        ``start``; a 404 entry when the series or that occurrence does not exist."""

        async def load() -> Item | None:
            self._metrics.store_operation("get")
            series = await self._store.get(series_id)
            if series is None or series.recurrence is None:
                return None
            if start not in {o.start for o in timing.occurrences(series)}:
                return None
            found = occurrence_of(series, start)
            return Item(render(found), last_modified(series))

        served = await self.cache.occurrence(occurrence_id(series_id, start), load)
        self._metrics.cache_request("item", served.outcome)
        return served

    async def list(self, query: EventQuery, client: Callable[[], str] = str) -> Served:
        """``client``: who asks, for the admission of an uncached query (asked only then)."""
        cursors.decode(query)  # InvalidCursor (400) before the cache and the admission

        async def load() -> Page:
            page = await self._listed(query, client)
            body = _EVENT_LIST.dump_json(page.items)
            return Page(body, page.total, page_links(query, page))

        served = await self.cache.page(query, load)
        self._metrics.cache_request("list", served.outcome)
        return served

    async def calendar(self, query: CalendarQuery, client: Callable[[], str] = str) -> Served:
        """GET /api/events.ics: a page of the list as an iCalendar calendar, each event with
        its version as SEQUENCE. Admitted like every uncached list query."""
        cursors.decode(query)

        async def load() -> Page:
            page = await self._listed(query, client)
            # Each event with its version, read together; one deleted since the page was
            # read is left out (the next read of the calendar would not have it either).
            found = await self._store.get_many([e.id for e in page.items])
            events = [(found[e.id].event, found[e.id].version) for e in page.items if e.id in found]
            # Up to a second or more of CPU for a page of long series (each expanded, for
            # its UNTIL and its zones' span): on a thread, not on the event loop every
            # other request of the process waits on. The admission bounds how many at once.
            body = await asyncio.to_thread(ical.calendar, events, "eventapi")
            return Page(body, page.total, page_links(query, page, CALENDAR_PATH))

        served = await self.cache.calendar(f"list:{query_digest(query)}", load)
        self._metrics.cache_request("list", served.outcome)
        return served

    async def calendar_of(self, event_id: str) -> Served:
        """GET /api/events/{id}.ics: one event as a calendar; a 404 entry without it."""

        async def load() -> Item | None:
            self._metrics.store_operation("get")
            current = await self._store.get_versioned(event_id)
            if current is None:
                return None
            one = [(current.event, current.version)]
            body = await asyncio.to_thread(ical.calendar, one, current.event.title)
            return Item(body, last_modified(current.event))

        served = await self.cache.calendar(f"event:{event_id}", load)
        self._metrics.cache_request("item", served.outcome)
        return served

    def list_refusal(self, client: str) -> EventApiError | None:
        """The refusal an uncached list query from ``client`` would meet now, if any."""
        return None if self._admission is None else self._admission.refusal(client)

    async def _listed(self, query: EventQuery, client: Callable[[], str]) -> EventPage:
        """An uncached list query, within the admission (``client``'s share of it)."""
        admitted = (
            contextlib.nullcontext() if self._admission is None else self._admission.admit(client())
        )
        with admitted:
            self._metrics.store_operation("list")
            return await self._store.list(query)

    async def create(self, data: EventCreate, key: IdempotencyKey | None = None) -> Written:
        if key is None:
            self._metrics.store_operation("create")
            saved = await self._store.create(data)
            await self.cache.forget(saved.event.id, saved.seq)
            return written(saved.event)
        held = (key.scope, key.key)
        if held in self._in_flight:
            raise IdempotencyKeyInFlight()
        self._in_flight.add(held)
        try:
            self._metrics.store_operation("create")
            claim = Claim(key.scope, key.key, fingerprint(data), time.time())
            saved = await self._store.create_once(data, claim)
        finally:
            self._in_flight.discard(held)
        if saved.replayed:
            replay = written(saved.event)
            return Written(replay.event_id, replay.body, replay.etag, True, replay.modified)
        await self.cache.forget(saved.event.id, saved.seq)
        return written(saved.event)

    async def replace(
        self,
        event_id: str,
        data: EventCreate,
        if_match: IfMatch | None = None,
        unmodified: IfUnmodifiedSince | None = None,
    ) -> Written:
        return await self._update(event_id, data.model_dump(), if_match, unmodified)

    async def patch(
        self,
        event_id: str,
        data: EventUpdate,
        if_match: IfMatch | None = None,
        unmodified: IfUnmodifiedSince | None = None,
    ) -> Written:
        return await self._update(event_id, data.changes(), if_match, unmodified)

    async def _update(
        self,
        event_id: str,
        changes: dict[str, object],
        if_match: IfMatch | None,
        unmodified: IfUnmodifiedSince | None,
    ) -> Written:
        expected = await self._expected_version(event_id, if_match, unmodified)

        async def commit() -> Committed | None:
            self._metrics.store_operation("update")
            saved = await self._store.update(event_id, changes, expected_version=expected)
            if saved is None:
                return None
            return Committed(saved.seq, render(saved.event), last_modified(saved.event))

        try:
            entry = await self.cache.write(event_id, commit)
        except VersionConflict as conflict:
            raise _changed(conflict) from None
        if entry is None:
            raise _absent(event_id, if_match)
        return Written(event_id, entry.body, entry.etag, modified=entry.modified)

    async def delete(
        self,
        event_id: str,
        if_match: IfMatch | None = None,
        unmodified: IfUnmodifiedSince | None = None,
    ) -> None:
        expected = await self._expected_version(event_id, if_match, unmodified)
        self._metrics.store_operation("delete")
        try:
            seq = await self._store.delete(event_id, expected_version=expected)
        except VersionConflict as conflict:
            raise _changed(conflict) from None
        except BaseException:
            await self.cache.forget(event_id)
            raise
        await self.cache.forget(event_id, seq or 0)
        if seq is None:
            raise _absent(event_id, if_match)

    async def _expected_version(
        self, event_id: str, if_match: IfMatch | None, unmodified: IfUnmodifiedSince | None
    ) -> int | None:
        """The version the write must find the event at; None: any (no precondition, or
        If-Match ``*``, for which the store's own "only if it exists" is the whole check).
        Raises PreconditionFailed, with the current ETag, when If-Match does not match now,
        or (without If-Match, RFC 9110 13.2.2) the event changed after If-Unmodified-Since.
        """
        if (if_match is None and unmodified is None) or (if_match is not None and if_match.any):
            return None
        self._metrics.store_operation("get")
        current = await self._store.get_versioned(event_id)
        if current is None:
            if if_match is None:
                return None  # the write finds no event: 404, as without the field
            raise PreconditionFailed(event_id, None)
        etag = strong_etag(render(current.event))
        if if_match is not None and not if_match.matches(etag):
            raise PreconditionFailed(event_id, etag)
        stamp = current.event.updated_at or current.event.created_at
        if if_match is None and unmodified is not None and not unmodified.holds(stamp):
            raise PreconditionFailed(event_id, etag)
        return current.version


def _changed(conflict: VersionConflict) -> PreconditionFailed:
    """The event changed between the If-Match check and the write: 412 with its ETag now."""
    current = conflict.current.event
    return PreconditionFailed(current.id, strong_etag(render(current)))


def _absent(event_id: str, if_match: IfMatch | None) -> PreconditionFailed | EventNotFound:
    # RFC 9110 13.1.1: If-Match (even "*") is false when there is no current representation.
    return EventNotFound(event_id) if if_match is None else PreconditionFailed(event_id, None)
