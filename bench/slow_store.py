"""A store wrapper that adds a fixed delay to every request-path call.

It models a database across a network, such as the remote MongoDB behind the original
README's "50-100 ms uncached" figures, on a machine whose local SQLite answers in
microseconds. apps.py's slow_app puts it in front of the real store; the calls a request
makes (get, list, create, create_once, update, delete) wait, the rest pass straight
through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from eventapi.changes import ChangeBatch
from eventapi.events.schemas import EventCreate, EventPage, EventQuery, EventRead
from eventapi.events.store import Backend, Claim, EventStore, Saved, Versioned


class DelayedStore:
    def __init__(self, inner: EventStore, delay: float) -> None:
        self.inner = inner
        self.delay = delay
        self.backend: Backend = inner.backend

    async def get(self, event_id: str) -> EventRead | None:
        await asyncio.sleep(self.delay)
        return await self.inner.get(event_id)

    async def get_versioned(self, event_id: str) -> Versioned | None:
        await asyncio.sleep(self.delay)
        return await self.inner.get_versioned(event_id)

    async def list(self, query: EventQuery) -> EventPage:
        await asyncio.sleep(self.delay)
        return await self.inner.list(query)

    async def create(self, event: EventCreate) -> Saved:
        await asyncio.sleep(self.delay)
        return await self.inner.create(event)

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        await asyncio.sleep(self.delay)
        return await self.inner.create_once(event, claim)

    async def update(
        self, event_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Saved | None:
        await asyncio.sleep(self.delay)
        return await self.inner.update(event_id, changes, expected_version=expected_version)

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        await asyncio.sleep(self.delay)
        return await self.inner.delete(event_id, expected_version=expected_version)

    async def head(self) -> int:
        return await self.inner.head()

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        return await self.inner.get_many(event_ids)

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        return await self.inner.changes_since(after, limit)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        return await self.inner.insert_missing(events)

    async def delete_all(self) -> int:
        return await self.inner.delete_all()

    async def count(self) -> int:
        return await self.inner.count()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
