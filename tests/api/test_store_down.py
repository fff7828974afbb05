"""The database stops answering: 503 problem+json, unhealthy, then recovery without restart."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.settings import Settings
from eventapi.storage.mongo import MongoEventStore
from tests.api.helpers import assert_problem
from tests.support.api import EVENTS, MISSING_ID, create, event
from tests.support.app import run_app
from tests.support.flaky import FlakyStore
from tests.support.settings import app_settings

BOUND = 3.0  # seconds; the only timing in these tests: a hang must fail, not block the run


def assert_unavailable(response: httpx.Response) -> None:
    problem = assert_problem(response, 503)
    assert problem["type"] == "https://eventapi.dev/problems/store-unavailable"


def expected_health(backend: str, database: str) -> dict[str, Any]:
    return {
        "status": "healthy" if database == "connected" else "unhealthy",
        "redis": "not configured",
        "mongodb": database if backend == "mongodb" else "not configured",
        "store": backend,
        "database": database,
    }


async def test_every_endpoint_is_503_while_the_store_is_down_and_recovers(
    flaky_client: httpx.AsyncClient, flaky: FlakyStore
) -> None:
    created = await create(flaky_client, title="Before")
    url = f"{EVENTS}/{created['id']}"
    flaky.down = True

    assert_unavailable(await flaky_client.get(EVENTS))
    assert_unavailable(await flaky_client.get(url))
    assert_unavailable(await flaky_client.get(f"{EVENTS}/{MISSING_ID}"))
    assert_unavailable(await flaky_client.post(EVENTS, json=event(title="During")))
    assert_unavailable(await flaky_client.put(url, json=event(title="During")))
    assert_unavailable(await flaky_client.patch(url, json={"title": "During"}))
    assert_unavailable(await flaky_client.delete(url))
    health = await flaky_client.get("/health")
    assert health.status_code == 503
    assert health.headers["content-type"] == "application/json"
    assert health.json() == expected_health(flaky.backend, "disconnected")

    flaky.down = False

    listed = await flaky_client.get(EVENTS)
    assert listed.status_code == 200
    assert listed.json() == [created]  # nothing written while down
    assert (await flaky_client.get(url)).json() == created
    health = await flaky_client.get("/health")
    assert health.status_code == 200
    assert health.json() == expected_health(flaky.backend, "connected")
    after = await flaky_client.post(EVENTS, json=event(title="After"))
    assert after.status_code == 201
    assert (await flaky_client.delete(url)).status_code == 200


async def test_validation_still_answers_422_while_the_store_is_down(
    flaky_client: httpx.AsyncClient, flaky: FlakyStore
) -> None:
    flaky.down = True

    assert_problem(await flaky_client.post(EVENTS, json={"title": ""}), 422)
    assert_problem(await flaky_client.get(f"{EVENTS}/nope"), 422)
    assert flaky.calls == []


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A TCP port bound (so nobody else takes it) but not listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


async def test_real_mongodb_client_with_no_server_answers_503(dead_port: int) -> None:
    url = f"mongodb://127.0.0.1:{dead_port}/eventapi"

    @asynccontextmanager
    async def unreachable_mongo(_: Settings) -> AsyncIterator[EventStore]:
        store = await MongoEventStore.open(url, timeout=0.3)
        try:
            yield store
        finally:
            await store.close()

    settings = app_settings(database_url=url, store_timeout=0.3)
    # Each step is bounded, and so is the whole (start-up, requests and shut-down).
    async with asyncio.timeout(4 * BOUND), AsyncExitStack() as stack:
        async with asyncio.timeout(BOUND):
            running = run_app(settings, opener=unreachable_mongo)
            http = (await stack.enter_async_context(running)).http  # start-up succeeds

        async with asyncio.timeout(BOUND):
            listed = await http.get(EVENTS)
        assert_unavailable(listed)
        assert str(dead_port) not in listed.text

        async with asyncio.timeout(BOUND):
            one = await http.get(f"{EVENTS}/{MISSING_ID}")
        assert_unavailable(one)

        async with asyncio.timeout(BOUND):
            health = await http.get("/health")
        assert health.status_code == 503
        assert health.json() == expected_health("mongodb", "disconnected")
