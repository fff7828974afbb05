"""Not one of the issue's scenarios: the harness found that two processes started at the
same moment on a new database file can fail at start-up with "database is locked". The
scenarios start their processes one after the other so they stay about consistency; this
test keeps the start-up race visible on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cache.processes.load import Recorder, seed
from tests.support.cluster import clients
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


async def test_two_processes_started_at_once_on_a_new_database_both_serve(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = server_env(tmp_path / "app.db", redis_server.url, cache_relay_interval=0.25)
    with cluster(tmp_path, env, names=["A", "B", "C", "D"], at_once=True) as servers:
        async with clients(servers) as apis:
            recorder = Recorder()
            events = await seed(recorder, apis, 2)
            seen = [await recorder.read_item(api, e) for api in apis for e in events]
    assert [(r.status, r.version) for r in seen] == [(200, 0)] * 8
