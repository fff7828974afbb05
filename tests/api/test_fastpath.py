"""The list fast path (http/fastpath.py): a query string the route has validated is answered
again without routing, with the route's own answer; anything else still reaches the route.
(The whole API suite also runs with the fast path on and off: one contract.)"""

from __future__ import annotations

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from eventapi.events.known_queries import KnownQueries
from eventapi.events.schemas import EventQuery
from eventapi.events.store import EventStore
from eventapi.http.fastpath import ReadEdge
from eventapi.settings import Settings
from tests.support.api import EVENTS, create
from tests.support.app import RunningApp, http_client, run_app

# Headers that differ between any two answers, whoever gives them.
PER_REQUEST = {"date", "x-request-id", "x-cache"}


def answer(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    headers = {k: v for k, v in response.headers.items() if k not in PER_REQUEST}
    return response.status_code, headers, response.content


async def routed_through(running: RunningApp, paths: list[str]) -> list[str]:
    """GET each path through the fast path in front of a recorder standing in for FastAPI
    (with the running app's state): what reached the recorder."""
    reached: list[str] = []

    async def router(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(f"{scope['path']}?{scope['query_string'].decode()}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = ReadEdge(router)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["state"] = {"runtime": running.runtime}
        await fast(scope, receive, send)

    async with http_client(app) as http:
        for path in paths:
            await http.get(path)
    return reached


async def test_a_validated_query_string_is_answered_without_routing(
    store: EventStore, settings: Settings
) -> None:
    async with run_app(settings, store) as running:
        await create(running.http, "Gig", category="Music")
        learned = f"{EVENTS}?category=Music&limit=5"
        first = await running.http.get(learned)  # the route: validates, learns

        reached = await routed_through(
            running, [learned, f"{EVENTS}?limit=5&category=Music", f"{EVENTS}?limit=0"]
        )

        assert first.status_code == 200
        # The learned string, byte for byte, never reached the route; the same query in
        # another order, and an invalid one, did.
        assert reached == [f"{EVENTS}?limit=5&category=Music", f"{EVENTS}?limit=0"]


async def test_the_fast_path_gives_the_route_s_answer(
    store: EventStore, settings: Settings
) -> None:
    async with run_app(settings, store) as running:
        for day in range(1, 4):
            await create(running.http, f"Gig {day}", day, category="Music")
        path = f"{EVENTS}?category=Music&limit=2&sort=-date"

        routed = await running.http.get(path)
        fast = await running.http.get(path)
        not_modified = await running.http.get(
            path, headers={"If-None-Match": routed.headers["etag"]}
        )

        assert (routed.headers["x-cache"], fast.headers["x-cache"]) == ("MISS", "HIT")
        assert answer(fast) == answer(routed)
        assert [e["title"] for e in fast.json()] == ["Gig 3", "Gig 2"]
        assert fast.headers["x-total-count"] == "3"
        assert 'rel="next"' in fast.headers["link"]
        assert not_modified.status_code == 304
        assert not_modified.headers["etag"] == routed.headers["etag"]


async def test_a_learned_query_is_never_stale_after_a_write(
    store: EventStore, settings: Settings
) -> None:
    async with run_app(settings, store) as running:
        path = f"{EVENTS}?category=Music"
        assert (await running.http.get(path)).json() == []
        assert (await running.http.get(path)).headers["x-cache"] == "HIT"

        created = await create(running.http, "New gig", category="Music")

        after = await running.http.get(path)
        assert [e["id"] for e in after.json()] == [created["id"]]
        assert after.headers["x-cache"] == "MISS"


@pytest.mark.parametrize("query", ["limit=0", "sort=nope", "date_from=tomorrow", "extra=1"])
async def test_an_invalid_query_is_never_learned(
    store: EventStore, settings: Settings, query: str
) -> None:
    async with run_app(settings, store) as running:
        for _ in range(2):
            response = await running.http.get(f"{EVENTS}?{query}")
            assert response.status_code == 422
            assert response.headers["content-type"] == "application/problem+json"
        assert len(running.known_queries) == 0


def test_known_queries_are_bounded_and_forget_the_oldest_first() -> None:
    known = KnownQueries(size=2)
    queries = {
        raw: EventQuery.model_validate({"limit": n}) for n, raw in enumerate((b"a", b"b", b"c"), 1)
    }
    for raw, query in queries.items():
        known.learn(raw, query)
    known.learn(b"c", queries[b"c"])  # learned again: nothing more is forgotten

    assert len(known) == 2
    assert known.get(b"a") is None
    assert known.get(b"b") == queries[b"b"]
    assert known.get(b"c") == queries[b"c"]
