"""GET /api/events with a cursor (issue 20): rel="next" is a cursor after the page's last
item, and walking the cursors lists every event that exists throughout the walk exactly
once, whatever is created or deleted meanwhile. Both stores, the fast path on and off."""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from eventapi.events import cursors
from eventapi.events.keyset import Position
from eventapi.events.schemas import EventQuery, EventRead
from eventapi.events.store import EventStore
from tests.api.helpers import assert_problem, link_query, links
from tests.support.api import EVENTS, create, item

SORTS = ["date", "-date", "title", "-title", "updated", "-updated"]
WINDOW = {"date_from": "2025-03-01T00:00:00Z", "date_to": "2025-03-31T23:59:59Z"}
# Each a list query; walked with every sort.
QUERIES: dict[str, dict[str, Any]] = {
    "all": {},
    "category": {"category": "music"},
    "categories": {"category": ["music", "art"]},
    "search": {"q": "fest"},  # SQLite: the trigram index
    "short-search": {"q": "fe"},  # SQLite: a scan of the casefolded text
    "status-organizer": {"status": ["scheduled", "cancelled"], "organizer": "acme"},
    "window": WINDOW,
    "window-and-category": {**WINDOW, "category": "music"},
    "expanded": {**WINDOW, "expand": "true"},
    "expanded-search": {**WINDOW, "expand": "true", "q": "fest"},
}
# Events written before updated_at was kept: null there (the updated sorts put them first,
# or last descending), so a walk by updated crosses from nulls to values.
OLD_IDS = ["0000000000000000000000a1", "ffffffffffffffffffffffa2", "7777777777777777777777a3"]


async def seed(client: httpx.AsyncClient, store: EventStore) -> None:
    """A catalogue with ties on every sort key, floating, zoned and UTC dates, events that
    last, two recurring series (several occurrences in WINDOW), and old events."""
    await store.insert_missing(
        [
            EventRead(id=event_id, title=title, date=datetime(2025, 3, day, 8), category="Music")
            for event_id, title, day in zip(
                OLD_IDS, ["Old", "Alpha", "Old"], [3, 10, 3], strict=True
            )
        ]
    )
    plain = [
        ("Alpha", "2025-03-05T09:00:00", {"category": "Music", "location": "Fest hall"}),
        ("Alpha", "2025-03-05T09:00:00", {"category": "Art", "organizer": "ACME"}),
        ("alpha", "2025-03-05T09:00:00Z", {"category": "music", "status": "cancelled"}),
        ("Beta", "2025-03-05T10:00:00+01:00", {"description": "a festival"}),
        ("Beta", "2025-02-20T09:00:00", {"end": "2025-03-02T09:00:00", "category": "Art"}),
        ("Gamma", "2025-03-20T18:00:00", {"timezone": "America/Chicago", "organizer": "acme"}),
        ("Zeta", "2025-04-02T09:00:00", {"category": "Music", "location": "FEST"}),
        ("Éclair", "2025-03-31T23:59:59Z", {"category": "Art", "status": "postponed"}),
        ("Alpha", "2025-01-15T09:00:00", {"organizer": "Acme", "title": "Alpha"}),
        ("Delta", "2025-03-12T12:00:00", {"category": "MUSIC", "description": "Fest"}),
    ]
    for title, date, fields in plain:
        await create(client, **{"title": title, "date": date, **fields})
    await create(
        client,
        title="Weekly fest",
        date="2025-02-25T18:00:00",
        timezone="Europe/Paris",
        category="Music",
        recurrence="FREQ=WEEKLY;COUNT=8",
    )
    await create(
        client,
        title="Alpha",
        date="2025-03-10T08:00:00",
        category="Art",
        recurrence="FREQ=DAILY;COUNT=4",
        organizer="Acme",
    )


async def page(client: httpx.AsyncClient, url: str, **params: Any) -> httpx.Response:
    response = await client.get(url, params=params or None)
    assert response.status_code == 200, response.text
    return response


