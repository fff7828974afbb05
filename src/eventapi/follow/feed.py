"""The change feed: the change log read in commit order, each change with its event as it
is now (null once deleted: the tombstone). What GET /api/changes answers, and what a live
stream (stream.py) sends.

A follower that applies every change it is given, in order (store the event, or drop it
for a tombstone), holds the events as they are once it has caught up: each change carries
the event's state when it was read, which is at least as new as the change. Changes come
only up to the log's settled head (changes.ChangeBatch.head), so one never arrives before
an earlier one it could overtake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from eventapi.changes import Change, Kind
from eventapi.errors import ChangesGone
from eventapi.events.schemas import EventRead
from eventapi.events.store import EventStore, Versioned
from eventapi.follow import cursor

# The most changes one feed page carries.
MAX_LIMIT = 1000


class ChangeRead(BaseModel):
    """One change: where it is in the log, which event, how, and the event as it is now."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cursor": cursor.EXAMPLE,
                    "id": "68ed254e36d0233aa05afbe9",
                    "kind": "deleted",
                    "event": None,
                }
            ]
        }
    )

    cursor: str = Field(description="Follow from here to get the changes after this one")
    id: str = Field(description="The event's id")
    kind: Kind
    event: EventRead | None = Field(description="The event as it is now; null once deleted")


class ChangesPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "changes": [
                        {
                            "cursor": cursor.EXAMPLE,
                            "id": "68ed254e36d0233aa05afbe9",
                            "kind": "deleted",
                            "event": None,
                        }
                    ],
                    "next": cursor.EXAMPLE,
                    "more": False,
                }
            ]
        }
    )

    changes: list[ChangeRead]
    next: str = Field(description="The cursor to ask for the changes after these")
    more: bool = Field(description="true: more changes are ready now; ask again at once")


@dataclass(frozen=True, slots=True)
class Followed:
    """Changes read from the log, each rendered as a ChangeRead's JSON, and where the
    follower stands after them (``next``: every change up to it was given)."""

    items: Sequence[tuple[int, bytes]]
    next: int
    more: bool


def kind_now(recorded: Kind | None, event: Versioned | None) -> Kind:
    """What a change says: as recorded; for a record of a release that did not record it,
    deleted when the event is gone now, else updated."""
    if recorded is not None:
        return recorded
    return "deleted" if event is None else "updated"


def rendered(change: Change, event: Versioned | None) -> bytes:
    assert change.event_id is not None  # follow() refuses the records that name none
    read = ChangeRead(
        cursor=cursor.encode(change.seq),
        id=change.event_id,
        kind=kind_now(change.kind, event),
        event=None if event is None else event.event,
    )
    return read.model_dump_json().encode()


async def follow(store: EventStore, after: int, limit: int, *, render: bool = True) -> Followed:
    """Up to ``limit`` changes after the seq ``after``. ChangesGone when the log no longer
    holds the changes right after it (pruned), or holds one that names no event.
    ``render=False``: only where they lead (``next``, ``more``), without their events."""
    batch = await store.changes_since(after, limit)
    if batch.gap:
        raise ChangesGone()
    settled = [c for c in batch.changes if c.seq <= batch.head]
    if any(c.event_id is None for c in settled):
        raise ChangesGone("a bulk write of an earlier release changed events it did not name")
    items: list[tuple[int, bytes]] = []
    if render and settled:
        events = await store.get_many(sorted({c.event_id for c in settled if c.event_id}))
        items = [(c.seq, rendered(c, events.get(c.event_id or ""))) for c in settled]
    full = len(batch.changes) == limit
    if settled and (full or len(settled) < len(batch.changes)):
        reached = settled[-1].seq  # more records after it: the next page starts there
    else:
        reached = max(after, batch.head)  # every record up to the head was read
    return Followed(items, reached, full and len(settled) == len(batch.changes))


def page_body(followed: Followed) -> bytes:
    """GET /api/changes's body: the changes as ChangesPage's JSON, built from their
    rendered bytes (each change is rendered once, for the feed and the streams alike)."""
    changes = b",".join(body for _, body in followed.items)
    more = b"true" if followed.more else b"false"
    return b'{"changes":[%s],"next":"%s","more":%s}' % (
        changes,
        cursor.encode(followed.next).encode(),
        more,
    )
