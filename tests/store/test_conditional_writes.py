"""EventStore contract: versions and conditional writes (the store's half of If-Match).

Every event has a version, the seq of the change record of its last write; ``update`` and
``delete`` with ``expected_version`` apply only if the event is still at that version, in
one atomic step, else raise VersionConflict carrying the event as it is now. Every test
runs against every backend; the last ones open a second handle on the same database, as a
second server process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from eventapi.events.store import EventStore, VersionConflict, Versioned
from eventapi.storage.mongo import MongoEventStore
from eventapi.storage.sqlite import SqliteEventStore
from tests.store.builders import changes, event, stored
from tests.support.backends import two_handles

TIMEOUT = 2.0


async def versioned(store: EventStore, event_id: str) -> Versioned:
    current = await store.get_versioned(event_id)
    assert current is not None
    return current


# --- versions -----------------------------------------------------------------------------


async def test_get_versioned_is_the_event_at_the_seq_of_its_last_write(store: EventStore) -> None:
    created = await store.create(event("Gala", location="Paris"))

    current = await versioned(store, created.event.id)

    assert current == Versioned(created.event, created.seq)
    assert current.event == await store.get(created.event.id)


async def test_get_versioned_of_an_unknown_id_is_none(store: EventStore) -> None:
    await store.create(event())

    assert await store.get_versioned(str(ObjectId())) is None


async def test_every_write_gives_the_event_a_new_version(store: EventStore) -> None:
    created = await store.create(event("v0"))
    seen = [created.seq]

    for n in range(1, 4):
        saved = await store.update(created.event.id, changes(title=f"v{n}"))
        assert saved is not None
        current = await versioned(store, created.event.id)
        assert current == Versioned(saved.event, saved.seq)
        seen.append(current.version)

    assert len(set(seen)) == len(seen)


async def test_an_update_with_no_changes_keeps_the_version(store: EventStore) -> None:
    created = await store.create(event())

    saved = await store.update(created.event.id, {})

    assert saved is not None
    assert saved.seq == 0
    assert (await versioned(store, created.event.id)).version == created.seq


# --- conditional update -------------------------------------------------------------------


async def test_update_at_the_expected_version_applies(store: EventStore) -> None:
    created = await store.create(event("Old"))

    saved = await store.update(created.event.id, changes(title="New"), expected_version=created.seq)

    assert saved is not None
    assert saved.event.title == "New"
    assert await versioned(store, created.event.id) == Versioned(saved.event, saved.seq)


async def test_update_at_another_version_conflicts_and_writes_nothing(store: EventStore) -> None:
    created = await store.create(event("v0"))
    other = await store.update(created.event.id, changes(title="v1"))
    assert other is not None

    with pytest.raises(VersionConflict) as raised:
        await store.update(created.event.id, changes(title="lost"), expected_version=created.seq)

    now = Versioned(other.event, other.seq)
    assert raised.value.current == now
    assert await versioned(store, created.event.id) == now


async def test_update_with_no_changes_still_checks_the_version(store: EventStore) -> None:
    created = await store.create(event("v0"))
    other = await store.update(created.event.id, changes(title="v1"))
    assert other is not None

    with pytest.raises(VersionConflict) as raised:
        await store.update(created.event.id, {}, expected_version=created.seq)
    assert raised.value.current == Versioned(other.event, other.seq)

    same = await store.update(created.event.id, {}, expected_version=other.seq)
    assert same is not None
    assert (same.event, same.seq) == (other.event, 0)


@pytest.mark.parametrize("fields", [{"title": "New"}, {}], ids=["changes", "no-changes"])
async def test_conditional_update_of_an_absent_event_is_none(
    store: EventStore, fields: dict[str, Any]
) -> None:
    created = await store.create(event())
    assert await store.delete(created.event.id) is not None

    assert await store.update(created.event.id, fields, expected_version=created.seq) is None
    assert await store.update(str(ObjectId()), fields, expected_version=0) is None


async def test_of_concurrent_updates_at_one_version_exactly_one_applies(
    store: EventStore,
) -> None:
    created = await store.create(event("v0"))

    async def attempt(n: int) -> str:
        try:
            await store.update(
                created.event.id, changes(title=f"w{n}"), expected_version=created.seq
            )
        except VersionConflict:
            return "conflict"
        return f"w{n}"

    outcomes = await asyncio.gather(*(attempt(n) for n in range(8)))

    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1
    assert (await versioned(store, created.event.id)).event.title == winners[0]


# --- conditional delete -------------------------------------------------------------------


async def test_delete_at_the_expected_version_applies(store: EventStore) -> None:
    created = await store.create(event())

    seq = await store.delete(created.event.id, expected_version=created.seq)

    assert seq is not None
    assert seq > created.seq
    assert await store.get_versioned(created.event.id) is None


async def test_delete_at_another_version_conflicts_and_deletes_nothing(store: EventStore) -> None:
    created = await store.create(event("v0"))
    other = await store.update(created.event.id, changes(title="v1"))
    assert other is not None

    with pytest.raises(VersionConflict) as raised:
        await store.delete(created.event.id, expected_version=created.seq)

    now = Versioned(other.event, other.seq)
    assert raised.value.current == now
    assert await versioned(store, created.event.id) == now


async def test_conditional_delete_of_an_absent_event_is_none(store: EventStore) -> None:
    assert await store.delete(str(ObjectId()), expected_version=0) is None


# --- versions never come back -------------------------------------------------------------


async def test_an_event_inserted_again_under_its_id_has_a_new_version(store: EventStore) -> None:
    created = await store.create(event("First life"))
    await store.delete(created.event.id)

    assert await store.insert_missing([stored(created.event.id, event("Second life"))]) == 1

    again = await versioned(store, created.event.id)
    assert again.event.title == "Second life"
    assert again.version not in (0, created.seq)
    with pytest.raises(VersionConflict):
        await store.update(created.event.id, changes(title="x"), expected_version=created.seq)


async def test_insert_missing_gives_each_new_event_a_version(store: EventStore) -> None:
    kept = await store.create(event("Kept"))
    new_id = str(ObjectId())

    await store.insert_missing([stored(kept.event.id, event("Ignored")), stored(new_id, event())])

    assert (await versioned(store, kept.event.id)).version == kept.seq
    version = (await versioned(store, new_id)).version
    assert version > kept.seq
    saved = await store.update(new_id, changes(title="Edited"), expected_version=version)
    assert saved is not None


# --- two handles on one database (two server processes) -----------------------------------


async def test_a_write_through_another_handle_is_a_conflict_here(
    backend: str, tmp_path: Path
) -> None:
    async with two_handles(backend, tmp_path) as (here, there):
        created = await here.create(event("v0"))
        read_here = await versioned(here, created.event.id)

        elsewhere = await there.update(created.event.id, changes(title="there"))
        assert elsewhere is not None

        with pytest.raises(VersionConflict) as raised:
            await here.update(
                created.event.id, changes(title="here"), expected_version=read_here.version
            )
        assert raised.value.current == Versioned(elsewhere.event, elsewhere.seq)
        assert await versioned(there, created.event.id) == raised.value.current


# --- databases from before versions -------------------------------------------------------

OLD_SQLITE_SCHEMA = """
CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    title        TEXT NOT NULL,
    description  TEXT,
    date_utc     TEXT NOT NULL,
    date_naive   INTEGER NOT NULL,
    location     TEXT,
    category     TEXT,
    category_key TEXT,
    organizer    TEXT
);
CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT);
"""
OLD_ID = "68ed254e36d0233aa05afbe9"


def make_old_sqlite_database(path: Path) -> None:
    """A database file as the store made it before it kept versions, with one event."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(OLD_SQLITE_SCHEMA)
        conn.execute(
            "INSERT INTO events (id, title, date_utc, date_naive) VALUES (?, ?, ?, ?)",
            (OLD_ID, "Old", "2025-06-01T12:00:00.000", 1),
        )
        conn.commit()