async def walk(
    client: httpx.AsyncClient,
    params: dict[str, Any],
    between: Any = None,
) -> list[str]:
    """Every id from the first page of ``params`` on, following rel="next" (a cursor, with
    the filters and limit, never an offset); ``between(ids_so_far)`` runs before each
    page after the first."""
    response = await page(client, EVENTS, **params)
    seen = [event["id"] for event in response.json()]
    for _ in range(500):
        found = links(response)
        if "next" not in found:
            return seen
        query = parse_qs(urlsplit(found["next"]).query)
        assert "offset" not in query, found["next"]
        assert query["limit"] == [str(params.get("limit", 20))], found["next"]
        assert len(query["cursor"]) == 1, found["next"]
        if between is not None:
            await between(seen)
        response = await page(client, found["next"])
        assert "prev" not in links(response)  # a cursor page has no prev
        assert set(links(response)) <= {"first", "next", "last"}
        seen += [event["id"] for event in response.json()]
    raise AssertionError("rel=next never ended")


async def everything(client: httpx.AsyncClient, params: dict[str, Any]) -> list[str]:
    """The whole list by offsets (pages of 100)."""
    listed: list[str] = []
    while True:
        response = await page(client, EVENTS, **params, limit=100, offset=len(listed))
        got = [event["id"] for event in response.json()]
        listed += got
        if len(got) < 100:
            assert int(response.headers["x-total-count"]) == len(listed)
            return listed


# --- walking ---------------------------------------------------------------------------


@pytest.mark.parametrize("sort", SORTS)
async def test_walking_the_cursors_gives_the_list_the_offsets_give(
    client: httpx.AsyncClient, store: EventStore, sort: str
) -> None:
    await seed(client, store)
    for name, params in QUERIES.items():
        query = {**params, "sort": sort}
        expected = await everything(client, query)
        assert expected, name
        for limit in (1, 3):
            walked = await walk(client, {**query, "limit": limit})
            assert walked == expected, (name, limit)


