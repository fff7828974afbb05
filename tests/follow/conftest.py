from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from eventapi.settings import Settings
from tests.support.app import run_app


@pytest.fixture
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app as ``settings`` configure it (its own SQLite file): for what does not depend
    on the store backend."""
    async with run_app(settings) as running:
        yield running.http
