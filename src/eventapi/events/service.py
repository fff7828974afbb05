"""EventService: every read and write of events goes through here.

It is the seam where the cache sits: routes call the service, the service calls the store.
Reads return the response body as bytes so that a cached body can be served unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import TypeAdapter

from eventapi.errors import EventNotFound
from eventapi.events.schemas import EventCreate, EventQuery, EventRead, EventUpdate
from eventapi.storage.base import EventStore

_EVENT_LIST = TypeAdapter(list[EventRead])


@dataclass(frozen=True, slots=True)
class Page:
    body: bytes
    total: int


@dataclass(frozen=True, slots=True)
class Written:
    event_id: str
    body: bytes


def render(event: EventRead) -> bytes:
    return event.model_dump_json().encode()


class EventService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def get(self, event_id: str) -> bytes:
        event = await self._store.get(event_id)
        if event is None:
            raise EventNotFound(event_id)
        return render(event)

    async def list(self, query: EventQuery) -> Page:
        page = await self._store.list(query)
        return Page(_EVENT_LIST.dump_json(page.items), page.total)

    async def create(self, data: EventCreate) -> Written:
        event = await self._store.create(data)
        return Written(event.id, render(event))

    async def replace(self, event_id: str, data: EventCreate) -> Written:
        return await self._update(event_id, data.model_dump())

    async def patch(self, event_id: str, data: EventUpdate) -> Written:
        return await self._update(event_id, data.changes())

    async def _update(self, event_id: str, changes: dict[str, object]) -> Written:
        event = await self._store.update(event_id, changes)
        if event is None:
            raise EventNotFound(event_id)
        return Written(event.id, render(event))

    async def delete(self, event_id: str) -> None:
        if not await self._store.delete(event_id):
            raise EventNotFound(event_id)
