"""Shared helpers for the HTTP API tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.types import ASGIApp

EVENTS = "/api/events"
PROBLEM_JSON = "application/problem+json"
EVENT_KEYS = ["id", "title", "description", "date", "location", "category", "organizer"]
ID_PATTERN = re.compile(r"^[0-9a-f]{24}$")
MISSING_ID = "0123456789abcdef01234567"

# The original README's POST example, and what it documents as the response (id aside).
README_POST = {
    "title": "New Conference",
    "description": "Amazing event",
    "date": "2025-12-01T10:00:00",
    "location": "New York, NY",
    "category": "Technology",
    "organizer": "Event Corp",
}

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


def event(**fields: Any) -> dict[str, Any]:
    """A valid request body: title and date, plus (or overridden by) ``fields``."""
    return {"title": "Event", "date": "2025-06-01T12:00:00", **fields}


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(EVENTS, json=event(**fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


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


@asynccontextmanager
async def http_client(
    app: ASGIApp, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app`` with its lifespan and yield an HTTP client talking to it."""
    async with LifespanManager(app) as manager, http_client(manager.app) as http:
        yield http
