"""EventStore contract, change-log part: every acknowledged write is in the log, under a
seq that rises in commit order, and ``changes_since`` reads it back the same way on every
backend. This is the store's half of "no invalidation is ever lost" (eventapi/changes.py).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import eventapi.storage.mongo
import eventapi.storage.sqlite
from eventapi.changes import ChangeBatch
from eventapi.events.store import EventStore
from tests.store.builders import changes, event, stored

LOTS = 100


@pytest.fixture(autouse=True)
def intents_settle_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """MongoDB's intents settle after the store timeout; here at once, so every backend's
    head is its newest record (the settling itself is tested below)."""
    monkeypatch.setattr(eventapi.storage.mongo, "SETTLE_MARGIN", -3600.0)


async def log(store: EventStore, after: int = 0) -> ChangeBatch:
    return await store.changes_since(after, LOTS)


async def test_a_new_store_has_an_empty_log(store: EventStore) -> None:
    batch = await log(store)

    assert (list(batch.changes), batch.head, batch.gap) == ([], 0, False)


async def test_every_write_is_logged_under_the_seq_it_returns(store: EventStore) -> None:
    created = await store.create(event("a"))
    event_id = created.event.id
    updated = await store.update(event_id, changes(title="b"))
    assert updated is not None
    deleted = await store.delete(event_id)
    assert deleted is not None

    batch = await log(store)

    seqs = [created.seq, updated.seq, deleted]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 3
    logged = {c.seq: c.event_id for c in batch.changes}
    assert all(logged[seq] == event_id for seq in seqs)
    assert batch.head == max(logged)


async def test_an_update_with_nothing_to_change_writes_nothing(store: EventStore) -> None:
    created = await store.create(event("a"))

    unchanged = await store.update(created.event.id, {})

    assert unchanged is not None
    assert unchanged.seq == 0
    assert (await log(store)).head == created.seq


async def test_bulk_writes_log_a_change_to_everything(store: EventStore) -> None:
    inserted = await store.insert_missing([stored("0123456789abcdef01234567", event("x"))])
    assert inserted == 1
    after_insert = (await log(store)).head
    assert (await store.delete_all()) == 1

    batch = await log(store)

    assert [c.event_id for c in batch.changes][-2:] == [None, None]
    assert batch.head > after_insert


async def test_changes_since_returns_only_later_changes_oldest_first(store: EventStore) -> None:
    for n in range(5):
        await store.create(event(f"e{n}"))
    everything = await log(store)
    seqs = [c.seq for c in everything.changes]
    assert seqs == sorted(seqs)

    later = await store.changes_since(seqs[1], 2)

    assert [c.seq for c in later.changes] == seqs[2:4]
    assert later.head == everything.head
    assert not later.gap


async def test_a_reader_behind_the_pruned_records_is_told_of_the_gap(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (eventapi.storage.sqlite, eventapi.storage.mongo):
        monkeypatch.setattr(module, "KEEP_CHANGES", 3)
        monkeypatch.setattr(module, "_PRUNE_EVERY", 2)
    for n in range(8):
        await store.create(event(f"e{n}"))

    recent = await log(store, after=(await log(store)).head - 2)
    behind = await log(store, after=0)

    assert not recent.gap
    assert behind.gap
    assert behind.head == recent.head


async def test_an_intent_not_yet_settled_holds_the_head_below_it(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a record is written before its write (MongoDB), the head stays below it until
    the write has surely finished; where it commits with the write (SQLite), at once."""
    monkeypatch.setattr(eventapi.storage.mongo, "SETTLE_MARGIN", 1.0)
    an_hour_ago = SimpleNamespace(time=lambda: time.time() - 3600)
    with monkeypatch.context() as clock:
        clock.setattr(eventapi.storage.mongo, "time", an_hour_ago)
        settled = await store.create(event("old"))
    fresh = await store.create(event("new"))

    batch = await log(store)

    assert [c.seq for c in batch.changes] == [settled.seq, fresh.seq]
    if store.backend == "sqlite":
        assert batch.head == fresh.seq
    else:
        assert batch.head == fresh.seq - 1
