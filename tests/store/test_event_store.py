"""EventStore contract, part 1: single-event reads and writes, the date rule, bulk calls.

Every test runs against every backend through the parametrised ``store`` fixture.
Listing, filtering and paging are in test_event_store_list.py; the property test comparing
``list`` with a reference implementation is in test_event_store_property.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from eventapi.events.store import EventStore
from tests.store.builders import (
    OBJECT_ID,
    changes,
    create_all,
    event,
    everything,
    ids,
    stored,
)

FULL = {
    "title": "Jazz Night",
    "description": "Live quartet",
    "date": "2025-06-01T19:30:00",
    "location": "Blue Note, NYC",
    "category": "Music",
    "organizer": "Jazz Society",
}
OPTIONAL = ("description", "location", "category", "organizer")


def unknown_id() -> str:
    """A well-formed id that no store holds (ObjectIds are unique per process)."""
    return str(ObjectId())


# --- create / get -------------------------------------------------------------------------


async def test_create_then_get_round_trips_every_field(store: EventStore) -> None:
    data = event(**FULL)

    created = (await store.create(data)).event

    assert OBJECT_ID.fullmatch(created.id)
    stamps = {"created_at", "updated_at", "date_utc", "end_utc"}
    assert created.model_dump(exclude={"id", *stamps}) == data.model_dump()
    assert created.created_at is not None
    assert created.created_at == created.updated_at
    assert await store.get(created.id) == created


async def test_optional_fields_left_out_come_back_as_none(store: EventStore) -> None:
    created = (await store.create(event("Bare", "2025-06-01T19:30:00"))).event

    fetched = await store.get(created.id)

    assert fetched is not None
    assert (fetched.title, fetched.date) == ("Bare", datetime(2025, 6, 1, 19, 30))
    assert all(getattr(fetched, name) is None for name in OPTIONAL)


async def test_create_assigns_a_fresh_id_each_time(store: EventStore) -> None:
    same = event(**FULL)

    created = await create_all(store, same, same, same)

    assert len({e.id for e in created}) == 3
    assert all(OBJECT_ID.fullmatch(e.id) for e in created)
    assert await store.count() == 3


async def test_get_of_an_unknown_id_is_none(store: EventStore) -> None:
    await store.create(event(**FULL))

    assert await store.get(unknown_id()) is None


# --- update -------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(store: EventStore) -> None:
    original = (await store.create(event(**FULL))).event

    updated = await store.update(original.id, changes(title="Blues Night", location="Chicago"))

    assert updated is not None
    stamp = updated.event.updated_at
    assert stamp is not None
    assert original.updated_at is not None
    assert stamp > original.updated_at  # every write moves it on, even within 1 ms
    changed = {"title": "Blues Night", "location": "Chicago", "updated_at": stamp}
    expected = original.model_copy(update=changed)
    assert updated.event == expected
    assert await store.get(original.id) == expected


@pytest.mark.parametrize("name", OPTIONAL)
async def test_update_with_none_clears_an_optional_field(store: EventStore, name: str) -> None:
    original = (await store.create(event(**FULL))).event

    updated = await store.update(original.id, changes(**{name: None}))

    assert updated is not None
    expected = original.model_copy(update={name: None, "updated_at": updated.event.updated_at})
    assert updated.event == expected
    assert await store.get(original.id) == expected


async def test_changing_the_category_changes_category_filtering(store: EventStore) -> None:
    moved, _ = await create_all(
        store, event("Moved", category="Music"), event("Stays", category="Music")
    )

    await store.update(moved.id, changes(category="Sports"))

    assert ids(await everything(store, category="sports")) == [moved.id]
    assert moved.id not in ids(await everything(store, category="music"))
    assert (await everything(store, category="music")).total == 1

    await store.update(moved.id, changes(category=None))

    assert (await everything(store, category="sports")).total == 0


async def test_changing_the_date_changes_date_ordering(store: EventStore) -> None:
    first, second, third = await create_all(
        store,
        event("first", "2025-01-01T10:00:00"),
        event("second", "2025-01-02T10:00:00"),
        event("third", "2025-01-03T10:00:00"),
    )
    assert ids(await everything(store, sort="date")) == [first.id, second.id, third.id]

    await store.update(first.id, changes(date="2025-01-04T10:00:00"))

    assert ids(await everything(store, sort="date")) == [second.id, third.id, first.id]
    assert ids(await everything(store, date_from="2025-01-04T00:00:00")) == [first.id]


async def test_update_of_the_date_applies_the_date_rule(store: EventStore) -> None:
    naive = (await store.create(event(date="2025-01-01T10:00:00"))).event
    aware = (await store.create(event(date="2025-01-01T10:00:00Z"))).event

    saved_aware = await store.update(naive.id, changes(date="2025-03-01T12:00:00+02:00"))
    saved_naive = await store.update(aware.id, changes(date="2025-03-01T12:00:00.123456"))

    assert saved_aware is not None
    assert saved_naive is not None
    to_aware, to_naive = saved_aware.event, saved_naive.event
    for returned, event_id in ((to_aware, naive.id), (to_naive, aware.id)):
        assert returned == await store.get(event_id)
    assert to_aware.date == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert to_aware.date.utcoffset() == timedelta(0)
    assert to_naive.date == datetime(2025, 3, 1, 12, 0, 0, 123_000)
    assert to_naive.date.tzinfo is None


async def test_update_of_an_absent_id_is_none_and_creates_nothing(store: EventStore) -> None:
    await store.create(event(**FULL))

    assert await store.update(unknown_id(), changes(title="Ghost")) is None
    assert await store.count() == 1
    assert "Ghost" not in [e.title for e in (await everything(store)).items]


async def test_update_with_no_changes_returns_the_current_event(store: EventStore) -> None:
    original = (await store.create(event(**FULL))).event

    unchanged = await store.update(original.id, {})
    assert unchanged is not None
    assert unchanged.event == original
    assert await store.get(original.id) == original
    assert await store.update(unknown_id(), {}) is None


# --- delete -------------------------------------------------------------------------------


async def test_delete_is_a_change_once_then_none(store: EventStore) -> None:
    doomed, kept = await create_all(store, event("doomed"), event("kept"))

    assert await store.delete(doomed.id) is not None
    assert await store.delete(doomed.id) is None

    assert await store.get(doomed.id) is None
    assert await store.get(kept.id) == kept
    assert ids(await everything(store)) == [kept.id]
    assert await store.count() == 1


async def test_delete_of_an_unknown_id_is_none(store: EventStore) -> None:
    await store.create(event())

    assert await store.delete(unknown_id()) is None
    assert await store.count() == 1


# --- the date rule ------------------------------------------------------------------------

PLUS_2 = "+02:00"


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        # naive: returned naive and exactly as sent (to the millisecond)
        ("2025-03-04T05:06:07", datetime(2025, 3, 4, 5, 6, 7)),
        ("2025-03-04T05:06:07.123", datetime(2025, 3, 4, 5, 6, 7, 123_000)),
        ("2025-03-04T05:06:07.123999", datetime(2025, 3, 4, 5, 6, 7, 123_000)),
        ("1969-12-31T23:59:59.999", datetime(1969, 12, 31, 23, 59, 59, 999_000)),
        # aware: returned in UTC, the same instant
        ("2025-03-04T05:06:07Z", datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)),
        (f"2025-03-04T05:06:07{PLUS_2}", datetime(2025, 3, 4, 3, 6, 7, tzinfo=UTC)),
        ("2025-03-04T01:00:00.000999+02:00", datetime(2025, 3, 3, 23, 0, tzinfo=UTC)),
        ("2025-03-03T20:30:00.5-05:30", datetime(2025, 3, 4, 2, 0, 0, 500_000, tzinfo=UTC)),
    ],
)
async def test_dates_follow_the_date_rule_on_every_read(
    store: EventStore, sent: str, expected: datetime
) -> None:
    created = (await store.create(event(date=sent))).event

    fetched = await store.get(created.id)
    (listed,) = (await everything(store)).items

    for value in (created.date, fetched.date if fetched else None, listed.date):
        assert value == expected
        assert isinstance(value, datetime)
        if expected.tzinfo is None:
            assert value.tzinfo is None
        else:
            assert value.utcoffset() == timedelta(0)


async def test_naive_and_aware_at_the_same_instant_keep_their_kinds(store: EventStore) -> None:
    naive, aware = await create_all(
        store, event("naive", "2025-05-05T12:00:00"), event("aware", "2025-05-05T14:00:00+02:00")
    )

    fetched_naive, fetched_aware = await store.get(naive.id), await store.get(aware.id)

    assert fetched_naive is not None
    assert fetched_aware is not None
    assert fetched_naive.date.tzinfo is None
    assert fetched_aware.date.utcoffset() == timedelta(0)
    assert fetched_naive.date == datetime(2025, 5, 5, 12, 0)
    assert fetched_aware.date == datetime(2025, 5, 5, 12, 0, tzinfo=UTC)


# --- insert_missing / delete_all / count / ping -------------------------------------------

ID_A = "aaaaaaaaaaaaaaaaaaaaaaaa"
ID_B = "0123456789abcdef01234567"


async def test_insert_missing_inserts_under_the_given_ids(store: EventStore) -> None:
    batch = [stored(ID_A, event(**FULL)), stored(ID_B, event("Second", "2025-01-01T00:00:00Z"))]

    assert await store.insert_missing(batch) == 2

    assert await store.get(ID_A) == batch[0]
    assert await store.get(ID_B) == batch[1]
    assert sorted(ids(await everything(store))) == sorted([ID_A, ID_B])


async def test_insert_missing_twice_inserts_nothing_the_second_time(store: EventStore) -> None:
    batch = [stored(ID_A, event("A")), stored(ID_B, event("B"))]
    await store.insert_missing(batch)

    assert await store.insert_missing(batch) == 0

    assert await store.count() == 2
    assert (await everything(store)).total == 2


async def test_insert_missing_does_not_overwrite_existing_events(store: EventStore) -> None:
    original = stored(ID_A, event(**FULL))
    await store.insert_missing([original])
    created = (await store.create(event("Created"))).event

    added = await store.insert_missing(
        [
            stored(ID_A, event("Replacement", "2030-01-01T00:00:00")),
            stored(created.id, event("Replacement")),
            stored(ID_B, event("New")),
        ]
    )

    assert added == 1
    assert await store.get(ID_A) == original
    assert await store.get(created.id) == created
    assert await store.count() == 3


async def test_insert_missing_stores_an_id_repeated_in_one_batch_once(store: EventStore) -> None:
    first, second = stored(ID_A, event("first")), stored(ID_A, event("second"))

    assert await store.insert_missing([first, second]) == 1

    assert await store.count() == 1
    assert await store.get(ID_A) in (first, second)


async def test_insert_missing_of_nothing_is_zero(store: EventStore) -> None:
    assert await store.insert_missing([]) == 0
    assert await store.count() == 0


async def test_delete_all_returns_how_many_it_removed(store: EventStore) -> None:
    await create_all(store, event("a"), event("b"), event("c"))

    assert await store.delete_all() == 3

    assert await store.count() == 0
    assert (await everything(store)).total == 0
    assert await store.delete_all() == 0


async def test_count_follows_creates_and_deletes(store: EventStore) -> None:
    assert await store.count() == 0
    first, _ = await create_all(store, event("a"), event("b"))
    assert await store.count() == 2
    await store.delete(first.id)
    assert await store.count() == 1


async def test_ping_succeeds_on_an_open_store(store: EventStore) -> None:
    await store.ping()
    assert await store.count() == 0  # and the store is still usable afterwards
