from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from eventapi.events.store import EventStore
from eventapi.settings import Settings
from tests.support.app import RunningApp, run_app
from tests.support.flaky import FlakyStore
from tests.support.gated_store import GatedStore


@pytest.fixture
def flaky(store: EventStore) -> FlakyStore:
    """The parametrised real store, wrapped so a test can take it down and bring it back."""
    return FlakyStore(store)


@pytest.fixture
async def flaky_app(
    flaky: FlakyStore, settings: Settings, fast_path: bool
) -> AsyncIterator[RunningApp]:
    """The real app over ``flaky``, its lifespan started."""
    async with run_app(settings, flaky, fast_path=fast_path) as running:
        yield running


@pytest.fixture
def flaky_client(flaky_app: RunningApp) -> httpx.AsyncClient:
    return flaky_app.http


@pytest.fixture
async def app_client(settings: Settings, fast_path: bool) -> AsyncIterator[httpx.AsyncClient]:
    """The app exactly as configured by ``settings`` (its own SQLite file), not parametrised
    by store: for behaviour that does not depend on the store backend."""
    async with run_app(settings, fast_path=fast_path) as running:
        yield running.http


@pytest.fixture
async def gated_client(
    store: EventStore, settings: Settings, fast_path: bool
) -> AsyncIterator[tuple[httpx.AsyncClient, GatedStore]]:
    """The app over the parametrised store, wrapped so a test can pause a store call."""
    gated = GatedStore(store)
    try:
        async with run_app(settings, gated, fast_path=fast_path) as running:
            yield running.http, gated
    finally:
        gated.open_all()
