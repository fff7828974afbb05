"""FlakyStore: an EventStore that delegates to a real one but can be switched "down".

While ``down`` is set, every call raises ``StoreUnavailable`` (what a real store raises
when its database does not answer), or ``error`` if a test set one. Clearing the flag
brings it back at once, without a restart. Every call is recorded by method name in
``calls``, so a test can also prove that a request never reached the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventapi.changes import ChangeBatch
from eventapi.errors import StoreUnavailable
from eventapi.events.schemas import EventCreate, EventPage, EventQuery, EventRead
from eventapi.events.store import Backend, Claim, EventStore, Saved, Versioned


class FlakyStore:
    backend: Backend

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.down = False
        # What a call raises while down; StoreUnavailable unless a test wants another error.
        self.error: Exception | None = None
        self.calls: list[str] = []
        self.feed_calls = 0

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        if self.down:
            raise self.error or StoreUnavailable()

    async def get(self, event_id: str) -> EventRead | None:
        self._enter("get")
        return await self.inner.get(event_id)

    async def get_versioned(self, event_id: str) -> Versioned | None:
        self._enter("get_versioned")
        return await self.inner.get_versioned(event_id)

    async def list(self, query: EventQuery) -> EventPage:
        self._enter("list")
        return await self.inner.list(query)

    async def create(self, event: EventCreate) -> Saved:
        self._enter("create")
        return await self.inner.create(event)

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        self._enter("create_once")
        return await self.inner.create_once(event, claim)

    async def update(
        self, event_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Saved | None:
        self._enter("update")
        return await self.inner.update(event_id, changes, expected_version=expected_version)

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        self._enter("delete")
        return await self.inner.delete(event_id, expected_version=expected_version)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        self._enter("insert_missing")
        return await self.inner.insert_missing(events)

    async def delete_all(self) -> int:
        self._enter("delete_all")
        return await self.inner.delete_all()

    async def head(self) -> int:
        self.feed_calls += 1
        if self.down:
            raise self.error or StoreUnavailable()
        return await self.inner.head()

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        # The change feed's reads (the watch's in the background): counted with them.
        self.feed_calls += 1
        if self.down:
            raise self.error or StoreUnavailable()
        return await self.inner.get_many(event_ids)

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        # The relay's background reads are not requests: counted apart from ``calls``.
        self.feed_calls += 1
        if self.down:
            raise self.error or StoreUnavailable()
        return await self.inner.changes_since(after, limit)

    async def count(self) -> int:
        self._enter("count")
        return await self.inner.count()

    async def ping(self) -> None:
        self._enter("ping")
        await self.inner.ping()

    async def close(self) -> None:
        # The wrapped store belongs to whoever opened it.
        self.calls.append("close")
