"""`SqliteEventStore.load_new`, the one-transaction fill of an empty database that `eventapi
import` uses: on a real file, the table ends as row-by-row writes would leave it (every
index and trigger back, the search index complete, one change record), and a load that
fails or finds events already there changes nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from eventapi.events.schemas import EventFields, EventRead, fields_of
from eventapi.storage.sqlite import SqliteEventStore
from tests.store.builders import event, query, stored
from tests.support.poll import eventually


def events(count: int) -> list[EventRead]:
    return [
        stored(
            f"{n:024x}",
            event(
                f"Harbour Festival {n}" if n % 3 == 0 else f"Meetup {n}",
                f"2025-01-{n % 28 + 1:02d}T10:00:00",
                category="Music" if n % 2 else "Tech",
                location="Lisbon",
            ),
        )
        for n in range(count)
    ]


def batches(items: Sequence[EventRead], size: int) -> Iterator[list[EventFields]]:
    for at in range(0, len(items), size):
        yield [fields_of(e) for e in items[at : at + size]]


def schema(path: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    return [tuple(row) for row in rows]


def search_settings(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT k, v FROM events_search_config WHERE k != 'version'"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEventStore]:
    opened = await SqliteEventStore.open(str(tmp_path / "load.db"), 5.0)
    yield opened
    await opened.close()


async def test_a_load_leaves_the_table_as_row_by_row_writes_would(
    store: SqliteEventStore, tmp_path: Path
) -> None:
    path = tmp_path / "load.db"
    before = schema(path)
    head = (await store.changes_since(0, 100)).head
    loaded = events(250)

    assert await store.load_new(batches(loaded, 100)) == 250

    assert schema(path) == before  # every index and trigger is back, as it was
    assert search_settings(path) == {"automerge": 0, "crisismerge": 64}  # as before it
    assert await store.count() == 250
    page = await store.list(query(q="festival", limit=100))
    assert page.total == len([e for e in loaded if "Festival" in e.title])
    assert sorted(e.id for e in page.items) == [e.id for e in loaded if "Festival" in e.title]
    music = await store.list(query(category="music", sort="title", limit=5))
    assert music.total == 125
    # A "created" record for each, in id order (a follower of the log learns of every one);
    # their version: the first of those records.
    log = await store.changes_since(head, 1000)
    assert [(c.event_id, c.kind) for c in log.changes] == [
        (e.id, "created") for e in sorted(loaded, key=lambda e: e.id)
    ]
    version = await store.get_versioned(loaded[0].id)
    assert version is not None
    assert version.version == head + 1
    # The triggers work again: a write after the load is indexed for search.
    await store.create(event("Late Festival"))
    assert (await store.list(query(q="late fest"))).total == 1


async def test_a_load_into_a_store_holding_events_writes_nothing(
    store: SqliteEventStore,
) -> None:
    await store.insert_missing(events(1))

    assert await store.load_new(batches(events(10)[1:], 5)) is None

    assert await store.count() == 1


async def test_a_load_that_fails_halfway_leaves_the_database_as_it_was(
    store: SqliteEventStore, tmp_path: Path
) -> None:
    path = tmp_path / "load.db"
    before = schema(path)

    def failing() -> Iterator[list[EventFields]]:
        yield from batches(events(50), 50)
        raise RuntimeError("the file went away")

    with pytest.raises(RuntimeError, match="went away"):
        await store.load_new(failing())

    assert await store.count() == 0
    assert schema(path) == before  # the indexes and the trigger set aside are back
    assert await store.load_new(batches(events(20), 7)) == 20


def index_segments(path: Path) -> int:
    """Rows of the search index's segment index: at least one per segment."""
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM events_search_idx").fetchone()[0])


async def test_writes_never_merge_the_search_index_the_store_does_in_the_background(
    tmp_path: Path,
) -> None:
    """Each write leaves a segment of the search index; FTS5 is told never to merge them
    in a write (at 1M events such a merge took 20 s), and the store merges them a bounded
    step at a time on its own."""
    path = tmp_path / "merge.db"
    store = await SqliteEventStore.open(str(path), 5.0)
    try:
        assert search_settings(path) == {"automerge": 0, "crisismerge": 64}
        store._merging.cancel()  # the background merging stopped: writes pile segments up
        for n in range(40):
            await store.create(event(f"Festival {n}"))
        piled = index_segments(path)
        assert piled >= 40
        store._merging = asyncio.get_running_loop().create_task(store._merge_search())
        await eventually(  # a bound on the background work, not a timing
            lambda: index_segments(path) <= piled // 4,
            "the search index merged",
            within=30.0,
            step=0.05,
        )
        assert (await store.list(query(q="festival", limit=100))).total == 40
    finally:
        await store.close()
