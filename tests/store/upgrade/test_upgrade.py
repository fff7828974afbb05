"""The upgrade loses nothing: a SQLite file and a MongoDB database written by the previous
release's own code (fixtures.py) open under this one with every event, change-log record
and idempotency key as they were; the new fields of old events are null (never invented),
their status scheduled; the store records its schema version, refuses a newer one, and
upgrades once however many stores open the old database at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

import eventapi.storage.mongo
from eventapi.errors import ChangesGone, StoreUnavailable
from eventapi.events.schemas import ORIGINAL_FIELDS, EventCreate, EventQuery, EventRead
from eventapi.events.service import fingerprint
from eventapi.events.store import Claim, EventStore
from eventapi.follow.feed import follow
from eventapi.storage import mongo_schema, sqlite_schema
from eventapi.storage.mongo import MongoEventStore
from eventapi.storage.sqlite import SqliteEventStore
from tests.store.upgrade.fixtures import copy_sqlite, load_mongo, manifest
from tests.support.backends import MONGODB_URL

TIMEOUT = 5.0
NEW_FIELDS = {
    "end": None,
    "timezone": None,
    "status": "scheduled",
    "recurrence": None,
    "exdates": None,
    "created_at": None,
    "updated_at": None,
    "end_utc": None,
}
STORES = ["sqlite", "mongomock", "mongodb"]


@pytest.fixture(autouse=True)
def intents_settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The log's head is its newest record (MongoDB's intents otherwise settle later)."""
    monkeypatch.setattr(eventapi.storage.mongo, "SETTLE_MARGIN", -3600.0)


async def _mongo_database(name: str) -> AsyncIterator[Any]:
    if name == "mongomock":
        from mongomock_motor import AsyncMongoMockClient

        fake: Any = AsyncMongoMockClient(tz_aware=True)
        yield fake["eventapi"]
        return
    if not MONGODB_URL:
        pytest.skip("set EVENTAPI_TEST_MONGODB_URL to run against a real MongoDB server")
    import uuid

    from pymongo import AsyncMongoClient

    real: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(MONGODB_URL, tz_aware=True)
    db_name = f"eventapi_upgrade_{uuid.uuid4().hex[:12]}"
    try:
        yield real[db_name]
    finally:
        await real.drop_database(db_name)
        await real.close()


