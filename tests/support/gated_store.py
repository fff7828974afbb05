"""GatedStore: an EventStore that delegates to a real one, counts every call, and can hold a
reader still at a chosen point, so a test can interleave a write with a read deterministically.

``gate = store.arm("get")`` makes the NEXT ``get()`` call read from the inner store, record
what it read in ``gate.value``, set ``gate.read_done`` and then wait for ``gate.release``
before it returns. Later calls pass straight through (arm again for another pause). No
sleeps: the test decides when the paused reader may go on.

``store.arm("get_versioned")`` pauses the read a conditional write (If-Match) makes before
it writes, the same way: ``gate.value`` is the Versioned it read.

``store.arm("create_once")`` pauses an idempotent create (Idempotency-Key) after the
inner store has done it: ``gate.value`` is the Saved it returned.

``store.arm("get_many")`` pauses a read of several events (a page of the change feed, or the
watch's read for its streams) after it has read them.

``store.calls["get"]`` counts calls per method name (every method, reads and writes).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from eventapi.changes import ChangeBatch
from eventapi.events.schemas import EventCreate, EventPage, EventQuery, EventRead
from eventapi.events.store import Backend, Claim, EventStore, Saved, Versioned

Gateable = Literal["get", "list", "get_versioned", "create_once", "get_many"]
Held = EventRead | EventPage | Versioned | Saved | Mapping[str, Versioned] | None


class Gate:
    """One pause of one store read."""

    def __init__(self, method: Gateable) -> None:
        self.method = method
        self.read_done = asyncio.Event()
        self.release = asyncio.Event()
        # What the paused call read from the inner store (set just before read_done).
        self.value: Held = None

    def open(self) -> None:
        self.release.set()


class GatedStore:
    backend: Backend

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.calls: Counter[str] = Counter()
        self.feed_calls = 0
        self._armed: dict[str, Gate] = {}
        self._gates: list[Gate] = []

    def arm(self, method: Gateable) -> Gate:
        """Pause the next call of ``method`` after its inner read, until the gate opens."""
        if method in self._armed:
            raise RuntimeError(f"{method}() is already armed")
        gate = Gate(method)
        self._armed[method] = gate
        self._gates.append(gate)
        return gate

    def open_all(self) -> None:
        """Release every gate (teardown: nothing may stay paused after a failed test)."""
        for gate in self._gates:
            gate.open()

    async def _hold(self, method: str, value: Held) -> None:
        gate = self._armed.pop(method, None)
        if gate is None:
            return
        gate.value = value
        gate.read_done.set()
        await gate.release.wait()

    async def get(self, event_id: str) -> EventRead | None:
        self.calls["get"] += 1
        event = await self.inner.get(event_id)
        await self._hold("get", event)
        return event

    async def get_versioned(self, event_id: str) -> Versioned | None:
        self.calls["get_versioned"] += 1
        current = await self.inner.get_versioned(event_id)
        await self._hold("get_versioned", current)
        return current

    async def list(self, query: EventQuery) -> EventPage:
        self.calls["list"] += 1
        page = await self.inner.list(query)
        await self._hold("list", page)
        return page

    async def create(self, event: EventCreate) -> Saved:
        self.calls["create"] += 1
        return await self.inner.create(event)

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        self.calls["create_once"] += 1
        saved = await self.inner.create_once(event, claim)
        await self._hold("create_once", saved)
        return saved

    async def update(
        self, event_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Saved | None:
        self.calls["update"] += 1
        return await self.inner.update(event_id, changes, expected_version=expected_version)

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        self.calls["delete"] += 1
        return await self.inner.delete(event_id, expected_version=expected_version)

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        self.calls["insert_missing"] += 1
        return await self.inner.insert_missing(events)

    async def delete_all(self) -> int:
        self.calls["delete_all"] += 1
        return await self.inner.delete_all()

    async def head(self) -> int:
        self.feed_calls += 1
        return await self.inner.head()

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        # The change feed's reads (the watch's in the background): counted with them.
        self.feed_calls += 1
        found = await self.inner.get_many(event_ids)
        await self._hold("get_many", found)
        return found

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        # The relay's background reads are not requests: counted apart from ``calls``.
        self.feed_calls += 1
        return await self.inner.changes_since(after, limit)

    async def count(self) -> int:
        self.calls["count"] += 1
        return await self.inner.count()

    async def ping(self) -> None:
        self.calls["ping"] += 1
        await self.inner.ping()

    async def close(self) -> None:
        # The wrapped store belongs to whoever opened it.
        self.calls["close"] += 1


def _conforms(store: GatedStore) -> EventStore:
    return store  # mypy checks here that GatedStore satisfies the EventStore protocol
