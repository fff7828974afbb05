from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cache.faults.helpers import fault_settings
from tests.support.app import RunningApp, run_app
from tests.support.redis_server import RedisServer


@pytest.fixture
async def harness(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The real app on SQLite, caching in the private ``redis_server`` (50 ms budget,
    breaker reset 0.2 s). Depends on redis_server so the app shuts down before Redis stops."""
    async with run_app(fault_settings(tmp_path, redis_server.url)) as h:
        yield h
