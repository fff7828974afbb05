"""Calendar-grade events through HTTP, on both stores, with the fast path on and off: end,
IANA time zone (daylight-saving gaps and folds, Lord Howe's 30-minute shift), status,
server timestamps with Last-Modified and its conditional requests, and the new filters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_problem, ids, total
from tests.support.api import EVENTS, create, event, item

PAST = "Mon, 01 Jan 2024 00:00:00 GMT"  # before any event of these tests was written
FUTURE = "Fri, 31 Dec 2100 23:59:59 GMT"


# --- time zones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "wall", "utc"),
    [
        pytest.param(
            "America/Chicago", "2025-08-20T14:00:00", "2025-08-20T19:00:00.000Z", id="cdt"
        ),
        pytest.param(
            "America/Chicago", "2025-12-20T14:00:00", "2025-12-20T20:00:00.000Z", id="cst"
        ),
        pytest.param("Europe/London", "2025-07-01T09:30:00", "2025-07-01T08:30:00.000Z", id="bst"),
        # Lord Howe: +10:30 in winter, +11:00 in summer (a 30-minute shift).
        pytest.param(
            "Australia/Lord_Howe", "2025-07-01T12:00:00", "2025-07-01T01:30:00.000Z", id="lhst"
        ),
        pytest.param(
            "Australia/Lord_Howe", "2025-12-01T12:00:00", "2025-12-01T01:00:00.000Z", id="lhdt"
        ),
    ],
)
async def test_a_wall_clock_date_in_a_zone_has_its_instant(
    client: httpx.AsyncClient, zone: str, wall: str, utc: str
) -> None:
    created = await create(client, date=wall, timezone=zone)

    assert (created["date"], created["timezone"], created["date_utc"]) == (wall, zone, utc)
    assert (await client.get(item(created["id"]))).json() == created


@pytest.mark.parametrize(
    ("zone", "wall"),
    [
        pytest.param("America/Chicago", "2025-03-09T02:30:00", id="chicago"),
        pytest.param("Europe/London", "2025-03-30T01:30:00", id="london"),
        pytest.param("Australia/Lord_Howe", "2025-10-05T02:15:00", id="lord-howe"),
    ],
)
async def test_a_wall_time_the_clocks_skip_is_422_saying_so(
    client: httpx.AsyncClient, zone: str, wall: str
) -> None:
    problem = assert_problem(await client.post(EVENTS, json=event(date=wall, timezone=zone)), 422)

    assert "does not exist" in str(problem["errors"])
    assert await total(client) == 0


@pytest.mark.parametrize(
    ("zone", "wall", "first", "offset", "second"),
    [
        pytest.param(
            "America/Chicago",
            "2025-11-02T01:30:00",
            "2025-11-02T06:30:00.000Z",
            "-06:00",
            "2025-11-02T07:30:00.000Z",
            id="chicago",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            "2025-04-06T01:45:00",
            "2025-04-05T14:45:00.000Z",
            "+10:30",
            "2025-04-05T15:15:00.000Z",
            id="lord-howe",
        ),
    ],
)
async def test_an_ambiguous_wall_time_is_the_first_unless_it_has_an_offset(
    client: httpx.AsyncClient, zone: str, wall: str, first: str, offset: str, second: str
) -> None:
    plain = await create(client, date=wall, timezone=zone)
    with_offset = await create(client, date=wall + offset, timezone=zone)

    assert plain["date_utc"] == first
    assert with_offset["date_utc"] == second


@pytest.mark.parametrize("zone", ["Mars/Olympus", "america/chicago", "CST6CDT ", ""])
async def test_an_unknown_time_zone_is_422(client: httpx.AsyncClient, zone: str) -> None:
    problem = assert_problem(await client.post(EVENTS, json=event(timezone=zone)), 422)

    assert "timezone" in str(problem["errors"])
    assert await total(client) == 0


async def test_a_floating_date_has_no_instant(client: httpx.AsyncClient) -> None:
    created = await create(client, date="2025-08-20T14:00:00", end="2025-08-20T15:00:00")

    assert (created["date_utc"], created["end_utc"]) == (None, None)


async def test_an_aware_date_is_its_own_instant(client: httpx.AsyncClient) -> None:
    created = await create(client, date="2025-08-20T14:00:00+02:00", timezone="Asia/Tokyo")

    assert (created["date"], created["date_utc"]) == (
        "2025-08-20T12:00:00Z",
        "2025-08-20T12:00:00.000Z",
    )


# --- end ----------------------------------------------------------------------------------


async def test_an_end_before_the_date_is_422(client: httpx.AsyncClient) -> None:
    body = event(date="2025-06-01T12:00:00", end="2025-06-01T11:59:59")

    problem = assert_problem(await client.post(EVENTS, json=body), 422)

    assert "end" in str(problem["errors"])
    assert await total(client) == 0


async def test_an_end_equal_to_the_date_is_a_moment(client: httpx.AsyncClient) -> None:
    created = await create(client, date="2025-06-01T12:00:00Z", end="2025-06-01T12:00:00Z")

    assert created["end_utc"] == created["date_utc"] == "2025-06-01T12:00:00.000Z"


async def test_a_patch_is_checked_against_the_event_it_makes(client: httpx.AsyncClient) -> None:
    created = await create(client, date="2025-06-01T12:00:00", end="2025-06-01T14:00:00")
    url = item(created["id"])

    problem = assert_problem(await client.patch(url, json={"date": "2025-06-01T15:00:00"}), 422)

    assert "end" in str(problem["errors"])
    assert (await client.get(url)).json() == created


async def test_a_patch_into_a_gap_is_422(client: httpx.AsyncClient) -> None:
    created = await create(client, date="2025-03-09T02:30:00")  # floating: exists
    url = item(created["id"])

    problem = assert_problem(await client.patch(url, json={"timezone": "America/Chicago"}), 422)

    assert "does not exist" in str(problem["errors"])
    assert (await client.get(url)).json() == created


# --- status and timestamps ----------------------------------------------------------------


async def test_a_cancelled_event_stays_visible_and_filters_by_status(
    client: httpx.AsyncClient,
) -> None:
    kept = await create(client, "Kept", 1)
    dropped = await create(client, "Dropped", 2)

    patched = await client.patch(item(dropped["id"]), json={"status": "cancelled"})

    assert patched.json()["status"] == "cancelled"
    assert await ids(client) == [kept["id"], dropped["id"]]
    assert await ids(client, status="cancelled") == [dropped["id"]]
    assert await ids(client, status=["scheduled", "postponed"]) == [kept["id"]]
    assert_problem(await client.patch(item(kept["id"]), json={"status": None}), 422)
    assert_problem(await client.get(EVENTS, params={"status": "gone"}), 422)


@pytest.mark.parametrize("stamp", ["created_at", "updated_at", "date_utc", "end_utc"])
async def test_a_client_cannot_set_what_the_server_sets(
    client: httpx.AsyncClient, stamp: str
) -> None:
    body = event(**{stamp: "2020-01-01T00:00:00Z"})

    assert_problem(await client.post(EVENTS, json=body), 422)
    created = await create(client)
    assert_problem(await client.patch(item(created["id"]), json={stamp: None}), 422)


async def test_a_write_moves_updated_at_and_keeps_created_at(client: httpx.AsyncClient) -> None:
    created = await create(client)

    patched = (await client.patch(item(created["id"]), json={"title": "Again"})).json()

    assert created["created_at"] == created["updated_at"]
    assert patched["created_at"] == created["created_at"]
    assert patched["updated_at"] >= created["updated_at"]


async def test_last_modified_and_if_modified_since(client: httpx.AsyncClient) -> None:
    created = await create(client)
    url = item(created["id"])

    first = await client.get(url)
    modified = first.headers["last-modified"]

    assert modified.endswith(" GMT")
    unchanged = await client.get(url, headers={"If-Modified-Since": modified})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert unchanged.headers["last-modified"] == modified
    changed = await client.get(url, headers={"If-Modified-Since": PAST})
    assert changed.status_code == 200
    # If-None-Match wins (RFC 9110 13.2.2): a tag that does not match gets the body.
    both = await client.get(url, headers={"If-Modified-Since": FUTURE, "If-None-Match": '"x"'})
    assert both.status_code == 200
    ignored = await client.get(url, headers={"If-Modified-Since": "not a date"})
    assert ignored.status_code == 200


@pytest.mark.parametrize(
    ("method", "body"),
    [("PUT", event("Replaced")), ("PATCH", {"title": "Patched"}), ("DELETE", None)],
)
async def test_if_unmodified_since_guards_every_write(
    client: httpx.AsyncClient, method: str, body: dict[str, Any] | None
) -> None:
    created = await create(client)
    url = item(created["id"])

    stale = await client.request(method, url, json=body, headers={"If-Unmodified-Since": PAST})

    problem = assert_problem(stale, 412)
    assert problem["etag"] == (await client.get(url)).headers["etag"]
    assert (await client.get(url)).json() == created
    fresh = await client.request(method, url, json=body, headers={"If-Unmodified-Since": FUTURE})
    assert fresh.status_code == 200
    if method != "DELETE":
        assert fresh.headers["last-modified"]


async def test_if_unmodified_since_is_ignored_for_an_absent_event(
    client: httpx.AsyncClient,
) -> None:
    gone = item("0" * 24)

    response = await client.patch(gone, json={"title": "x"}, headers={"If-Unmodified-Since": PAST})

    assert_problem(response, 404)


# --- windows and filters ------------------------------------------------------------------


async def test_an_event_that_overlaps_the_window_is_in_it(client: httpx.AsyncClient) -> None:
    lasting = await create(client, date="2025-06-01T10:00:00Z", end="2025-06-01T12:00:00Z")
    point = await create(client, date="2025-06-01T11:00:00Z")

    assert await ids(client, date_from="2025-06-01T11:30:00Z") == [lasting["id"]]
    assert await ids(client, date_from="2025-06-01T12:00:00Z") == [lasting["id"]]
    assert await ids(client, date_from="2025-06-01T12:00:01Z") == []
    assert await ids(client, date_to="2025-06-01T10:30:00Z") == [lasting["id"]]
    assert await ids(client, date_from="2025-06-01T09:00:00Z", date_to="2025-06-01T09:59:59Z") == []
    both = {lasting["id"], point["id"]}
    assert (
        set(await ids(client, date_from="2025-06-01T11:00:00Z", date_to="2025-06-01T11:00:00Z"))
        == both
    )


async def test_a_long_event_is_found_from_far_inside_it(client: httpx.AsyncClient) -> None:
    long = await create(client, date="2020-01-01T00:00:00Z", end="2030-01-01T00:00:00Z")
    await create(client, date="2026-01-01T00:00:00Z")

    assert long["id"] in await ids(client, date_from="2029-12-31T00:00:00Z")
    response = await client.get(EVENTS, params={"date_from": "2029-12-31T00:00:00Z"})
    assert response.headers["x-total-count"] == "1"


async def test_organizer_matches_exactly_ignoring_case(client: httpx.AsyncClient) -> None:
    acme = await create(client, "A", 1, organizer="Acme Events")
    strasse = await create(client, "B", 2, organizer="Straße")
    await create(client, "C", 3, organizer="Acme")

    assert await ids(client, organizer="ACME EVENTS") == [acme["id"]]
    assert await ids(client, organizer="STRASSE") == [strasse["id"]]
    assert await ids(client, organizer="acme event") == []


async def test_category_repeated_is_any_of_them(client: httpx.AsyncClient) -> None:
    music = await create(client, "A", 1, category="Music")
    sports = await create(client, "B", 2, category="sports")
    await create(client, "C", 3, category="Art")

    assert await ids(client, category=["music", "SPORTS"]) == [music["id"], sports["id"]]
    response = await client.get(EVENTS, params={"category": ["music", "SPORTS"], "limit": 1})
    assert response.headers["x-total-count"] == "2"
    assert "category=music&category=SPORTS" in response.headers["link"]


async def test_sort_by_updated(client: httpx.AsyncClient) -> None:
    first = await create(client, "A", 1)
    second = await create(client, "B", 2)
    await client.patch(item(first["id"]), json={"title": "A again"})

    assert await ids(client, sort="updated") == [second["id"], first["id"]]
    assert await ids(client, sort="-updated") == [first["id"], second["id"]]
