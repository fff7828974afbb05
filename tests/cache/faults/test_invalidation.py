"""A write whose cache invalidation fails during an outage must never let the old cached
value be served once Redis is back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import eventapi.cache.relay
from tests.cache.faults.helpers import Json, fault_settings, health, read_until_hit, replace
from tests.support.api import EVENTS, create
from tests.support.app import RunningApp, run_app
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

LIST_URL = f"{EVENTS}?limit=100"
OUTAGES = ["freeze", "pause-write"]


@contextmanager
def outage(redis_server: RedisServer, kind: str) -> Iterator[None]:
    """Redis stops answering: SIGSTOP (nothing answers; the data is kept), or CLIENT PAUSE
    WRITE (scripts are held back). They differ in what becomes of the timed-out
    invalidation: under SIGSTOP it waits in the server's socket buffer and runs after the
    thaw; under CLIENT PAUSE the server drops it when redis-py closes the connection, so
    only the app's replay can remove the old value."""
    if kind == "freeze":
        redis_server.freeze()
    else:
        assert redis_server.command("CLIENT", "PAUSE", "60000", "WRITE") == b"+OK\r\n"
    try:
        yield
    finally:
        if kind == "freeze":
            redis_server.thaw()
        else:
            redis_server.command("CLIENT", "UNPAUSE")


def outcomes(responses: list[httpx.Response]) -> list[str]:
    return [r.headers["x-cache"] for r in responses]


def assert_recovered_through_a_miss(responses: list[httpx.Response]) -> None:
    """BYPASS while the breaker is open, then the entry is gone (MISS), then HIT."""
    seen = outcomes(responses)
    bypassed = seen.count("BYPASS")
    assert seen == ["BYPASS"] * bypassed + ["MISS", "HIT"], seen


async def cache(http: httpx.AsyncClient, url: str) -> Json | list[Json]:
    responses = await read_until_hit(http, url, step=0.0, max_reads=2)
    assert outcomes(responses) == ["MISS", "HIT"]
    cached: Json | list[Json] = responses[-1].json()
    return cached


@pytest.mark.parametrize("kind", OUTAGES)
async def test_item_written_during_outage_is_never_served_old(
    harness: RunningApp, redis_server: RedisServer, kind: str
) -> None:
    http = harness.http
    event = await create(http, "old title")
    url = f"{EVENTS}/{event['id']}"
    assert await cache(http, url) == event

    with outage(redis_server, kind):
        new = await replace(http, event["id"], "new title")
        assert (await health(http))["redis"] == "disconnected"  # breaker forced open

    # From the very first read after the outage until the cache serves it again: new only.
    responses = await read_until_hit(http, url, step=harness.settings.cache_breaker_reset)
    assert [r.json() for r in responses] == [new] * len(responses)
    assert responses[0].headers["x-cache"] == "BYPASS"
    assert_recovered_through_a_miss(responses)


@pytest.mark.parametrize("kind", OUTAGES)
async def test_list_after_write_during_outage_is_never_served_old(
    harness: RunningApp, redis_server: RedisServer, kind: str
) -> None:
    http = harness.http
    events = [await create(http, f"event {n}", 1 + n) for n in range(3)]
    assert await cache(http, LIST_URL) == events

    with outage(redis_server, kind):
        changed = await replace(http, events[1]["id"], "renamed", day=2)
        added = await create(http, "added during the outage", 9)
    current = [events[0], changed, events[2], added]

    responses = await read_until_hit(http, LIST_URL, step=harness.settings.cache_breaker_reset)
    assert [r.json() for r in responses] == [current] * len(responses)
    assert [r.headers["x-total-count"] for r in responses] == ["4"] * len(responses)
    assert responses[0].headers["x-cache"] == "BYPASS"
    assert_recovered_through_a_miss(responses)