@pytest.fixture(params=STORES)
async def upgraded(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    """The previous release's database, opened (and so upgraded) by this release."""
    if request.param == "sqlite":
        store = await SqliteEventStore.open(str(copy_sqlite(tmp_path)), TIMEOUT)
        try:
            yield store
        finally:
            await store.close()
        return
    async for database in _mongo_database(request.param):
        await load_mongo(database)
        mongo = MongoEventStore(database["events"], TIMEOUT)
        await mongo.list(_everything())  # the first list runs the upgrade, as open() does
        yield mongo


def _everything() -> EventQuery:
    return EventQuery.model_validate({"limit": 100})


def _recorded(store: EventStore) -> dict[str, Any]:
    """What the manifest says the previous release wrote to this store's kind."""
    return dict(manifest()["stores"][store.backend])


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_every_event_reads_as_the_previous_release_wrote_it(upgraded: EventStore) -> None:
    recorded = _recorded(upgraded)
    assert await upgraded.count() == len(recorded["events"])
    for event_id, before in recorded["events"].items():
        event = await upgraded.get(event_id)
        assert event is not None, event_id
        now = event.model_dump(mode="json")
        assert {key: now[key] for key in before} == before
        # Never invented: a floating date has no instant, an aware one is its own.
        if before["date"].endswith("Z"):
            assert _instant(now["date_utc"]) == _instant(before["date"])
        else:
            assert now["date_utc"] is None
        assert {key: now[key] for key in NEW_FIELDS} == NEW_FIELDS


async def test_no_change_record_is_lost(upgraded: EventStore) -> None:
    recorded = _recorded(upgraded)
    batch = await upgraded.changes_since(0, 10_000)
    assert [(c.seq, c.event_id) for c in batch.changes] == [
        (c["seq"], c["event_id"]) for c in recorded["changes"]
    ]
    assert batch.head == recorded["head_seq"]
    assert not batch.gap
    # The log goes on from there: the next write's seq is the next one.
    after = EventCreate.model_validate({"title": "After", "date": "2026-01-01T00:00:00"})
    saved = await upgraded.create(after)
    assert saved.seq > recorded["head_seq"]


async def test_a_retry_of_an_idempotent_create_replays_after_the_upgrade(
    upgraded: EventStore,
) -> None:
    """The same request again (same key, same body, within a day of the first) replays the
    original answer: the fingerprint of an old body is what it was."""
    recorded = _recorded(upgraded)
    assert recorded["idempotency"]
    for record in recorded["idempotency"]:
        original = EventRead.model_validate_json(record["response"])
        body = EventCreate.model_validate(original.model_dump(include=set(ORIGINAL_FIELDS)))
        assert fingerprint(body) == record["fingerprint"]
        at = record["created_at"] + 60  # a minute after the first: well within its day
        saved = await upgraded.create_once(
            body, Claim(record["scope"], record["key"], record["fingerprint"], at)
        )
        assert saved.replayed
        assert saved.event == original
    assert await upgraded.count() == len(recorded["events"])


async def test_old_events_take_the_new_fields(upgraded: EventStore) -> None:
    recorded = _recorded(upgraded)
    event_id = next(iter(recorded["events"]))
    changes = {"end": None, "status": "cancelled", "timezone": "Europe/London"}
    saved = await upgraded.update(event_id, changes)
    assert saved is not None
    assert saved.event.status == "cancelled"
    assert saved.event.timezone == "Europe/London"
    assert saved.event.updated_at is not None
    assert saved.event.created_at is None  # still unknown: never invented


# --- the schema version -------------------------------------------------------------------


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def test_sqlite_records_its_schema_version(tmp_path: Path) -> None:
    path = copy_sqlite(tmp_path)
    assert _user_version(path) == 0
    store = await SqliteEventStore.open(str(path), TIMEOUT)
    await store.close()
    assert _user_version(path) == sqlite_schema.SCHEMA_VERSION


async def test_sqlite_refuses_a_newer_database_in_one_line(tmp_path: Path) -> None:
    path = copy_sqlite(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {sqlite_schema.SCHEMA_VERSION + 1}")
    with pytest.raises(StoreUnavailable) as refused:
        await SqliteEventStore.open(str(path), TIMEOUT)
    assert "newer eventapi" in refused.value.detail
    assert "\n" not in refused.value.detail
    assert _user_version(path) == sqlite_schema.SCHEMA_VERSION + 1  # untouched


async def test_sqlite_stores_opening_an_old_database_at_once_upgrade_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every store read the old version before any upgraded it (the interleaving that
    matters, forced): all go for the write lock, and only the first upgrades."""
    path = str(copy_sqlite(tmp_path))
    applied: list[list[int]] = []
    upgrade = sqlite_schema.upgrade

    def counted(conn: sqlite3.Connection) -> list[int]:
        done = upgrade(conn)
        applied.append(done)
        return done

    monkeypatch.setattr(sqlite_schema, "version", lambda conn: 0)
    monkeypatch.setattr(sqlite_schema, "upgrade", counted)
    stores = await asyncio.gather(*(SqliteEventStore.open(path, TIMEOUT) for _ in range(4)))
    for store in stores:
        await store.close()
    every_version = list(range(2, sqlite_schema.SCHEMA_VERSION + 1))
    assert sorted(applied) == [[], [], [], every_version]


async def test_mongodb_records_its_schema_version_and_refuses_a_newer_one() -> None:
    async for database in _mongo_database("mongomock"):
        await load_mongo(database)
        store = MongoEventStore(database["events"], TIMEOUT)
        await store.list(_everything())
        schema = await database["meta"].find_one({"_id": "schema"})
        assert schema["version"] == mongo_schema.SCHEMA_VERSION
        await database["meta"].update_one({"_id": "schema"}, {"$set": {"version": 99}})
        with pytest.raises(mongo_schema.NewerSchema) as refused:
            await mongo_schema.ensure(database)
        assert "newer eventapi" in refused.value.detail


async def test_mongodb_stores_opening_an_old_database_at_once_upgrade_it_once() -> None:
    async for database in _mongo_database("mongomock"):
        await load_mongo(database)
        stores = [MongoEventStore(database["events"], TIMEOUT) for _ in range(4)]
        outcomes = await asyncio.gather(
            *(store.list(_everything()) for store in stores), return_exceptions=True
        )
        # Those that found the upgrade under way answered 503; the next try finds it done.
        for outcome in outcomes:
            assert not isinstance(outcome, BaseException) or isinstance(outcome, StoreUnavailable)
        for store in stores:
            await store.list(_everything())
        schema = await database["meta"].find_one({"_id": "schema"})
        assert [u["to"] for u in schema["upgrades"]] == [mongo_schema.SCHEMA_VERSION]
        organizers = [d async for d in database["events"].find({"organizer": {"$ne": None}})]
        assert organizers
        assert all(d["organizer_key"] == d["organizer"].casefold() for d in organizers)


async def test_the_feed_tells_the_records_of_the_release_before(upgraded: EventStore) -> None:
    """Its records say neither how nor when: a follower is told `updated`, or `deleted` once
    the event is gone; through a record that named no event (its bulk writes), it must sync
    again (410)."""
    recorded = _recorded(upgraded)["changes"]
    bulk = [c["seq"] for c in recorded if c["event_id"] is None]
    after = max(bulk, default=0)

    followed = await follow(upgraded, after, 1000)

    expected = []
    for change in recorded:
        if change["seq"] > after:
            now = await upgraded.get(change["event_id"])
            expected.append((change["event_id"], "deleted" if now is None else "updated"))
    given = [orjson.loads(body) for _, body in followed.items]
    assert [(c["id"], c["kind"]) for c in given] == expected
    assert len(expected) > 10
    if bulk:
        with pytest.raises(ChangesGone):
            await follow(upgraded, 0, 1000)
