"""BulkEventStore contract: ``scan`` pages through every event by id, the same way on every
backend (what `eventapi export` relies on)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bson import ObjectId

from eventapi.events.schemas import EventRead
from eventapi.events.store import BulkEventStore
from eventapi.storage.mongo import MongoEventStore
from eventapi.storage.sqlite import SqliteEventStore
from tests.store.builders import create_all, event, stored
from tests.support.backends import open_backend


@pytest.fixture
async def bulk(backend: str, tmp_path: Path) -> AsyncIterator[BulkEventStore]:
    async with open_backend(backend, tmp_path) as store:
        assert isinstance(store, SqliteEventStore | MongoEventStore)
        yield store


async def scan_all(store: BulkEventStore, page: int) -> list[EventRead]:
    found: list[EventRead] = []
    after: str | None = None
    while batch := await store.scan(after, page):
        assert len(batch) <= page
        found += batch
        after = batch[-1].id
    return found


async def test_an_empty_store_scans_to_nothing(bulk: BulkEventStore) -> None:
    assert list(await bulk.scan(None, 10)) == []


async def test_pages_cover_every_event_once_in_id_order(bulk: BulkEventStore) -> None:
    created = await create_all(
        bulk, *(event(f"e{n}", f"2025-01-{n + 1:02d}T10:00:00") for n in range(7))
    )
    chosen = stored("ffffffffffffffffffffffff", event("last", "2025-06-01T10:00:00+02:00"))
    first = stored("000000000000000000000000", event("first", "2024-06-01T10:00:00"))
    await bulk.insert_missing([chosen, first])

    found = await scan_all(bulk, 3)

    assert [e.id for e in found] == sorted(e.id for e in [*created, chosen, first])
    assert found[0] == first
    assert found[-1] == chosen  # an aware date comes back in UTC, as from get()
    for e in found:
        assert await bulk.get(e.id) == e


async def test_a_page_is_at_most_limit_and_after_is_exclusive(bulk: BulkEventStore) -> None:
    created = sorted(
        (await create_all(bulk, *(event(f"e{n}") for n in range(5)))), key=lambda e: e.id
    )

    page = await bulk.scan(created[1].id, 2)

    assert list(page) == created[2:4]
    assert list(await bulk.scan(created[-1].id, 2)) == []


async def test_a_scan_goes_on_after_the_event_it_stopped_at_is_deleted(
    bulk: BulkEventStore,
) -> None:
    created = sorted(
        (await create_all(bulk, *(event(f"e{n}") for n in range(4)))), key=lambda e: e.id
    )
    await bulk.delete(created[1].id)

    assert list(await bulk.scan(created[1].id, 10)) == created[2:]
    assert list(await bulk.scan(str(ObjectId("0" * 24)), 10)) == [created[0], *created[2:]]
