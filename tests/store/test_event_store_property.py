"""EventStore contract, part 3: list() agrees with a pure-Python reference implementation.

For a random small set of events (some created, some inserted by insert_missing under
chosen ids; some with an end, an organizer, a status) and a random query (one or several
categories, an organizer, statuses, a window that events overlap), every backend must
return exactly what ``reference`` computes: filter, sort with the id tie-break, slice,
total.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventapi.events.schemas import (
    EventCreate,
    EventPage,
    EventQuery,
    EventRead,
    SortKey,
    Status,
)
from eventapi.events.store import EventStore

# Small alphabets so that titles, texts and q collide often. Only letters whose casefold
# is their lower case: test_event_store_list.py covers full case folding ("ß").
LETTERS = "aAbBéÉ."
CATEGORIES = ["Music", "music", "MUSIC", "Sports", "SPORTS", "Émile", "éMILE", "émile"]
ORGANIZERS = ["Acme", "ACME", "acme", "Straße", "STRASSE"]
STATUSES: list[Status] = ["scheduled", "postponed", "rescheduled", "cancelled"]
SORT_KEYS: list[SortKey] = ["date", "-date", "title", "-title"]
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
EPOCH = datetime(2025, 1, 1)

texts = st.text(LETTERS, min_size=1, max_size=4)
# Ids for insert_missing: in no relation to insertion order, and sometimes repeated.
chosen_ids = st.text("0123456789abcdef", min_size=24, max_size=24)


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    """Few distinct instants (duplicates are likely), written naive or in some offset."""
    instant = EPOCH + timedelta(
        hours=draw(st.integers(0, 3)),
        # 0.5 ms truncates to 0 and ties with it; 1 ms does not
        microseconds=draw(st.sampled_from([0, 500, 1000])),
    )
    zone = draw(st.none() | st.sampled_from(ZONES))
    return instant if zone is None else instant.replace(tzinfo=UTC).astimezone(zone)


@st.composite
def events(draw: st.DrawFn) -> EventCreate:
    date = draw(moments())
    # Some last: up to 3 hours, written naive or in some offset like the date.
    lasting = draw(st.none() | st.integers(0, 3))
    end = None
    if lasting is not None:
        end = _utc(date) + timedelta(hours=lasting, milliseconds=draw(st.sampled_from([0, 1])))
        end = end.replace(tzinfo=None) if date.tzinfo is None else end.astimezone(date.tzinfo)
    return EventCreate(
        title=draw(texts),
        description=draw(st.none() | texts),
        date=date,
        end=end,
        location=draw(st.none() | texts),
        category=draw(st.none() | st.sampled_from(CATEGORIES)),
        organizer=draw(st.none() | st.sampled_from(ORGANIZERS)),
        status=draw(st.sampled_from(STATUSES)),
    )


@st.composite
def queries(draw: st.DrawFn) -> EventQuery:
    lower, upper = draw(st.none() | moments()), draw(st.none() | moments())
    if lower is not None and upper is not None and _utc(lower) > _utc(upper):
        lower, upper = upper, lower
    return EventQuery(
        limit=draw(st.integers(1, 8)),
        offset=draw(st.integers(0, 10)),
        category=tuple(draw(st.lists(st.sampled_from([*CATEGORIES, "musi"]), max_size=3))),
        organizer=draw(st.none() | st.sampled_from([*ORGANIZERS, "acm"])),
        status=tuple(draw(st.lists(st.sampled_from(STATUSES), max_size=2))),
        q=draw(st.none() | st.text(LETTERS, min_size=1, max_size=2)),
        date_from=lower,
        date_to=upper,
        sort=draw(st.sampled_from(SORT_KEYS)),
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def reference(pool: list[EventRead], query: EventQuery) -> EventPage:
    def keep(e: EventRead) -> bool:
        folded = {c.casefold() for c in query.category}
        if folded and (e.category is None or e.category.casefold() not in folded):
            return False
        if query.organizer is not None and (
            e.organizer is None or e.organizer.casefold() != query.organizer.casefold()
        ):
            return False
        if query.status and e.status not in query.status:
            return False
        # Overlap: it starts by date_to and ends (its end, or its date) from date_from on.
        if query.date_from is not None and _utc(e.end or e.date) < _utc(query.date_from):
            return False
        if query.date_to is not None and _utc(e.date) > _utc(query.date_to):
            return False
        if query.q is not None:
            needle = query.q.casefold()
            fields = (e.title, e.description, e.location)
            return any(f is not None and needle in f.casefold() for f in fields)
        return True

    def key(e: EventRead) -> tuple[datetime | str, str]:
        return (_utc(e.date) if query.sort.endswith("date") else e.title), e.id

    matched = sorted(filter(keep, pool), key=key, reverse=query.sort.startswith("-"))
    return EventPage(items=matched[query.offset : query.offset + query.limit], total=len(matched))


def _shape(page: EventPage) -> tuple[int, list[tuple[dict[str, object], timedelta | None]]]:
    """Everything about a page, including whether each date is naive or UTC."""
    stamps = {"created_at", "updated_at"}  # the store's own: what was sent has none
    return page.total, [(e.model_dump(exclude=stamps), e.date.utcoffset()) for e in page.items]


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run: a red build is always reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.lists(st.tuples(events(), st.none() | chosen_ids), max_size=10), query=queries())
async def test_list_agrees_with_the_reference(
    store: EventStore, data: list[tuple[EventCreate, str | None]], query: EventQuery
) -> None:
    await store.delete_all()  # one store serves every example
    # What was sent, under the id it was stored with: independent of what the store returns.
    sent: dict[str, EventRead] = {}
    for event, chosen in data:
        if chosen is None:
            created = (await store.create(event)).event
            sent[created.id] = EventRead(id=created.id, **event.model_dump())
        else:
            inserted = EventRead(id=chosen, **event.model_dump())
            assert await store.insert_missing([inserted]) == (0 if chosen in sent else 1)
            sent.setdefault(chosen, inserted)

    assert _shape(await store.list(query)) == _shape(reference(list(sent.values()), query))
