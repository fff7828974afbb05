"""GET /api/events.ics and GET /api/events/{id}.ics through the app, on both stores with the
fast path on and off: text/calendar that icalendar parses, a stable UID, SEQUENCE rising with
every change, cached with ETag/304 and never stale after a write, paged by the list's
cursors; and (with node) the occurrences ical.js expands from the feed equal the API's own
expand=true occurrences for the same window."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import icalendar
import pytest

from eventapi.events import ical
from eventapi.events.store import EventStore
from eventapi.settings import Settings
from tests.api.helpers import assert_problem, links
from tests.ical.conftest import Expand
from tests.support.api import EVENTS, create, item
from tests.support.app import run_app

CALENDAR = f"{EVENTS}.ics"


def vevents(response: httpx.Response) -> list[Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    parsed = icalendar.Calendar.from_ical(response.content)
    return list(parsed.walk("VEVENT"))


async def test_the_feed_is_every_event_as_a_vevent(client: httpx.AsyncClient) -> None:
    a = await create(client, "Jazz, Night; Live", 3, timezone="Europe/London")
    b = await create(client, "Gone", 4, status="cancelled")

    found = {str(v["UID"]): v for v in vevents(await client.get(CALENDAR))}

    assert set(found) == {f"{a['id']}@eventapi", f"{b['id']}@eventapi"}
    assert str(found[f"{a['id']}@eventapi"]["SUMMARY"]) == "Jazz, Night; Live"
    assert found[f"{a['id']}@eventapi"]["DTSTART"].params["TZID"] == "Europe/London"
    assert str(found[f"{b['id']}@eventapi"]["STATUS"]) == "CANCELLED"


async def test_a_written_event_is_never_served_from_an_old_calendar(
    client: httpx.AsyncClient,
) -> None:
    made = await create(client, "Before")
    first = await client.get(item(made["id"]) + ".ics")
    again = await client.get(
        item(made["id"]) + ".ics", headers={"If-None-Match": first.headers["etag"]}
    )
    listed = await client.get(CALENDAR)

    await client.patch(item(made["id"]), json={"title": "After"})
    after = await client.get(item(made["id"]) + ".ics")
    listed_after = await client.get(CALENDAR)

    assert (first.headers["x-cache"], again.status_code, again.headers["x-cache"]) == (
        "MISS",
        304,
        "HIT",
    )
    [before_event], [after_event] = vevents(first), vevents(after)
    assert str(after_event["SUMMARY"]) == "After"
    assert after_event["SEQUENCE"] > before_event["SEQUENCE"]
    assert after.headers["etag"] != first.headers["etag"]
    assert [str(v["SUMMARY"]) for v in vevents(listed)] == ["Before"]
    assert [str(v["SUMMARY"]) for v in vevents(listed_after)] == ["After"]


async def test_sequence_rises_with_every_change(client: httpx.AsyncClient) -> None:
    made = await create(client, "s")
    sequences = []
    for n in range(4):
        [event] = vevents(await client.get(item(made["id"]) + ".ics"))
        sequences.append(int(event["SEQUENCE"]))
        await client.patch(item(made["id"]), json={"description": f"v{n}"})

    assert sequences == sorted(set(sequences))


async def test_a_feed_pages_by_the_lists_cursors(client: httpx.AsyncClient) -> None:
    made = [await create(client, f"e{n}", n + 1) for n in range(5)]
    seen: list[str] = []
    url: str | None = f"{CALENDAR}?limit=2"
    while url is not None:
        response = await client.get(url)
        seen += [str(v["UID"]) for v in vevents(response)]
        assert response.headers["x-total-count"] == "5"
        url = links(response).get("next")
        assert url is None or url.startswith(CALENDAR + "?")

    assert seen == [f"{e['id']}@eventapi" for e in made]


async def test_refusals_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get(item("0123456789abcdef01234567") + ".ics")
    expanded = await client.get(CALENDAR, params={"expand": "true"})
    too_many = await client.get(CALENDAR, params={"limit": 501})

    assert_problem(missing, 404)
    assert_problem(expanded, 422)
    assert_problem(too_many, 422)


SERIES: list[dict[str, Any]] = [
    # Weekly in Chicago across the March and November changes, one week skipped.
    {
        "title": "Chicago weekly",
        "date": "2026-02-03T10:00:00",
        "end": "2026-02-03T11:30:00",
        "timezone": "America/Chicago",
        "recurrence": "FREQ=WEEKLY;BYDAY=TU;UNTIL=20261201T000000Z",
        "exdates": ["2026-03-17T10:00:00"],
    },
    # The last Sunday of each month in London (the changes fall on some of them).
    {
        "title": "London monthly",
        "date": "2026-01-25T09:30:00",
        "end": "2026-01-25T10:00:00",
        "timezone": "Europe/London",
        "recurrence": "FREQ=MONTHLY;BYDAY=-1SU;COUNT=14",
    },
    # Lord Howe: a 30-minute shift, in April and October.
    {
        "title": "Lord Howe daily",
        "date": "2026-03-30T12:00:00",
        "end": "2026-03-30T12:45:00",
        "timezone": "Australia/Lord_Howe",
        "recurrence": "FREQ=DAILY;INTERVAL=3;COUNT=80",
    },
    # In UTC, every other day.
    {
        "title": "UTC",
        "date": "2026-05-01T08:00:00Z",
        "recurrence": "FREQ=DAILY;INTERVAL=2;COUNT=40",
    },
]


@pytest.mark.system  # runs node
async def test_icaljs_expands_the_feed_to_the_apis_own_occurrences(
    client: httpx.AsyncClient, icaljs: Expand
) -> None:
    made = {(await create(client, **body))["id"]: body["title"] for body in SERIES}
    start, stop = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    window = {"date_from": "2026-01-01T00:00:00Z", "date_to": "2027-01-01T00:00:00Z"}

    feed = await client.get(CALENDAR)
    parsed = icaljs(feed.content, start, stop)
    expanded: dict[str, list[tuple[str, str | None]]] = {}
    offset = 0
    while True:
        page = await client.get(
            EVENTS, params={**window, "expand": "true", "limit": 100, "offset": offset}
        )
        for occurrence in page.json():
            at = (occurrence["date_utc"], occurrence["end_utc"])
            expanded.setdefault(occurrence["series_id"], []).append(at)
        if len(page.json()) < 100:
            break
        offset += 100

    def instant(text: str) -> str:
        return datetime.fromisoformat(text).astimezone(UTC).isoformat()

    by_ical = {
        e["uid"].removesuffix("@eventapi"): [
            (instant(o["start"]["utc"]), instant(o["end"]["utc"]) if o["end"] else None)
            for o in e["occurrences"]
            if datetime.fromisoformat(o["start"]["utc"]) < stop
        ]
        for e in parsed["events"]
    }
    by_api = {
        series: [(instant(s), instant(e) if e else instant(s)) for s, e in sorted(times)]
        for series, times in expanded.items()
    }
    assert set(by_ical) == set(made)
    for series, title in made.items():
        assert by_ical[series] == by_api[series], title
        assert len(by_api[series]) > 10, title


@pytest.mark.parametrize("path", ["list", "event"])
async def test_a_calendar_is_rendered_off_the_event_loop(
    store: EventStore, settings: Settings, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A page of long series takes seconds of CPU to render: the process's other requests
    must be answered meanwhile. The rendering here waits until one has been; on the event
    loop it would wait for ever (here: 10 s, then fail)."""
    entered, released = threading.Event(), threading.Event()
    render = ical.calendar

    def held(*args: Any) -> bytes:
        entered.set()
        assert released.wait(10), "nothing was answered while the calendar was rendered"
        return render(*args)

    monkeypatch.setattr(ical, "calendar", held)
    async with run_app(settings, store) as app:
        made = await create(app.http, "e")
        url = CALENDAR if path == "list" else item(made["id"]) + ".ics"
        rendering = asyncio.create_task(app.http.get(url))
        assert await asyncio.to_thread(entered.wait, 10)
        meanwhile = await app.http.get(item(made["id"]))
        released.set()
        answered = await rendering

    assert meanwhile.status_code == 200
    assert answered.status_code == 200
