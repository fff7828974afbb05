"""EventStore contract, change-log part: every acknowledged write is in the log, under a
seq that rises in commit order, and ``changes_since`` reads it back the same way on every
backend. This is the store's half of "no invalidation is ever lost" (eventapi/changes.py).
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import eventapi.changes
import eventapi.storage.mongo
import eventapi.storage.sqlite
from eventapi.changes import ChangeBatch, Retention
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


async def test_bulk_writes_log_a_change_of_each_event_they_write(store: EventStore) -> None:
    ids = ["0123456789abcdef01234567", "0123456789abcdef01234568"]
    inserted = await store.insert_missing([stored(i, event("x")) for i in ids])
    assert inserted == 2
    after_insert = (await log(store)).head
    assert (await store.delete_all()) == 2

    batch = await log(store)

    assert [(c.event_id, c.kind) for c in batch.changes][-4:] == [
        (ids[0], "created"),
        (ids[1], "created"),
        (ids[0], "deleted"),
        (ids[1], "deleted"),
    ]
    assert batch.head > after_insert


async def test_every_write_logs_how_it_changed_its_event(store: EventStore) -> None:
    saved = await store.create(event("a"))
    await store.update(saved.event.id, {"title": "b"})
    await store.delete(saved.event.id)

    batch = await log(store)

    assert [(c.event_id, c.kind) for c in batch.changes][-3:] == [
        (saved.event.id, "created"),
        (saved.event.id, "updated"),
        (saved.event.id, "deleted"),
    ]


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
    prune_often(monkeypatch, store, Retention(seconds=0))
    for n in range(8):
        await store.create(event(f"e{n}"))

    recent = await log(store, after=(await log(store)).head - 2)
    behind = await log(store, after=0)

    assert not recent.gap
    assert behind.gap
    assert behind.head == recent.head


def prune_often(monkeypatch: pytest.MonkeyPatch, store: EventStore, keep: Retention) -> None:
    """Prune every 2 records, keep the newest 3 whatever ``keep`` says."""
    monkeypatch.setattr(eventapi.changes, "RELAY_FLOOR", 3)
    for module in (eventapi.storage.sqlite, eventapi.storage.mongo):
        monkeypatch.setattr(module, "_PRUNE_EVERY", 2)
    monkeypatch.setattr(store, "_keep", keep)


async def test_records_younger_than_the_retention_are_kept_past_the_relay_floor(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    prune_often(monkeypatch, store, Retention(seconds=3600))
    for n in range(8):
        await store.create(event(f"e{n}"))

    assert not (await log(store, after=0)).gap


async def test_the_retention_keeps_at_most_its_number_of_records(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    prune_often(monkeypatch, store, Retention(seconds=3600, records=5))
    for n in range(10):
        await store.create(event(f"e{n}"))
    head = (await log(store)).head

    assert (await log(store, after=0)).gap
    assert not (await log(store, after=head - 5)).gap


async def test_an_intent_whose_write_has_not_finished_holds_the_head_below_it(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a record is written before its write (MongoDB), the head stays below it until
    its write is done, or until the store timeout says it surely ended (its writer died in
    between); where it commits with the write (SQLite), a write moves the head at once."""
    done = await store.create(event("done"))
    assert (await log(store)).head == done.seq
    if not isinstance(store, eventapi.storage.mongo.MongoEventStore):
        return
    monkeypatch.setattr(eventapi.storage.mongo, "SETTLE_MARGIN", 1.0)
    an_hour_ago = SimpleNamespace(time=lambda: time.time() - 3600)
    with monkeypatch.context() as clock:
        clock.setattr(eventapi.storage.mongo, "time", an_hour_ago)
        died = await store._intent(done.event.id, "updated")  # its writer died an hour ago
    pending = await store._intent(done.event.id, "updated")  # its write is under way
    after = await store.create(event("after"))

    batch = await log(store)

    assert [c.seq for c in batch.changes] == [done.seq, died, pending, after.seq]
    assert batch.head == pending - 1
    assert await store.head() == pending - 1


async def test_a_bulk_write_leaves_the_log_within_its_bound(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    prune_often(monkeypatch, store, Retention(seconds=3600, records=5))
    ids = [f"0123456789abcdef012345{n:02d}" for n in range(12)]
    await store.insert_missing([stored(i, event("x")) for i in ids])
    assert await store.delete_all() == 12

    kept = await log(store, after=0)

    assert kept.gap
    assert len(kept.changes) <= 5
    assert [c.kind for c in kept.changes][-1] == "deleted"
