"""Uncached list queries are admitted per client and per process (events/admission.py):
one more is refused at once (429 for the client over its share, 503 when the process is
full), never queued; cached pages, item reads and writes do not count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.settings import Settings
from tests.support.api import EVENTS, create
from tests.support.app import run_app
from tests.support.gated_store import Gate, GatedStore
from tests.support.settings import app_settings

PER_PROCESS = 2
PER_CLIENT = 1


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return app_settings(
        tmp_path, list_queries_per_process=PER_PROCESS, list_queries_per_client=PER_CLIENT
    )


@asynccontextmanager
async def clients(
    settings: Settings, store: EventStore, fast_path: bool, count: int
) -> AsyncIterator[tuple[GatedStore, list[httpx.AsyncClient]]]:
    """The app over a GatedStore; one HTTP client per client address 10.0.0.n."""
    gated = GatedStore(store)
    try:
        async with (
            run_app(settings, gated, fast_path=fast_path) as running,
            AsyncExitStack() as stack,
        ):
            made = [
                await stack.enter_async_context(running.client(f"10.0.0.{n}"))
                for n in range(1, count + 1)
            ]
            yield gated, made
    finally:
        gated.open_all()


async def paused_list(
    gated: GatedStore, http: httpx.AsyncClient, q: str
) -> tuple[Gate, asyncio.Task[httpx.Response]]:
    """An uncached list query, held inside the store until its gate opens."""
    gate = gated.arm("list")
    task = asyncio.create_task(http.get(EVENTS, params={"q": q}))
    await asyncio.wait_for(gate.read_done.wait(), 5.0)
    return gate, task


async def test_past_its_share_a_client_gets_429_and_past_the_process_bound_503(
    store: EventStore, settings: Settings, fast_path: bool
) -> None:
    async with clients(settings, store, fast_path, 3) as (gated, (a, b, c)):
        event = await create(a, "one")
        first_gate, first = await paused_list(gated, a, "first")

        # Client a is at its share: refused at once, with Retry-After, nothing queued.
        refused = await a.get(EVENTS, params={"q": "second"})
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["status"] == 429

        second_gate, second = await paused_list(gated, b, "third")  # b has its own share
        # The process is full now: client c, under its share, gets 503 at once.
        busy = await c.get(EVENTS, params={"q": "fourth"})
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "1"

        # What does not run an uncached list query is not held back.
        item = await c.get(f"{EVENTS}/{event['id']}")
        assert item.status_code == 200
        created = await c.post(EVENTS, json={"title": "two", "date": "2025-06-01T12:00:00"})
        assert created.status_code == 201

        first_gate.open()
        second_gate.open()
        assert (await first).status_code == 200
        assert (await second).status_code == 200
        # Room again, for everyone.
        assert (await c.get(EVENTS, params={"q": "fourth"})).status_code == 200
        assert (await a.get(EVENTS, params={"q": "second"})).status_code == 200


async def test_a_cached_page_is_served_whatever_runs(
    store: EventStore, settings: Settings, fast_path: bool
) -> None:
    async with clients(settings, store, fast_path, 2) as (gated, (a, b)):
        await create(a, "one")
        assert (await a.get(EVENTS, params={"q": "one"})).status_code == 200  # now cached
        gates = [await paused_list(gated, b, "x")]
        gates.append(await paused_list(gated, a, "y"))  # the process is full
        cached = await a.get(EVENTS, params={"q": "one"})
        assert cached.status_code == 200
        assert cached.headers["x-cache"] == "HIT"
        for gate, task in gates:
            gate.open()
            assert (await task).status_code == 200


async def test_when_full_a_query_string_never_seen_is_refused_before_it_is_parsed(
    store: EventStore, settings: Settings, fast_path: bool
) -> None:
    """http/fastpath.py (shedding): a query string the process has not validated is refused by the
    admission's answer before it is parsed (a malformed one too: 503, not 422), so that
    refusing costs the event loop little; a validated one still reaches its cached page."""
    async with clients(settings, store, fast_path, 3) as (gated, (a, b, c)):
        await create(a, "one")
        assert (await c.get(EVENTS, params={"q": "one"})).status_code == 200  # validated
        calls = gated.calls["list"]
        gates = [await paused_list(gated, a, "x"), await paused_list(gated, b, "y")]

        malformed = await c.get(EVENTS, params={"limit": "many"})
        assert malformed.status_code == 503, malformed.text
        assert malformed.headers["retry-after"] == "1"
        assert malformed.json()["instance"] == EVENTS
        # Client a, at its share, is told so (429) before its query is read.
        assert (await a.get(EVENTS, params={"q": "z", "limit": "x"})).status_code == 429
        assert (await c.get(EVENTS, params={"q": "one"})).headers["x-cache"] == "HIT"
        assert gated.calls["list"] == calls + 2  # only the two held queries reached it

        for gate, task in gates:
            gate.open()
            assert (await task).status_code == 200
        # Room again: the same malformed query is parsed, and refused for what it is.
        assert (await c.get(EVENTS, params={"limit": "many"})).status_code == 422


async def test_a_page_of_the_change_feed_takes_a_place_like_an_uncached_list_query(
    store: EventStore, settings: Settings, fast_path: bool
) -> None:
    """GET /api/changes reads up to a thousand changes and their events from the store on
    every call (it is never cached): without the admission, a client asking for pages as
    fast as it can would have the process's store and CPU to itself."""
    async with clients(settings, store, fast_path, 3) as (gated, (a, b, c)):
        await create(a, "one")
        gate = gated.arm("get_many")
        paged = asyncio.create_task(a.get("/api/changes", params={"limit": 1000}))
        await asyncio.wait_for(gate.read_done.wait(), 5.0)

        refused = await a.get("/api/changes")
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["content-type"] == "application/problem+json"
        listed_gate, listed = await paused_list(gated, b, "other")  # the process is full now
        busy = await c.get("/api/changes")
        assert busy.status_code == 503, busy.text

        gate.open()
        listed_gate.open()
        assert (await paged).status_code == 200
        assert (await listed).status_code == 200
        assert (await a.get("/api/changes")).status_code == 200
