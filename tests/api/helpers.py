"""Helpers for the HTTP API tests: the response shapes the API promises, and list reads."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.api import EVENTS

PROBLEM_JSON = "application/problem+json"
ORIGINAL_KEYS = ["id", "title", "description", "date", "location", "category", "organizer"]
CALENDAR_KEYS = ["end", "timezone", "status", "recurrence", "exdates"]
SERVER_KEYS = ["created_at", "updated_at", "date_utc", "end_utc"]
EVENT_KEYS = [*ORIGINAL_KEYS, *CALENDAR_KEYS, *SERVER_KEYS]
ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
CALENDAR_DEFAULTS: dict[str, Any] = {**dict.fromkeys(CALENDAR_KEYS), "status": "scheduled"}


def fields(body: dict[str, Any]) -> dict[str, Any]:
    """An event body without what the server sets (its stamps and UTC instants)."""
    return {key: value for key, value in body.items() if key not in SERVER_KEYS}


def with_defaults(original: dict[str, Any]) -> dict[str, Any]:
    """The fields an event has when only the original API's were sent."""
    return {**CALENDAR_DEFAULTS, **original}


# Text that must never reach a client: stack traces, driver and database messages.
LEAKS = (
    "traceback",
    'file "',
    "pymongo",
    "mongomock",
    "bson",
    "sqlite",
    "aiosqlite",
    "serverselection",
    "connection refused",
    "errno",
    "127.0.0.1",
    "site-packages",
)


async def total(client: httpx.AsyncClient) -> int:
    response = await client.get(EVENTS, params={"limit": 1})
    assert response.status_code == 200, response.text
    return int(response.headers["x-total-count"])


async def ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


def assert_no_leak(response: httpx.Response) -> None:
    text = response.text.casefold()
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked in {response.text}"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document with this status, and nothing internal in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str), key
        assert body[key], key
    assert body["type"].startswith("https://")
    if status == 422:
        errors = body["errors"]
        assert isinstance(errors, list)
        assert errors
        for error in errors:
            assert set(error) == {"loc", "msg", "type"}
    assert_no_leak(response)
    return body


LINK = re.compile(r'<([^>]*)>;\s*rel="([^"]+)"')


def links(response: httpx.Response) -> dict[str, str]:
    """RFC 8288 Link header -> {relation: URL}; each relation must appear once."""
    pairs = LINK.findall(response.headers["link"])
    rels = [rel for _, rel in pairs]
    assert len(rels) == len(set(rels)), rels
    return {rel: url for url, rel in pairs}


def link_query(url: str) -> dict[str, str]:
    """The query of a relative link URL, one value per parameter."""
    parts = urlsplit(url)
    assert not parts.scheme
    assert not parts.netloc
    assert parts.path == EVENTS
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}
