"""Warm writes across two real `eventapi serve` processes on one SQLite file and one Redis.

Updates of one event are sent through both processes at once, round after round: they
commit in one order and settle in the cache in any order. Once every one of them is
acknowledged, every GET, through either process, must return the event as the database
holds it: a write's value is left in the cache only if no other write overtook it
(cache/base.py, Warm writes; docs/consistency.md section 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.support.cluster import Api, clients
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

EVENTS = "/api/events"
ROUNDS = 40
WRITERS = 6  # concurrent updates per round, alternating between the two processes


def stored_title(db: Path, event_id: str) -> str:
    """The title the database holds now (read outside the servers)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (title,) = conn.execute("SELECT title FROM events WHERE id = ?", (event_id,)).fetchone()
    return str(title)


async def update(api: Api, event_id: str, title: str) -> None:
    response = await api.http.patch(f"{EVENTS}/{event_id}", json={"title": title})
    assert response.status_code == 200, f"{api.name}: {response.text}"


async def test_concurrent_updates_through_two_processes_leave_what_the_database_holds(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "app.db"
    with cluster(tmp_path, server_env(db, redis_server.url)) as servers:
        async with clients(servers) as apis:
            created = await apis[0].http.post(
                EVENTS, json={"title": "r0", "date": "2025-06-01T12:00:00"}
            )
            assert created.status_code == 201, created.text
            event_id = created.json()["id"]
            served: set[str] = set()
            for n in range(1, ROUNDS + 1):
                titles = [f"r{n}-w{w}" for w in range(WRITERS)]
                await asyncio.gather(
                    *(update(apis[w % 2], event_id, title) for w, title in enumerate(titles))
                )
                committed = stored_title(db, event_id)
                assert committed in titles
                for api in [*apis, *apis]:  # twice each: a MISS may fill, then a HIT
                    got = await api.http.get(f"{EVENTS}/{event_id}")
                    assert got.status_code == 200, got.text
                    assert got.json()["title"] == committed, (n, api.name, got.headers)
                    served.add(got.headers["x-cache"])
            assert served <= {"HIT", "MISS"}  # the cache was in use throughout
            assert "HIT" in served
