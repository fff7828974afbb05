from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from eventapi.app import create_app
from eventapi.settings import Settings
from eventapi.storage.base import EventStore
from tests.support.backends import BACKENDS, open_backend
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


@pytest.fixture
async def client(store: EventStore, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, lifespan included, over the parametrised store backend."""

    @asynccontextmanager
    async def use_store(_: Settings) -> AsyncIterator[EventStore]:
        yield store

    app = create_app(settings, store=use_store)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield http


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for this test (killable, pausable, restartable)."""
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()
