"""The EventStore port: what the events domain needs of a database. Backends live in
storage/ (sqlite.py, mongo.py) and satisfy this Protocol; the service depends on it only."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from eventapi.changes import ChangeBatch
from eventapi.events.schemas import EventCreate, EventFields, EventPage, EventQuery, EventRead

Backend = Literal["sqlite", "mongodb"]


@dataclass(frozen=True, slots=True)
class Saved:
    """A committed write: the event as stored, and the seq of its change-log record."""

    event: EventRead
    seq: int  # 0 when nothing was written (an update with no changes, a replay)
    replayed: bool = False  # create_once: the event an earlier call with the key created


@dataclass(frozen=True, slots=True)
class Versioned:
    """An event as stored, with its version: the seq of the change-log record of the last
    write to it (0: not written since the store began keeping versions). Seqs are never
    reused, so every state an event is ever in has a version of its own."""

    event: EventRead
    version: int


class VersionConflict(Exception):
    """A conditional write (``expected_version=``) found the event at another version.

    Nothing was written. ``current`` is the event as it is now, read in the same atomic
    step as the check.
    """

    def __init__(self, current: Versioned) -> None:
        super().__init__(f"event {current.event.id} is at version {current.version}")
        self.current = current


# How long an Idempotency-Key is remembered (at least: expired records go lazily).
IDEMPOTENCY_TTL = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Claim:
    """An ``Idempotency-Key`` on a create: ``key`` as the client sent it, within ``scope``
    (whose key it is: the SHA-256 of the API key, or one fixed scope when the API is open),
    for the request with this ``fingerprint`` (SHA-256 of its canonical body), made at
    ``at`` (time.time(); records older than IDEMPOTENCY_TTL are forgotten)."""

    scope: str
    key: str
    fingerprint: str
    at: float


class EventStore(Protocol):
    """Persistence for events. Ids are 24-hex ObjectId strings on every backend.

    Every method either completes within the store's timeout or raises StoreUnavailable.
    Every read sees the latest committed data. Every write records its change in the
    change log (eventapi/changes.py) before it is acknowledged, and gives the event it
    writes a new version (Versioned): the seq of that record.
    """

    backend: Backend

    async def get(self, event_id: str) -> EventRead | None: ...

    async def get_versioned(self, event_id: str) -> Versioned | None:
        """The event with its version (for a conditional write), or None if absent."""
        ...

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        """The events of ``event_ids`` that exist, by id, with their versions (at most a
        page of them: the change feed's, or an .ics page's)."""
        ...

    async def head(self) -> int:
        """A seq such that every change up to it is settled (ChangeBatch.head): a read that
        starts after this returns reflects each of them. What the answers' change cursor
        is (follow/watch.py)."""
        ...

    async def list(self, query: EventQuery) -> EventPage: ...

    async def create(self, event: EventCreate) -> Saved: ...

    async def create_once(self, event: EventCreate, claim: Claim) -> Saved:
        """``create``, at most once per (scope, key) within IDEMPOTENCY_TTL.

        The first call creates the event and remembers, with the claim, the event as
        created. A later call with the same fingerprint creates nothing and returns that
        event as it was created (``Saved.replayed``; ``seq`` 0), even if it has changed or
        gone since. Another fingerprint: IdempotencyKeyReused. The first call still
        running (or died mid-way, until the store timeout has surely passed):
        IdempotencyKeyInFlight. The record survives a restart: it is kept in the database.
        """
        ...

    async def update(
        self, event_id: str, changes: Mapping[str, Any], *, expected_version: int | None = None
    ) -> Saved | None:
        """Set the given fields (``None`` clears); returns the new state, or None if absent.

        With ``expected_version``, the check and the write are one atomic step (correct
        across processes): the write applies only if the event is still at that version,
        else VersionConflict is raised and nothing is written.
        """
        ...

    async def delete(self, event_id: str, *, expected_version: int | None = None) -> int | None:
        """Returns the seq of the deletion's change record, or None if there was no event.

        ``expected_version``: as for ``update`` (VersionConflict, nothing deleted).
        """
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


class BulkEventStore(EventStore, Protocol):
    """The port plus what `eventapi export` and `import` need: every event, page by page,
    and a fast way to fill an empty store. Apart from
    the port so that wrappers serving requests (tests, the benchmark) need not implement it;
    the stores opened by storage/factory.py have it."""

    async def scan(self, after: str | None, limit: int) -> Sequence[EventRead]:
        """Up to ``limit`` events whose ids sort after ``after`` (None: from the first), in
        id order. Keyset paging: each page is an index seek however far in, and an event
        that exists throughout a scan is returned exactly once."""
        ...

    async def load_new(self, batches: Iterable[Sequence[EventFields]]) -> int | None:
        """If the store holds no event: all of ``batches`` (checked events, ids unique and
        sorted) in one transaction, indexes built once at the end; returns how many. None
        when the store cannot (it holds events, or its backend has no such load): nothing
        was written, and the caller writes with ``insert_missing``. ``batches`` may be
        iterated on another thread."""
        ...
