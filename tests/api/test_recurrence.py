"""Recurring events through HTTP, on both stores, fast path on and off: a series is listed
once when any occurrence overlaps the window; expand=true lists each occurrence with an id
GET answers; occurrences keep their wall-clock time across daylight-saving changes (checked
against python-dateutil's independent expansion); every write retires every expanded page
and cached occurrence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from dateutil import rrule

from tests.api.helpers import assert_problem, ids
from tests.support.api import EVENTS, create, item

CHICAGO = "America/Chicago"
# Every Tuesday at 18:00 in Chicago until June 2027: across the DST change of 14 March 2027.
TUESDAYS = {
    "title": "Tuesday meetup",
    "date": "2027-01-05T18:00:00",
    "end": "2027-01-05T20:00:00",
    "timezone": CHICAGO,
    "recurrence": "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270601T000000Z",
}
WINDOW = {"date_from": "2027-03-01T00:00:00Z", "date_to": "2027-03-31T23:59:59Z"}


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reference_starts(
    rule: str, wall: datetime, zone: str, low: datetime, high: datetime
) -> list[str]:
    """The occurrences dateutil gives, as UTC instants inside [low, high]."""
    tz = ZoneInfo(zone)
    starts = rrule.rrulestr(rule.replace("Z", ""), dtstart=wall)
    # dateutil compares a naive UNTIL with the naive wall time: take a margin, then filter
    # by the UTC UNTIL the way RFC 5545 says.
    found = [s.replace(tzinfo=tz) for s in starts]
    return [_z(s) for s in found if low <= s <= high]


async def expanded(client: httpx.AsyncClient, **params: Any) -> httpx.Response:
    response = await client.get(EVENTS, params={"expand": "true", "limit": 100, **params})
    assert response.status_code == 200, response.text
    return response


async def test_occurrences_keep_their_wall_clock_time_across_dst(client: httpx.AsyncClient) -> None:
    series = await create(client, **TUESDAYS)

    response = await expanded(client, **WINDOW)

    occurrences = response.json()
    assert [o["date"] for o in occurrences] == [
        "2027-03-02T18:00:00",
        "2027-03-09T18:00:00",
        "2027-03-16T18:00:00",
        "2027-03-23T18:00:00",
        "2027-03-30T18:00:00",
    ]
    # 18:00 CST is 00:00Z; after 14 March, 18:00 CDT is 23:00Z.
    assert [o["date_utc"] for o in occurrences] == [
        "2027-03-03T00:00:00.000Z",
        "2027-03-10T00:00:00.000Z",
        "2027-03-16T23:00:00.000Z",
        "2027-03-23T23:00:00.000Z",
        "2027-03-30T23:00:00.000Z",
    ]
    low, high = (datetime.fromisoformat(WINDOW[k]) for k in ("date_from", "date_to"))
    until = datetime(2027, 6, 1, tzinfo=UTC)
    reference = reference_starts(
        TUESDAYS["recurrence"], datetime(2027, 1, 5, 18), CHICAGO, low, min(high, until)
    )
    assert [o["date_utc"] for o in occurrences] == reference
    assert all(o["end"][11:] == "20:00:00" for o in occurrences)
    assert all(o["series_id"] == series["id"] for o in occurrences)
    assert occurrences[0]["id"] == f"{series['id']}_20270303T000000Z"
    assert response.headers["x-total-count"] == "5"


async def test_the_last_occurrence_is_before_until(client: httpx.AsyncClient) -> None:
    await create(client, **TUESDAYS)

    occurrences = (
        await expanded(client, date_from="2027-05-01T00:00:00Z", date_to="2027-12-31T00:00:00Z")
    ).json()

    # 25 May 18:00 CDT is 23:00Z, before UNTIL (1 June 00:00Z); 1 June 18:00 is after it.
    assert [o["date"] for o in occurrences][-1] == "2027-05-25T18:00:00"


async def test_a_series_is_listed_once_when_an_occurrence_overlaps(
    client: httpx.AsyncClient,
) -> None:
    series = await create(client, **TUESDAYS)
    single = await create(client, "Single", 1, date="2027-03-10T12:00:00Z")

    assert await ids(client, **WINDOW) == [series["id"], single["id"]]
    # A Wednesday: between two occurrences (Tuesday 18:00-20:00), so the series is not in it.
    wednesday = {"date_from": "2027-03-10T12:00:00Z", "date_to": "2027-03-10T13:00:00Z"}
    assert await ids(client, **wednesday) == [single["id"]]
    # Inside an occurrence that started before the window.
    during = {"date_from": "2027-03-17T00:30:00Z", "date_to": "2027-03-17T00:45:00Z"}
    assert await ids(client, **during) == [series["id"]]


async def test_expanded_pages_count_and_link_occurrences(client: httpx.AsyncClient) -> None:
    series = await create(client, **TUESDAYS)
    single = await create(client, "Single", 1, date="2027-03-10T12:00:00Z")

    first = await client.get(EVENTS, params={"expand": "true", "limit": 2, **WINDOW})
    second = await client.get(EVENTS, params={"expand": "true", "limit": 2, "offset": 2, **WINDOW})

    assert first.headers["x-total-count"] == "6"
    assert 'rel="next"' in first.headers["link"]
    assert "expand=true" in first.headers["link"]
    names = [o["id"] for o in first.json() + second.json()]
    assert names[:3] == [
        f"{series['id']}_20270303T000000Z",
        f"{series['id']}_20270310T000000Z",
        single["id"],  # 12:00Z, after the occurrence at 00:00Z that day
    ]


async def test_an_occurrence_id_answers_a_get(client: httpx.AsyncClient) -> None:
    series = await create(client, **TUESDAYS)
    [listed, *_] = (await expanded(client, **WINDOW)).json()

    response = await client.get(item(listed["id"]))

    assert response.status_code == 200
    assert response.json() == listed
    assert response.headers["last-modified"]
    upper = await client.get(item(listed["id"][:24].upper() + listed["id"][24:]))
    assert upper.json() == listed
    assert_problem(await client.get(item(f"{series['id']}_20270304T000000Z")), 404)
    assert_problem(await client.get(item(f"{series['id']}_20271399T000000Z")), 404)
    assert_problem(await client.get(item(f"{'0' * 24}_20270303T000000Z")), 404)


async def test_a_write_to_the_series_reaches_its_cached_occurrences(
    client: httpx.AsyncClient,
) -> None:
    series = await create(client, **TUESDAYS)
    [listed, *_] = (await expanded(client, **WINDOW)).json()
    await client.get(item(listed["id"]))  # cached now
    assert (await client.get(item(listed["id"]))).headers["x-cache"] in ("HIT", "BYPASS")

    await client.patch(item(series["id"]), json={"title": "Renamed"})

    assert (await client.get(item(listed["id"]))).json()["title"] == "Renamed"
    assert {o["title"] for o in (await expanded(client, **WINDOW)).json()} == {"Renamed"}
    await client.patch(item(series["id"]), json={"exdates": ["2027-03-02T18:00:00"]})
    assert_problem(await client.get(item(listed["id"])), 404)
    assert len((await expanded(client, **WINDOW)).json()) == 4
    await client.delete(item(series["id"]))
    assert (await expanded(client, **WINDOW)).json() == []


async def test_exdates_skip_occurrences(client: httpx.AsyncClient) -> None:
    await create(client, **TUESDAYS, exdates=["2027-03-09T18:00:00", "2027-03-23T23:00:00Z"])

    occurrences = (await expanded(client, **WINDOW)).json()

    assert [o["date"][:10] for o in occurrences] == ["2027-03-02", "2027-03-16", "2027-03-30"]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=SECONDLY",
        "FREQ=MINUTELY;COUNT=3",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=DAILY;COUNT=1001",
        "nonsense",
    ],
)
async def test_a_bad_rule_is_422(client: httpx.AsyncClient, rule: str) -> None:
    problem = assert_problem(await client.post(EVENTS, json={**TUESDAYS, "recurrence": rule}), 422)

    assert "recurrence" in str(problem["errors"])


async def test_exdates_need_a_recurrence(client: httpx.AsyncClient) -> None:
    body = {"title": "x", "date": "2027-01-05T18:00:00", "exdates": ["2027-01-05T18:00:00"]}

    assert_problem(await client.post(EVENTS, json=body), 422)


async def test_a_rule_with_no_occurrence_is_422(client: httpx.AsyncClient) -> None:
    body = {**TUESDAYS, "recurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}

    assert_problem(await client.post(EVENTS, json=body), 422)


@pytest.mark.parametrize(
    "window", [{}, {"date_from": "2027-01-01T00:00:00Z"}, {"date_to": "2027-01-01T00:00:00Z"}]
)
async def test_expand_needs_both_ends_of_the_window(
    client: httpx.AsyncClient, window: dict[str, str]
) -> None:
    assert_problem(await client.get(EVENTS, params={"expand": "true", **window}), 422)


async def test_an_unbounded_series_is_cut_at_its_bound(client: httpx.AsyncClient) -> None:
    await create(client, title="Daily", date="2025-01-01T09:00:00Z", recurrence="FREQ=DAILY")

    response = await client.get(
        EVENTS,
        params={
            "expand": "true",
            "date_from": "2025-01-01T00:00:00Z",
            "date_to": "2035-01-01T00:00:00Z",
            "limit": 1,
        },
    )

    assert response.headers["x-total-count"] == "1000"


async def test_exdates_that_skip_every_occurrence_are_422(client: httpx.AsyncClient) -> None:
    """A series always has an occurrence (the window query relies on it: sqlite_query.py)."""
    body: dict[str, Any] = {**TUESDAYS, "recurrence": "FREQ=WEEKLY;COUNT=2"}
    every = ["2027-01-05T18:00:00", "2027-01-12T18:00:00"]

    problem = assert_problem(await client.post(EVENTS, json={**body, "exdates": every}), 422)

    assert "exdates skip every one" in str(problem["errors"])
    first = ["2027-01-05T18:00:00"]  # the first skipped, the second left: fine
    assert (await client.post(EVENTS, json={**body, "exdates": first})).status_code == 201


@pytest.mark.parametrize("sort", ["date", "-date", "title", "-title", "updated", "-updated"])
async def test_expanded_pages_follow_every_sort(client: httpx.AsyncClient, sort: str) -> None:
    """Each store orders occurrences by the sort's key, then the id, then the start (on
    MongoDB two reads merged: mongo.py)."""
    await create(client, **{**TUESDAYS, "title": "B series"})
    second = {"title": "A series", "date": "2027-01-06T09:00:00", "end": "2027-01-06T10:00:00"}
    await create(client, **{**TUESDAYS, **second})
    await create(client, "C single", 1, date="2027-03-10T12:00:00Z")
    every = (await expanded(client, **WINDOW)).json()

    keys = {
        "date": lambda o: (o["date_utc"], o.get("series_id", o["id"])),
        "title": lambda o: (o["title"], o.get("series_id", o["id"]), o["date_utc"]),
        "updated": lambda o: (o["updated_at"], o.get("series_id", o["id"]), o["date_utc"]),
    }
    key = keys[sort.removeprefix("-")]
    expected = sorted(every, key=key, reverse=sort.startswith("-"))
    pages = [
        (await expanded(client, **WINDOW, sort=sort, limit=3, offset=at)).json()
        for at in range(0, len(every), 3)
    ]
    assert [o["id"] for page in pages for o in page] == [o["id"] for o in expected]


async def test_an_expanded_page_is_at_most_10000_deep(client: httpx.AsyncClient) -> None:
    deep = await client.get(EVENTS, params={"expand": "true", "offset": 10_001, **WINDOW})

    assert "narrow the window" in str(assert_problem(deep, 422)["errors"])
    assert (await expanded(client, offset=10_000, **WINDOW)).json() == []


async def test_an_occurrence_moved_out_of_a_gap_onto_the_next_counts_once(
    client: httpx.AsyncClient,
) -> None:
    """Lord Howe skips 02:00-02:30 on 4 October 2026: 02:15 moves on to 02:45, where the next
    occurrence is. RFC 5545 ignores the duplicate; it was a 503 (the occurrence stored twice)."""
    made = await create(
        client,
        "Quarter past and to",
        date="2026-10-04T01:15:00",
        timezone="Australia/Lord_Howe",
        recurrence="FREQ=HOURLY;BYMINUTE=15,45;COUNT=6",
    )
    window = {"date_from": "2026-10-03T00:00:00Z", "date_to": "2026-10-05T00:00:00Z"}

    listed = await client.get(EVENTS, params={**window, "expand": "true"})

    starts = [o["date_utc"] for o in listed.json() if o["series_id"] == made["id"]]
    assert starts == [
        "2026-10-03T14:45:00.000Z",
        "2026-10-03T15:15:00.000Z",
        "2026-10-03T15:45:00.000Z",  # 02:15 moved out of the gap, and 02:45 itself
        "2026-10-03T16:15:00.000Z",
        "2026-10-03T16:45:00.000Z",
    ]