@pytest.mark.parametrize("kind", OUTAGES)
async def test_too_many_writes_during_outage_retire_every_entry(
    harness: RunningApp, redis_server: RedisServer, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventapi.cache.relay, "BATCH", 3)
    http = harness.http
    events = [await create(http, f"event {n}", 1 + n) for n in range(6)]
    for event in events:
        assert await cache(http, f"{EVENTS}/{event['id']}") == event
    assert await cache(http, LIST_URL) == events

    with outage(redis_server, kind):
        # Five writes > BATCH: the relay does not look at each, it retires everything.
        current = [
            await replace(http, e["id"], f"rewritten {n}", day=1 + n)
            for n, e in enumerate(events[:5])
        ]
    current.append(events[5])

    step = harness.settings.cache_breaker_reset
    for expected in current:
        responses = await read_until_hit(http, f"{EVENTS}/{expected['id']}", step=step)
        assert [r.json() for r in responses] == [expected] * len(responses)
        # Every entry was retired, the one never written included: a MISS before any HIT.
        assert_recovered_through_a_miss(responses)
    responses = await read_until_hit(http, LIST_URL, step=step)
    assert [r.json() for r in responses] == [current] * len(responses)


async def blocked_clients(redis_server: RedisServer, count: int) -> list[str]:
    """Bounded poll of CLIENT LIST until ``count`` clients are held back by the pause; their
    ids, oldest first. (Readiness of another process, not a timing assumption.)"""

    def held() -> list[str]:
        listing = redis_server.command("CLIENT", "LIST").decode()
        return [
            fields["id"]
            for fields in (
                dict(part.split("=", 1) for part in line.split() if "=" in part)
                for line in listing.splitlines()
            )
            if "b" in fields.get("flags", "") and fields.get("cmd") == "evalsha"
        ]

    seen = await eventually(
        held, f"{count} paused script calls", step=0.005, until=lambda ids: len(ids) >= count
    )
    return sorted(seen, key=int)


async def test_read_in_flight_when_invalidation_fails_does_not_close_the_breaker(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """A lease sent before an invalidation failed, and answered after it, must not switch
    Redis back on while that invalidation is still undelivered.

    Steps, all ordered by what Redis reports (no timing): under CLIENT PAUSE WRITE the PUT's
    invalidation is held back; a GET's lease is held back behind it; the invalidation's
    connection is killed (that write's invalidation fails and is lost); the pause ends and
    the GET's lease is answered. A generous budget (1 s) keeps every call inside it, and
    a long breaker reset keeps the probe out of the picture.
    """
    settings = fault_settings(tmp_path, redis_server.url, breaker_reset=60.0, cache_timeout=1.0)
    async with run_app(settings) as harness:
        http = harness.http
        event = await create(http, "old title")
        url = f"{EVENTS}/{event['id']}"
        assert await cache(http, url) == event

        assert redis_server.command("CLIENT", "PAUSE", "60000", "WRITE") == b"+OK\r\n"
        try:
            put = asyncio.create_task(
                http.put(url, json={"title": "new title", "date": event["date"]})
            )
            [invalidation] = await blocked_clients(redis_server, 1)
            get = asyncio.create_task(http.get(url))  # began before the PUT was acknowledged
            await blocked_clients(redis_server, 2)
            assert redis_server.command("CLIENT", "KILL", "ID", invalidation) == b":1\r\n"
            put_response = await put
            assert put_response.status_code == 200, put_response.text
            new = put_response.json()
            assert (await health(http))["redis"] == "disconnected"
        finally:
            redis_server.command("CLIENT", "UNPAUSE")
        assert (await get).status_code == 200  # old or new: it raced the write

        # The write was acknowledged; its invalidation never reached Redis.
        after = await http.get(url)
        assert after.json() == new, f"old value served from the cache ({after.headers['x-cache']})"
        assert after.headers["x-cache"] == "BYPASS"
        assert (await health(http))["redis"] == "disconnected"