async def test_cursor_pages_keep_the_total_and_offset_links(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await seed(client, store)
    first = await page(client, EVENTS, category="music", limit=2)
    second = await page(client, links(first)["next"])

    assert second.headers["x-total-count"] == first.headers["x-total-count"]
    found = links(second)
    assert set(found) == {"first", "next", "last"}
    assert link_query(found["first"])["offset"] == "0"
    assert link_query(found["last"]) == link_query(links(first)["last"])
    # The next cursor's link keeps the filters and the limit.
    assert {k: v for k, v in link_query(found["next"]).items() if k != "cursor"} == {
        "category": "music",
        "limit": "2",
    }


async def test_a_cursor_works_with_another_page_size_and_the_same_filters_written_otherwise(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await seed(client, store)
    expected = await everything(client, {"category": "music"})
    first = await page(client, EVENTS, category="MUSIC", limit=2)
    cursor = link_query(links(first)["next"])["cursor"]

    rest = await page(client, EVENTS, category="Music", limit=100, cursor=cursor)

    assert [e["id"] for e in first.json()] + [e["id"] for e in rest.json()] == expected
    assert "next" not in links(rest)


async def test_a_cursor_with_offset_zero_is_a_cursor_page(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await seed(client, store)
    first = await page(client, EVENTS, limit=2)
    cursor = link_query(links(first)["next"])["cursor"]

    with_zero = await page(client, EVENTS, limit=2, offset=0, cursor=cursor)

    assert with_zero.json() == (await page(client, EVENTS, limit=2, offset=2)).json()


# --- creates and deletes during a walk ----------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{"sort": sort} for sort in SORTS] + [{**WINDOW, "expand": "true"}],
    ids=[*SORTS, "expanded"],
)
async def test_a_walk_sees_every_event_that_exists_throughout_it_once(
    client: httpx.AsyncClient, store: EventStore, params: dict[str, Any]
) -> None:
    """Before each page: two events created (one sorting before the walk's place, one
    after), one event already seen deleted and one not yet seen. With offsets each delete
    of a seen event would make the walk skip one, each create before its place repeat one."""
    await seed(client, store)
    initial = await everything(client, params)
    deleted: set[str] = set()
    created: set[str] = set()
    made = iter(range(1000))

    async def meanwhile(seen: list[str]) -> None:
        n = next(made)
        if n >= 6:  # new events sort after the walk's place by updated: they would not end
            return
        for title, date in (("A early", "2025-03-01T00:00:00"), ("zz late", "2025-03-30T00:00:00")):
            body = await create(client, title=f"{title} {n}", date=date)
            created.add(body["id"])
        gone = [i for i in seen if i in initial and i.split("_")[0] not in deleted]
        ahead = [i for i in initial if i not in seen and i.split("_")[0] not in deleted]
        # An occurrence's series is deleted whole.
        for event_id in dict.fromkeys(victim.split("_")[0] for victim in [*gone[:1], *ahead[-1:]]):
            response = await client.delete(item(event_id))
            assert response.status_code == 200, response.text
            deleted.add(event_id)

    seen = await walk(client, {**params, "limit": 2}, meanwhile)

    assert len(seen) == len(set(seen)), "an event was listed twice"
    throughout = [i for i in initial if i.split("_")[0] not in deleted]
    missed = [i for i in throughout if i not in seen]
    assert not missed, f"missed {missed}"
    strangers = {i for i in seen if i not in initial and i.split("_")[0] not in created}
    assert not strangers
    assert deleted, "the walk deleted nothing: the test tests nothing"


# --- refused cursors -----------------------------------------------------------------------


def _changed(cursor: str, at: int) -> str:
    alphabet = string.ascii_letters + string.digits + "-_"
    other = alphabet[(alphabet.index(cursor[at]) + 1) % len(alphabet)]
    return cursor[:at] + other + cursor[at + 1 :]


BAD: dict[str, Callable[[str], str]] = {
    "changed-middle": lambda c: _changed(c, len(c) // 2),
    "changed-first": lambda c: _changed(c, 0),
    "changed-last": lambda c: _changed(c, len(c) - 1),
    "truncated": lambda c: c[:-4],
    "truncated-much": lambda c: c[:10],
    "extended": lambda c: c + "AAAA",
    "padded": lambda c: c + "=",
    "garbage": lambda c: "garbage",
    "punctuation": lambda c: "!!!!",
    "not-ascii": lambda c: "é" * 8,
    "spaces": lambda c: c[:8] + " " + c[8:],
}


async def first_cursor(client: httpx.AsyncClient, **params: Any) -> str:
    response = await page(client, EVENTS, limit=2, **params)
    return link_query(links(response)["next"])["cursor"]


async def assert_refused(client: httpx.AsyncClient, cursor: str, **params: Any) -> None:
    """A 400 problem, the same the first time (the route) and the second (the fast path,
    once the route has validated the query string)."""
    bodies = []
    for _ in range(2):
        response = await client.get(EVENTS, params={**params, "cursor": cursor})
        body = assert_problem(response, 400)
        assert body["type"].endswith("/invalid-cursor"), body
        assert "cursor" in body["detail"], body
        bodies.append(response.content)
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize("kind", sorted(BAD))
async def test_a_damaged_cursor_is_a_400_problem(
    client: httpx.AsyncClient, store: EventStore, kind: str
) -> None:
    await seed(client, store)
    cursor = await first_cursor(client)

    await assert_refused(client, BAD[kind](cursor))


@pytest.mark.parametrize(
    ("given_for", "used_with"),
    [
        ({"sort": "title"}, {}),
        ({}, {"sort": "-date"}),
        ({"category": "music"}, {}),
        ({}, {"category": "art"}),
        ({"q": "fest"}, {"q": "fes"}),
        ({**WINDOW, "expand": "true"}, WINDOW),
        (WINDOW, {**WINDOW, "expand": "true"}),
        (WINDOW, {**WINDOW, "date_to": "2025-03-30T00:00:00Z"}),
    ],
)
async def test_a_cursor_of_another_query_is_a_400_problem(
    client: httpx.AsyncClient,
    store: EventStore,
    given_for: dict[str, Any],
    used_with: dict[str, Any],
) -> None:
    await seed(client, store)
    cursor = await first_cursor(client, **given_for)

    await assert_refused(client, cursor, **used_with)


@pytest.mark.parametrize(
    ("params", "at"),
    [
        ({}, Position("not a date", "a" * 24)),
        ({}, Position(None, "a" * 24)),
        ({}, Position("2025-03-05T09:00:00.000", "a" * 24, "2025-03-05T09:00:00.000")),
        ({"sort": "title"}, Position(None, "a" * 24)),
        ({"sort": "updated"}, Position("9999-99-99T00:00:00.000", "a" * 24)),
        ({**WINDOW, "expand": "true"}, Position("2025-03-05T09:00:00.000", "a" * 24)),
        (
            {**WINDOW, "expand": "true"},
            Position("2025-03-05T09:00:00.000", "a" * 24, "2025-03-06T09:00:00.000"),
        ),
    ],
)
async def test_a_well_made_cursor_of_impossible_values_is_a_400_problem(
    client: httpx.AsyncClient, store: EventStore, params: dict[str, Any], at: Position
) -> None:
    """Made with the API's own encoder (its tag key is no secret): every value is checked
    before a store sees it."""
    await seed(client, store)
    cursor = cursors.encode(EventQuery.model_validate(params), at)

    await assert_refused(client, cursor, **params)


async def test_a_cursor_with_an_offset_is_a_422(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await seed(client, store)
    cursor = await first_cursor(client)

    response = await client.get(EVENTS, params={"cursor": cursor, "offset": 1})

    body = assert_problem(response, 422)
    assert any("cursor and offset" in error["msg"] for error in body["errors"]), body


@pytest.mark.parametrize("length", [0, cursors.MAX_LENGTH + 1])
async def test_a_cursor_out_of_bounds_is_a_422(client: httpx.AsyncClient, length: int) -> None:
    body = assert_problem(await client.get(EVENTS, params={"cursor": "A" * length}), 422)
    [error] = body["errors"]
    assert error["loc"] == ["query", "cursor"], body
    assert error["type"] in {"string_too_short", "string_too_long"}, body


async def test_the_documented_example_is_a_cursor_of_the_default_query(
    client: httpx.AsyncClient,
) -> None:
    example = EventQuery.model_validate({"cursor": cursors.EXAMPLE})
    assert cursors.decode(example) == Position(
        "2025-12-01T10:00:00.000", "68ed254e36d0233aa05afbe9"
    )
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][EVENTS]["get"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == "cursor"]
    assert cursors.EXAMPLE in str(parameter)
    assert "400" in operation["responses"]
    assert (await client.get(EVENTS, params={"cursor": cursors.EXAMPLE})).status_code == 200


# --- the cache ------------------------------------------------------------------------------


async def test_a_cached_cursor_page_is_retired_by_a_write(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    await seed(client, store)
    first = await page(client, EVENTS, limit=3)
    url = links(first)["next"]
    before = await page(client, url)
    again = await page(client, url)
    assert again.headers["x-cache"] == "HIT"
    assert again.content == before.content

    # An event at the cursor's date, with a greater id (a new one): right after the cursor,
    # the first of the cursor's page now.
    made = await create(client, title="Late comer", date=first.json()[-1]["date_utc"])
    shown = await page(client, url)
    assert shown.headers["x-cache"] != "HIT"
    ids = [event["id"] for event in shown.json()]
    assert ids[0] == made["id"], ids

    # Delete what the page shows: the same cursor URL no longer lists it.
    victim = ids[0]
    assert (await client.delete(item(victim))).status_code == 200
    shown = await page(client, url)
    assert shown.headers["x-cache"] != "HIT"
    assert victim not in [event["id"] for event in shown.json()]


async def test_a_cursor_walk_over_created_events_sees_them_in_order(
    client: httpx.AsyncClient,
) -> None:
    """Events created with one date (ties on the sort key, broken by id), walked one a
    page: the ids in order, none twice."""
    made = [
        (await create(client, title=f"T{n}", date="2025-05-05T05:05:05Z"))["id"] for n in range(7)
    ]
    assert await walk(client, {"limit": 1}) == sorted(made)
    assert await walk(client, {"limit": 1, "sort": "-date"}) == sorted(made, reverse=True)


def test_the_cursor_bound_fits_the_longest_title() -> None:
    """A title of 200 characters of 4 bytes each still makes a cursor within the bound."""
    query = EventQuery.model_validate({"sort": "title"})
    cursor = cursors.encode(query, Position("\U0001f600" * 200, "f" * 24))
    assert len(cursor) <= cursors.MAX_LENGTH
    assert cursors.decode(
        EventQuery.model_validate({"sort": "title", "cursor": cursor})
    ) == Position("\U0001f600" * 200, "f" * 24)
