"""EventStore contract: walking a list by its cursors (issue 20) agrees with a reference.

For a random small set of events (ties on every sort key likely; some written before
updated_at was kept, so null there) and a random query with any sort, every backend's walk
(each page after the previous page's last position, events/cursors.py) lists exactly the
reference's whole list when nothing changes; with random creates and deletes between the
pages, it lists every event that exists throughout the walk exactly once, and nothing
twice.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventapi.events import cursors
from eventapi.events.schemas import EventCreate, EventQuery, EventRead, SortKey
from eventapi.events.store import EventStore
from tests.store.test_event_store_property import _utc, chosen_ids, events, queries, reference

SORTS: list[SortKey] = ["date", "-date", "title", "-title", "updated", "-updated"]
STAMPS = st.none() | st.sampled_from(
    [datetime(2025, 1, 1), datetime(2025, 1, 1), datetime(2026, 6, 1, 0, 0, 0, 1000)]
)

# Between two pages: create this event, or delete the n-th event there is (modulo).
Step = tuple[EventCreate | None, int]
steps = st.lists(st.tuples(st.none() | events(), st.integers(0, 50)), max_size=4)


def ordered(pool: list[EventRead], query: EventQuery) -> list[str]:
    """The ids ``query`` lists, in its order: the reference's filter, sorted by the sort's
    value (updated: nulls first) and the id, the whole reversed for a descending sort."""
    matched = reference(pool, query.model_copy(update={"limit": 100, "offset": 0})).items
    sort = query.sort.removeprefix("-")

    def key(e: EventRead) -> tuple[object, ...]:
        if sort == "date":
            return (_utc(e.date), e.id)
        if sort == "title":
            return (e.title, e.id)
        stamp = e.updated_at
        return (stamp is not None, stamp and _utc(stamp), e.id)

    return [e.id for e in sorted(matched, key=key, reverse=query.sort.startswith("-"))]


async def walk(
    store: EventStore, query: EventQuery, between: list[list[Step]], created: set[str]
) -> list[str]:
    """Every id of every page, each after the last one's position; ``between``: what to do
    after each page (the ids it creates are added to ``created``)."""
    seen: list[str] = []
    rounds = iter(between)
    for _ in range(200):
        page = await store.list(query)
        assert len(page.items) <= query.limit
        seen += [e.id for e in page.items]
        if query.cursor is None:  # the first page: an offset page, whose total says
            assert page.more is None
            more = query.limit < page.total
        else:
            assert page.more is not None  # a cursor page says
            more = page.more
        if not more:
            return seen
        assert page.last is not None
        assert page.last.id == page.items[-1].id
        query = query.model_copy(update={"cursor": cursors.encode(query, page.last)})
        for made, nth in next(rounds, []):
            if made is not None:
                created.add((await store.create(made)).event.id)
            else:
                listed = (await store.list(EventQuery.model_validate({"limit": 100}))).items
                if listed:
                    await store.delete(listed[nth % len(listed)].id)
    raise AssertionError("the walk never ended")


@pytest.mark.parametrize("sort", SORTS)
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.lists(st.tuples(events(), st.none() | chosen_ids, STAMPS), max_size=10),
    # Half the queries without a filter: the filters often leave few events to walk.
    query=st.just(EventQuery.model_validate({})) | queries(),
    limit=st.integers(1, 3),
    between=st.lists(steps, max_size=6),
)
async def test_a_cursor_walk_agrees_with_the_reference(
    store: EventStore,
    data: list[tuple[EventCreate, str | None, datetime | None]],
    query: EventQuery,
    sort: SortKey,
    limit: int,
    between: list[list[Step]],
) -> None:
    await store.delete_all()  # one store serves every example
    pool: dict[str, EventRead] = {}
    for event, chosen, stamp in data:
        if chosen is None:
            made = (await store.create(event)).event
            pool[made.id] = made
        else:
            old = EventRead(id=chosen, **event.model_dump(), created_at=stamp, updated_at=stamp)
            await store.insert_missing([old])
            pool.setdefault(chosen, old)
    query = query.model_copy(update={"sort": sort, "limit": limit, "offset": 0})
    expected = ordered(list(pool.values()), query)

    # Nothing changes: the walk is the list.
    assert await walk(store, query, [], set()) == expected

    # Creates and deletes between the pages.
    created: set[str] = set()
    seen = await walk(store, query, between, created)
    now = {e.id for e in (await store.list(EventQuery.model_validate({"limit": 100}))).items}
    assert len(seen) == len(set(seen)), seen
    throughout = [i for i in expected if i in now]  # ids are never reused
    assert [i for i in seen if i in throughout] == throughout
    assert set(seen) <= set(expected) | created
