from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp

from eventapi.app import create_app
from eventapi.settings import Settings
from eventapi.storage.base import EventStore
from tests.api.helpers import http_client, serve
from tests.support.flaky import FlakyStore


@pytest.fixture
def flaky(store: EventStore) -> FlakyStore:
    """The parametrised real store, wrapped so a test can take it down and bring it back."""
    return FlakyStore(store)


@pytest.fixture
async def flaky_app(flaky: FlakyStore, settings: Settings) -> AsyncIterator[ASGIApp]:
    """The real app over ``flaky``, its lifespan started."""

    @asynccontextmanager
    async def use_flaky(_: Settings) -> AsyncIterator[EventStore]:
        yield flaky

    async with LifespanManager(create_app(settings, store=use_flaky)) as manager:
        yield manager.app


@pytest.fixture
async def flaky_client(flaky_app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(flaky_app) as http:
        yield http


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app exactly as configured by ``settings`` (its own SQLite file), not parametrised:
    for behaviour that does not depend on the store backend."""
    async with serve(create_app(settings)) as http:
        yield http
