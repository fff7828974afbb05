"""GET /api/events: paging, X-Total-Count, the Link header, filters and sorting."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_problem, ids, link_query, links
from tests.support.api import EVENTS, create


async def seed(client: httpx.AsyncClient, count: int, **fields: Any) -> list[str]:
    """``count`` events on consecutive days (so date order is creation order); their ids."""
    created = []
    for n in range(count):
        body = await create(client, **{"title": f"Event {n:02}", "date": day(n), **fields})
        created.append(body["id"])
    return created


def day(n: int) -> str:
    return f"2025-01-{n + 1:02}T09:00:00"


async def follow_next(client: httpx.AsyncClient, url: str) -> list[str]:
    """Every id on every page from ``url`` on, following rel="next" to the end."""
    seen: list[str] = []
    next_url: str | None = url
    for _ in range(100):
        if next_url is None:
            return seen
        response = await client.get(next_url)
        assert response.status_code == 200, response.text
        seen.extend(item["id"] for item in response.json())
        next_url = links(response).get("next")
    raise AssertionError("rel=next never ended")


async def starts(
    client: httpx.AsyncClient, found: dict[str, str], order: list[str]
) -> dict[str, int]:
    """Where each linked page starts in ``order`` (every event, in the list's order): its
    offset; for rel="next", which is a cursor and never an offset, where its first event is."""
    where = {}
    for rel, url in found.items():
        query = link_query(url)
        if rel != "next":
            where[rel] = int(query["offset"])
            continue
        assert "offset" not in query, url
        assert query["cursor"], url
        response = await client.get(url)
        assert response.status_code == 200, response.text
        where[rel] = order.index(response.json()[0]["id"])
    return where


# --- paging ---------------------------------------------------------------------------


async def test_limit_defaults_to_20(client: httpx.AsyncClient) -> None:
    created = await seed(client, 23)

    response = await client.get(EVENTS)

    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == created[:20]
    assert response.headers["x-total-count"] == "23"
    assert link_query(links(response)["next"])["limit"] == "20"


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "ten", ""])
async def test_limit_out_of_bounds_is_422(client: httpx.AsyncClient, limit: str) -> None:
    body = assert_problem(await client.get(EVENTS, params={"limit": limit}), 422)
    assert any(error["loc"][-1] == "limit" for error in body["errors"])


@pytest.mark.parametrize("offset", ["-1", "x", "1000001"])
async def test_offset_out_of_bounds_is_422(client: httpx.AsyncClient, offset: str) -> None:
    assert_problem(await client.get(EVENTS, params={"offset": offset}), 422)


async def test_limit_bounds_are_inclusive(client: httpx.AsyncClient) -> None:
    created = await seed(client, 3)

    assert await ids(client, limit=1) == created[:1]
    assert await ids(client, limit=100) == created


async def test_offset_skips_events(client: httpx.AsyncClient) -> None:
    created = await seed(client, 5)

    response = await client.get(EVENTS, params={"limit": 2, "offset": 2})

    assert [item["id"] for item in response.json()] == created[2:4]
    assert response.headers["x-total-count"] == "5"
    assert await ids(client, offset=4) == created[4:]
    assert await ids(client, offset=5) == []
    assert await ids(client, offset=50) == []


async def test_total_count_counts_matches_not_the_page(client: httpx.AsyncClient) -> None:
    await seed(client, 4, category="Music")
    await seed(client, 3, category="Art")

    response = await client.get(EVENTS, params={"category": "music", "limit": 1})

    assert len(response.json()) == 1
    assert response.headers["x-total-count"] == "4"
    assert (await client.get(EVENTS)).headers["x-total-count"] == "7"


# --- Link header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, {"first": 0, "next": 3, "last": 6}),
        (1, {"first": 0, "prev": 0, "next": 4, "last": 6}),
        (3, {"first": 0, "prev": 0, "next": 6, "last": 6}),
        (4, {"first": 0, "prev": 1, "last": 6}),  # items 4-6 are the end: no next
        (6, {"first": 0, "prev": 3, "last": 6}),
        # Past the end: prev leads back to the last real page.
        (20, {"first": 0, "prev": 6, "last": 6}),
    ],
)
async def test_link_relations_for_each_position(
    client: httpx.AsyncClient, offset: int, expected: dict[str, int]
) -> None:
    created = await seed(client, 7)

    response = await client.get(EVENTS, params={"limit": 3, "offset": offset})

    found = links(response)
    assert await starts(client, found, created) == expected
    assert {link_query(url)["limit"] for url in found.values()} == {"3"}


async def test_links_when_total_is_a_multiple_of_the_limit(client: httpx.AsyncClient) -> None:
    created = await seed(client, 6)

    found = links(await client.get(EVENTS, params={"limit": 3}))

    assert await starts(client, found, created) == {"first": 0, "next": 3, "last": 3}


async def test_links_when_everything_fits_on_one_page(client: httpx.AsyncClient) -> None:
    await seed(client, 2)

    found = links(await client.get(EVENTS, params={"limit": 3}))

    assert {rel: link_query(url)["offset"] for rel, url in found.items()} == {
        "first": "0",
        "last": "0",
    }


async def test_links_when_nothing_matches(client: httpx.AsyncClient) -> None:
    await seed(client, 2)

    response = await client.get(EVENTS, params={"category": "none-such"})

    assert response.json() == []
    assert response.headers["x-total-count"] == "0"
    found = links(response)
    assert {rel: link_query(url)["offset"] for rel, url in found.items()} == {
        "first": "0",
        "last": "0",
    }


async def test_links_are_relative_and_keep_the_active_filters(client: httpx.AsyncClient) -> None:
    await seed(client, 5, category="Music", location="Fest hall")
    await seed(client, 2, category="Art", location="Fest hall")
    params = {
        "category": "music",
        "q": "fest",
        "date_from": "2025-01-01T00:00:00",
        "date_to": "2025-12-31T00:00:00",
        "sort": "-title",
        "limit": "2",
        "offset": "2",
    }

    response = await client.get(EVENTS, params=params)

    assert response.headers["x-total-count"] == "5"
    found = links(response)
    assert set(found) == {"first", "prev", "next", "last"}
    for rel, url in found.items():
        assert url.startswith(f"{EVENTS}?"), url
        query = link_query(url)
        # Where the page starts: an offset, or (next) a cursor after this page's last event.
        place = query.pop("cursor" if rel == "next" else "offset")
        assert rel == "next" or place == {"first": "0", "prev": "0", "last": "4"}[rel]
        assert query == {name: value for name, value in params.items() if name != "offset"}
    following = await client.get(found["next"])
    assert following.json() == (await client.get(EVENTS, params={**params, "offset": "4"})).json()


async def test_links_keep_an_aware_date_filter_usable(client: httpx.AsyncClient) -> None:
    created = await seed(client, 5)

    # 2025-01-03T11:00+02:00 is 09:00 UTC, the third event's (naive, read as UTC) date.
    response = await client.get(
        EVENTS, params={"date_from": "2025-01-03T11:00:00+02:00", "limit": 1}
    )

    assert [item["id"] for item in response.json()] == created[2:3]
    assert await follow_next(client, links(response)["first"]) == created[2:]


@pytest.mark.parametrize(
    ("params", "only_music"),
    [
        pytest.param({}, False, id="no-filter"),
        pytest.param({"category": "MUSIC"}, True, id="category"),
        pytest.param({"q": "event", "sort": "-date"}, True, id="q-and-sort"),
    ],
)
async def test_following_next_visits_every_event_once(
    client: httpx.AsyncClient, params: dict[str, str], only_music: bool
) -> None:
    music = await seed(client, 7, category="Music")
    other = await seed(client, 3, category="Art", title="Other")
    expected = music if only_music else music + other

    first = await client.get(EVENTS, params={**params, "limit": 2})
    assert first.headers["x-total-count"] == str(len(expected))
    assert "prev" not in links(first)

    seen = await follow_next(client, str(first.request.url.copy_with(scheme=None, host=None)))

    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(expected)


@pytest.mark.parametrize("sort", ["date", "-date", "title", "-title"])
async def test_paging_is_stable_when_sort_keys_tie(client: httpx.AsyncClient, sort: str) -> None:
    created = await seed(client, 7, title="Same", date="2025-05-05T05:05:05")

    seen = await follow_next(client, f"{EVENTS}?sort={sort}&limit=2")

    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(created)


# --- filters --------------------------------------------------------------------------


async def test_category_is_an_exact_case_insensitive_match(client: httpx.AsyncClient) -> None:
    music = await create(client, category="Music")
    await create(client, category="Music festival")
    await create(client, category="Art")
    await create(client)

    for value in ("Music", "music", "MUSIC", "mUsIc"):
        assert await ids(client, category=value) == [music["id"]], value
    assert await ids(client, category="Mus") == []
    assert await ids(client, category="festival") == []


async def test_q_searches_title_description_and_location(client: httpx.AsyncClient) -> None:
    in_title = await create(client, title="Jazz Night", date=day(0))
    in_description = await create(client, description="A late jazz session", date=day(1))
    in_location = await create(client, location="Jazzville", date=day(2))
    await create(client, organizer="Jazz Corp", date=day(3))
    await create(client, category="Jazz", date=day(4))
    await create(client, title="Rock", description="Loud", location="Arena", date=day(5))

    expected = [in_title["id"], in_description["id"], in_location["id"]]
    assert await ids(client, q="jazz") == expected
    assert await ids(client, q="JAZZ") == expected
    assert await ids(client, q="azz Ni") == [in_title["id"]]
    assert await ids(client, q="blues") == []


@pytest.mark.parametrize("q", ["", "x" * 201])
async def test_q_length_is_bounded(client: httpx.AsyncClient, q: str) -> None:
    assert_problem(await client.get(EVENTS, params={"q": q}), 422)


async def test_date_range_includes_both_ends(client: httpx.AsyncClient) -> None:
    jan = await create(client, date="2025-01-01T00:00:00")
    feb = await create(client, date="2025-02-01T00:00:00")
    mar = await create(client, date="2025-03-01T00:00:00")
    feb_1 = "2025-02-01T00:00:00"

    assert await ids(client, date_from=feb_1) == [feb["id"], mar["id"]]
    assert await ids(client, date_to=feb_1) == [jan["id"], feb["id"]]
    assert await ids(client, date_from=feb_1, date_to=feb_1) == [feb["id"]]
    assert await ids(client, date_from="2025-02-01T00:00:00.001") == [mar["id"]]
    assert await ids(client, date_to="2025-01-31T23:59:59.999") == [jan["id"]]


async def test_date_filters_compare_instants(client: httpx.AsyncClient) -> None:
    naive = await create(client, date="2025-02-01T00:00:00")  # read as UTC
    aware = await create(client, date="2025-02-01T05:00:00+02:00")  # 03:00 UTC

    assert await ids(client, date_from="2025-02-01T02:00:00+02:00") == [naive["id"], aware["id"]]
    assert await ids(client, date_from="2025-02-01T00:00:00.001Z") == [aware["id"]]
    assert await ids(client, date_to="2025-02-01T02:59:59Z") == [naive["id"]]
    assert await ids(client, date_to="2025-02-01T03:00:00Z") == [naive["id"], aware["id"]]


async def test_date_from_after_date_to_is_422(client: httpx.AsyncClient) -> None:
    params = {"date_from": "2025-02-02T00:00:00", "date_to": "2025-02-01T00:00:00"}
    assert_problem(await client.get(EVENTS, params=params), 422)


@pytest.mark.parametrize("name", ["date_from", "date_to"])
@pytest.mark.parametrize("value", ["yesterday", "2025-13-01T00:00:00", "2025-02-30T00:00:00"])
async def test_invalid_date_filter_is_422(client: httpx.AsyncClient, name: str, value: str) -> None:
    body = assert_problem(await client.get(EVENTS, params={name: value}), 422)
    assert any(error["loc"][-1] == name for error in body["errors"])


async def test_filters_combine(client: httpx.AsyncClient) -> None:
    match = await create(client, title="Jazz", category="Music", date="2025-03-01T00:00:00")
    await create(client, title="Jazz", category="Art", date="2025-03-01T00:00:00")
    await create(client, title="Rock", category="Music", date="2025-03-01T00:00:00")
    await create(client, title="Jazz", category="Music", date="2024-03-01T00:00:00")

    found = await ids(client, category="music", q="jazz", date_from="2025-01-01T00:00:00")

    assert found == [match["id"]]


# --- query values are plain values ----------------------------------------------------


async def test_operator_like_category_is_a_literal_name(client: httpx.AsyncClient) -> None:
    await create(client, category="Music")
    await create(client, category="Art")
    operator = '{"$gt":""}'

    response = await client.get(EVENTS, params={"category": operator})

    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"

    literal = await create(client, category=operator)
    assert await ids(client, category=operator) == [literal["id"]]


@pytest.mark.parametrize("needle", [".*", "[", "(a|b)", "%", "_", "\\", "$where", "^"])
async def test_q_is_literal_text(client: httpx.AsyncClient, needle: str) -> None:
    await create(client, title="Plain event", description="nothing special", location="Here")

    response = await client.get(EVENTS, params={"q": needle})

    assert response.status_code == 200
    assert response.json() == []
    literal = await create(client, title=f"Has {needle} inside")
    assert await ids(client, q=needle) == [literal["id"]]


# --- sorting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "order"),
    [
        (None, ["c", "a", "b"]),
        ("date", ["c", "a", "b"]),
        ("-date", ["b", "a", "c"]),
        ("title", ["a", "b", "c"]),
        ("-title", ["c", "b", "a"]),
    ],
)
async def test_sort(client: httpx.AsyncClient, sort: str | None, order: list[str]) -> None:
    by_title = {
        "a": await create(client, title="Alpha", date="2025-06-01T00:00:00"),
        "b": await create(client, title="Bravo", date="2025-07-01T00:00:00+02:00"),
        "c": await create(client, title="Charlie", date="2025-05-01T00:00:00"),
    }
    params = {} if sort is None else {"sort": sort}

    assert await ids(client, **params) == [by_title[key]["id"] for key in order]


@pytest.mark.parametrize("sort", ["name", "+date", "date,title", "DATE", "id", ""])
async def test_invalid_sort_is_422(client: httpx.AsyncClient, sort: str) -> None:
    body = assert_problem(await client.get(EVENTS, params={"sort": sort}), 422)
    assert any(error["loc"][-1] == "sort" for error in body["errors"])


@pytest.mark.parametrize("name", ["foo", "page", "id", "$where", "Limit"])
async def test_unknown_query_parameter_is_422(client: httpx.AsyncClient, name: str) -> None:
    await create(client)

    body = assert_problem(await client.get(EVENTS, params={name: "1"}), 422)
    assert any(error["loc"][-1] == name for error in body["errors"])
