"""Fixtures for the cache tests: the real app over a real SQLite file wrapped in a GatedStore,
with the cache set to memory:// or to a private redis-server (``cache_kind``).

A test that needs one kind only overrides the parameter:
``@pytest.mark.parametrize("cache_kind", ["redis"])``; ``"none"`` switches caching off, and
``"redis-cluster"`` points the cache at one node of a private three-master Redis Cluster
(one per module, emptied for each test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from eventapi.settings import Settings
from tests.cache.helpers import Launch
from tests.support.app import RunningApp, run_app
from tests.support.backends import open_backend
from tests.support.gated_store import GatedStore
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tests.support.settings import app_settings


@pytest.fixture(params=["memory", "redis"])
def cache_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def cache_url(cache_kind: str, request: pytest.FixtureRequest) -> str:
    if cache_kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return server.url
    if cache_kind == "redis-cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        return cluster.url
    return {"memory": "memory://", "none": "none"}[cache_kind]


@pytest.fixture
def cache_settings(tmp_path: Path, cache_url: str) -> Settings:
    # cache_timeout at its maximum: with 1000 requests in flight on one event loop, a Redis
    # reply can wait longer than the 75 ms default for the loop, and the guard would then
    # (correctly) degrade to BYPASS. The same for the relay: on a busy machine its pass
    # (behind those 1000 requests) can take longer than the 1 s fence of the default
    # interval, and the gate then (correctly) sends reads to the store. These tests are
    # about correctness, not about the budget or the relay's pace (tests/cache/processes).
    return app_settings(
        tmp_path / "events.db", cache_url=cache_url, cache_timeout=5.0, cache_relay_interval=5.0
    )


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[GatedStore]:
    """A real SQLite file, counted and gateable; shared by every app a test launches."""
    async with open_backend("sqlite", tmp_path) as inner:
        store = GatedStore(inner)
        try:
            yield store
        finally:
            store.open_all()


@pytest.fixture
async def launch(gated: GatedStore, cache_settings: Settings) -> AsyncIterator[Launch]:
    """Start a real app instance (lifespan included) over ``gated``; each call is a new
    instance with its own ReadThrough and cache client. All stop at teardown."""
    async with AsyncExitStack() as stack:
        # Registered first, so it runs last: a failed test must not leave a reader paused.
        stack.callback(gated.open_all)

        async def start(settings: Settings | None = None) -> RunningApp:
            return await stack.enter_async_context(run_app(settings or cache_settings, gated))

        yield start
        gated.open_all()


@pytest.fixture
async def api(launch: Launch) -> RunningApp:
    return await launch()
