"""EventStore contract: ``create_once``, the store's half of ``Idempotency-Key``.

Per (scope, key) within IDEMPOTENCY_TTL, at most one event is created: a repeat with the
same fingerprint returns the event as first created (``replayed``), another fingerprint is
IdempotencyKeyReused. The record is in the database, so a second handle on it (another
process, or the same one after a restart) sees it too. Every test runs on every backend;
the MongoDB-only part (records "in flight", taken over once their attempt surely ended)
is at the end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from eventapi.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from eventapi.events.schemas import EventRead
from eventapi.events.store import IDEMPOTENCY_TTL, Claim, EventStore
from eventapi.storage.mongo import SETTLE_MARGIN, MongoEventStore
from eventapi.storage.sqlite import SqliteEventStore
from tests.store.builders import changes, event
from tests.support.backends import two_handles

TIMEOUT = 2.0
SCOPE = "a" * 64


def claim(
    key: str = "key-1", fingerprint: str = "f1", *, scope: str = SCOPE, at: float = 0
) -> Claim:
    return Claim(scope, key, fingerprint, at or time.time())


async def test_the_first_create_once_creates(store: EventStore) -> None:
    saved = await store.create_once(event("Gala"), claim())

    assert not saved.replayed
    assert saved.seq > 0
    assert await store.get(saved.event.id) == saved.event
    assert await store.count() == 1


async def test_a_repeat_creates_nothing_and_returns_the_first_event(store: EventStore) -> None:
    first = await store.create_once(event("Gala"), claim())

    again = await store.create_once(event("Gala"), claim())

    assert again.replayed
    assert again.seq == 0
    assert again.event == first.event
    assert await store.count() == 1


async def test_another_fingerprint_with_the_key_is_refused(store: EventStore) -> None:
    await store.create_once(event("Gala"), claim(fingerprint="f1"))

    with pytest.raises(IdempotencyKeyReused):
        await store.create_once(event("Other"), claim(fingerprint="f2"))

    assert await store.count() == 1


async def test_keys_are_per_scope(store: EventStore) -> None:
    one = await store.create_once(event("Gala"), claim(scope="a" * 64))
    two = await store.create_once(event("Gala"), claim(scope="b" * 64))
    other_key = await store.create_once(event("Gala"), claim("key-2"))

    assert not two.replayed
    assert not other_key.replayed
    assert len({one.event.id, two.event.id, other_key.event.id}) == 3
    assert await store.count() == 3


async def test_a_repeat_returns_the_event_as_created_even_if_changed_or_gone(
    store: EventStore,
) -> None:
    first = await store.create_once(event("Gala"), claim("changed"))
    gone = await store.create_once(event("Gone"), claim("deleted"))
    await store.update(first.event.id, changes(title="Renamed"))
    await store.delete(gone.event.id)

    assert (await store.create_once(event("Gala"), claim("changed"))).event == first.event
    assert (await store.create_once(event("Gone"), claim("deleted"))).event == gone.event
    assert await store.count() == 1


async def test_a_record_older_than_the_ttl_is_forgotten(store: EventStore) -> None:
    now = time.time()
    old = await store.create_once(event("Gala"), claim(at=now - IDEMPOTENCY_TTL - 60))

    new = await store.create_once(event("Other"), claim(fingerprint="f2", at=now))

    assert not new.replayed
    assert new.event.id != old.event.id
    assert await store.count() == 2


async def test_a_record_younger_than_the_ttl_is_kept(store: EventStore) -> None:
    now = time.time()
    first = await store.create_once(event("Gala"), claim(at=now - IDEMPOTENCY_TTL + 60))

    again = await store.create_once(event("Gala"), claim(at=now))

    assert again.replayed
    assert again.event == first.event


async def test_concurrent_repeats_create_one_event(store: EventStore) -> None:
    results = await asyncio.gather(
        *(store.create_once(event("Gala"), claim()) for _ in range(8)), return_exceptions=True
    )

    created = [r for r in results if not isinstance(r, BaseException) and not r.replayed]
    assert len(created) == 1
    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, IdempotencyKeyInFlight)  # MongoDB's three steps
        else:
            assert result.event == created[0].event
    assert await store.count() == 1


async def test_another_handle_on_the_database_replays(backend: str, tmp_path: Path) -> None:
    async with two_handles(backend, tmp_path) as (here, there):
        first = await here.create_once(event("Gala"), claim())

        again = await there.create_once(event("Gala"), claim())
        with pytest.raises(IdempotencyKeyReused):
            await there.create_once(event("Other"), claim(fingerprint="f2"))

        assert again.replayed
        assert again.event == first.event
        assert await there.count() == 1


async def test_the_record_survives_closing_the_store(tmp_path: Path) -> None:
    path = str(tmp_path / "restart.db")
    before = await SqliteEventStore.open(path, TIMEOUT)
    first = await before.create_once(event("Gala"), claim())
    await before.close()

    after = await SqliteEventStore.open(path, TIMEOUT)
    try:
        again = await after.create_once(event("Gala"), claim())
        assert again.replayed
        assert again.event == first.event
        assert await after.count() == 1
    finally:
        await after.close()


# --- MongoDB: records in flight ------------------------------------------------------------


@pytest.fixture
def mongo() -> MongoEventStore:
    from mongomock_motor import AsyncMongoMockClient

    fake: Any = AsyncMongoMockClient(tz_aware=True)
    return MongoEventStore(fake["eventapi"]["events"], TIMEOUT)


async def in_flight(store: MongoEventStore, at: float, event_id: ObjectId) -> None:
    """The record an attempt leaves when it dies after claiming the key."""
    keys = store._events.database["idempotency"]
    await keys.insert_one(
        {
            "_id": f"{SCOPE}/key-1",
            "fingerprint": "f1",
            "state": "in-flight",
            "event_id": event_id,
            "created_at": at,
        }
    )


async def test_a_key_in_flight_is_refused(mongo: MongoEventStore) -> None:
    await in_flight(mongo, time.time(), ObjectId())

    with pytest.raises(IdempotencyKeyInFlight):
        await mongo.create_once(event("Gala"), claim())
    with pytest.raises(IdempotencyKeyReused):
        await mongo.create_once(event("Gala"), claim(fingerprint="f2"))
    assert await mongo.count() == 0


async def test_a_settled_attempt_is_taken_over_with_its_event_id(mongo: MongoEventStore) -> None:
    planned = ObjectId()
    await in_flight(mongo, time.time() - TIMEOUT - SETTLE_MARGIN - 1, planned)

    saved = await mongo.create_once(event("Gala"), claim())
    again = await mongo.create_once(event("Gala"), claim())

    assert not saved.replayed
    assert saved.event.id == str(planned)
    assert again.replayed
    assert again.event == saved.event
    assert await mongo.count() == 1


async def test_a_taken_over_attempt_that_had_inserted_its_event_adds_none(
    mongo: MongoEventStore,
) -> None:
    planned = ObjectId()
    await in_flight(mongo, time.time() - TIMEOUT - SETTLE_MARGIN - 1, planned)
    await mongo._events.insert_one({"_id": planned, "title": "Gala", "version": 1})

    saved = await mongo.create_once(event("Gala"), claim())

    assert saved.event.id == str(planned)
    assert await mongo.count() == 1
    current = await mongo.get_versioned(str(planned))
    assert current is not None
    assert current.version == saved.seq


async def test_a_take_over_lost_to_another_retry_looks_again(
    mongo: MongoEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await in_flight(mongo, time.time() - TIMEOUT - SETTLE_MARGIN - 1, ObjectId())
    keys = mongo._keys
    real = keys.find_one_and_update
    lost = 0

    async def lose_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal lost
        if lost:
            return await real(*args, **kwargs)
        lost += 1
        # Another retry takes the record over first (its attempt is now in flight).
        await keys.update_one({"_id": f"{SCOPE}/key-1"}, {"$set": {"created_at": time.time()}})
        return None

    monkeypatch.setattr(keys, "find_one_and_update", lose_once)

    with pytest.raises(IdempotencyKeyInFlight):
        await mongo.create_once(event("Gala"), claim())
    assert lost == 1


async def test_a_record_deleted_between_insert_and_read_is_claimed_again(
    mongo: MongoEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await in_flight(mongo, time.time(), ObjectId())
    keys = mongo._keys
    real = keys.find_one

    async def expired_meanwhile(*args: Any, **kwargs: Any) -> Any:
        await keys.delete_many({})
        return await real(*args, **kwargs)

    monkeypatch.setattr(keys, "find_one", expired_meanwhile)

    saved = await mongo.create_once(event("Gala"), claim())

    assert not saved.replayed
    assert await mongo.count() == 1


async def test_expired_records_are_pruned_now_and_then(mongo: MongoEventStore) -> None:
    now = time.time()
    await mongo.create_once(event("Old"), claim("old", at=now - IDEMPOTENCY_TTL - 60))
    changes_log = mongo._changes
    newest = await changes_log.find_one({}, sort=[("_id", -1)])
    assert newest is not None
    await changes_log.insert_one({"_id": 999, "event_id": None, "at": now})  # next seq: 1000

    await mongo.create_once(event("New"), claim("new", at=now))

    assert await mongo._keys.count_documents({}) == 1


async def test_the_created_event_is_the_one_read_back(store: EventStore) -> None:
    saved = await store.create_once(event("Gala", location="Paris"), claim())

    assert isinstance(saved.event, EventRead)
    assert saved.event == await store.get(saved.event.id)
