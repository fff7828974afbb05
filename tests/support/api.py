"""The HTTP API as the tests speak it: paths, request bodies, and the calls every suite makes."""

from __future__ import annotations

from typing import Any

import httpx

EVENTS = "/api/events"
MISSING_ID = "0123456789abcdef01234567"

# The original README's examples. Test data, on purpose not taken from eventapi: the tests
# check that the code still matches what the README documented.
README_POST = {  # the POST example; its documented response is this plus an id
    "title": "New Conference",
    "description": "Amazing event",
    "date": "2025-12-01T10:00:00",
    "location": "New York, NY",
    "category": "Technology",
    "organizer": "Event Corp",
}
CURL_BODY = {  # the curl example: no organizer
    "title": "Test Event",
    "description": "Testing API",
    "date": "2025-12-01T10:00:00",
    "location": "Test City",
    "category": "Test",
}
PYTHON_BODY = {  # the Python (requests) example
    "title": "Workshop 2025",
    "description": "Hands-on coding workshop",
    "date": "2025-11-20T14:00:00",
    "location": "Bengaluru, India",
    "category": "Education",
}
MUSIC_FESTIVAL = {  # the "Get Single Event" response
    "id": "68ed254e36d0233aa05afbe9",
    "title": "Music Festival",
    "description": "Three-day outdoor music festival",
    "date": "2025-08-20T14:00:00",
    "location": "Austin, TX",
    "category": "Music",
    "organizer": "Live Nation",
}


def item(event_id: str) -> str:
    return f"{EVENTS}/{event_id}"


def event(title: str = "Event", day: int = 1, /, **fields: Any) -> dict[str, Any]:
    """A valid request body: ``title``, a date on June ``day`` 2025 at noon, plus (or
    overridden by) ``fields``. ``title`` and ``day`` are positional only (``event("Gala", 3)``):
    any field passed by name is a body field, so ``event(title="Gala")`` works as well."""
    return {"title": title, "date": f"2025-06-{day:02d}T12:00:00", **fields}


async def create(
    http: httpx.AsyncClient, title: str = "Event", day: int = 1, /, **fields: Any
) -> dict[str, Any]:
    """POST ``event(title, day, **fields)``; the created event."""
    response = await http.post(EVENTS, json=event(title, day, **fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
