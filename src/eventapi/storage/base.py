"""The EventStore port. Services depend on this Protocol, never on a backend module."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from eventapi.changes import ChangeBatch
from eventapi.errors import StoreUnavailable
from eventapi.events.schemas import EventCreate, EventPage, EventQuery, EventRead

log = logging.getLogger("eventapi.storage")

Backend = Literal["sqlite", "mongodb"]


@dataclass(frozen=True, slots=True)
class Saved:
    """A committed write: the event as stored, and the seq of its change-log record."""

    event: EventRead
    seq: int  # 0 when nothing was written (an update with no changes)


class EventStore(Protocol):
    """Persistence for events. Ids are 24-hex ObjectId strings on every backend.

    Every method either completes within the store's timeout or raises StoreUnavailable.
    Every read sees the latest committed data. Every write records its change in the
    change log (eventapi/changes.py) before it is acknowledged.
    """

    backend: Backend

    async def get(self, event_id: str) -> EventRead | None: ...

    async def list(self, query: EventQuery) -> EventPage: ...

    async def create(self, event: EventCreate) -> Saved: ...

    async def update(self, event_id: str, changes: Mapping[str, Any]) -> Saved | None:
        """Set the given fields (``None`` clears); returns the new state, or None if absent."""
        ...

    async def delete(self, event_id: str) -> int | None:
        """Returns the seq of the deletion's change record, or None if there was no event."""
        ...

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        """Up to ``limit`` change records with seq > ``after``, oldest first."""
        ...

    async def insert_missing(self, events: Sequence[EventRead]) -> int:
        """Insert events under their own ids, skipping ids that exist; returns how many."""
        ...

    async def delete_all(self) -> int: ...

    async def count(self) -> int: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


@asynccontextmanager
async def guarded(
    timeout: float, driver_errors: tuple[type[BaseException], ...], what: str
) -> AsyncIterator[None]:
    """Bound a store call in time and turn driver failures into StoreUnavailable.

    The driver's own message is logged, never sent to the client.
    """
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        log.warning("%s timed out after %.1fs", what, timeout)
        raise StoreUnavailable() from None
    except driver_errors as exc:
        log.warning("%s failed: %s: %s", what, type(exc).__name__, exc)
        raise StoreUnavailable() from None
