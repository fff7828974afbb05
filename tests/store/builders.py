"""Inputs for the EventStore contract suite, built the way the service builds them.

The store never sees raw client data: values are validated and normalised by the pydantic
schemas first, so every helper here goes through EventCreate / EventUpdate / EventQuery.
"""

from __future__ import annotations

import re
from datetime import datetime

from eventapi.events.schemas import EventCreate, EventPage, EventQuery, EventRead, EventUpdate
from eventapi.events.store import EventStore

OBJECT_ID = re.compile(r"[0-9a-f]{24}")


def event(
    title: str = "Event", date: str | datetime = "2025-01-01T10:00:00", **fields: object
) -> EventCreate:
    return EventCreate.model_validate({"title": title, "date": date, **fields})


def changes(**fields: object) -> dict[str, object]:
    """What PATCH hands the store: only the fields that were sent."""
    return EventUpdate.model_validate(fields).changes()


def query(**fields: object) -> EventQuery:
    return EventQuery.model_validate(fields)


def stored(event_id: str, data: EventCreate) -> EventRead:
    """An event with a chosen id, as insert_missing takes it."""
    return EventRead(id=event_id, **data.model_dump())


async def create_all(store: EventStore, *events: EventCreate) -> list[EventRead]:
    return [(await store.create(e)).event for e in events]


async def everything(store: EventStore, **fields: object) -> EventPage:
    """One page holding every match (the suites never store more than 100 events)."""
    page = await store.list(query(limit=100, **fields))
    assert len(page.items) == page.total, "more matches than one page can hold"
    return page


def ids(page: EventPage) -> list[str]:
    return [e.id for e in page.items]


def titles(page: EventPage) -> list[str]:
    return [e.title for e in page.items]
