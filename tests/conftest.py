from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.settings import Settings
from tests.support.app import run_app
from tests.support.backends import BACKENDS, open_backend
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[EventStore]:
    async with open_backend(backend, tmp_path) as opened:
        yield opened


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/app.db", cache_url="memory://")


@pytest.fixture(params=[True, False], ids=["fast-path", "routed"])
def fast_path(request: pytest.FixtureRequest) -> bool:
    """GET /api/events/{id} through the ASGI fast path, or through the FastAPI route: the
    API suite runs both ways, so the two stay one contract."""
    on: bool = request.param
    return on


@pytest.fixture
async def client(
    store: EventStore, settings: Settings, fast_path: bool
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, lifespan included, over the parametrised store backend."""
    async with run_app(settings, store, fast_path=fast_path) as running:
        yield running.http


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for this test (killable, pausable, restartable)."""
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_cluster_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedisClusterServers]:
    """A private three-master Redis Cluster shared by the tests of one module (forming one
    takes a second or two); use ``redis_cluster``, which empties it for each test."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster(redis_cluster_servers: RedisClusterServers) -> RedisClusterServers:
    """The module's Redis Cluster, every node up and empty."""
    redis_cluster_servers.flush()
    return redis_cluster_servers