async def test_an_old_sqlite_database_gets_versions_when_opened_twice_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    make_old_sqlite_database(path)

    one, two = await asyncio.gather(
        SqliteEventStore.open(str(path), TIMEOUT), SqliteEventStore.open(str(path), TIMEOUT)
    )
    try:
        assert (await versioned(one, OLD_ID)).version == 0
        saved = await two.update(OLD_ID, changes(title="New"), expected_version=0)
        assert saved is not None
        with pytest.raises(VersionConflict):
            await one.update(OLD_ID, changes(title="Lost"), expected_version=0)
        created = await one.create(event("After"))
        assert (await versioned(two, created.event.id)).version == created.seq
    finally:
        await one.close()
        await two.close()


async def test_an_old_mongodb_document_is_at_version_zero() -> None:
    from mongomock_motor import AsyncMongoMockClient

    fake: Any = AsyncMongoMockClient(tz_aware=True)
    collection = fake["eventapi"]["events"]
    store = MongoEventStore(collection, TIMEOUT)
    created = await store.create(event("Old"))
    # As written before versions were kept: no version field at all.
    await collection.update_one({"_id": ObjectId(created.event.id)}, {"$unset": {"version": ""}})

    assert await versioned(store, created.event.id) == Versioned(created.event, 0)
    with pytest.raises(VersionConflict):
        await store.delete(created.event.id, expected_version=created.seq)
    saved = await store.update(created.event.id, changes(title="New"), expected_version=0)
    assert saved is not None
    assert (await versioned(store, created.event.id)).version == saved.seq
