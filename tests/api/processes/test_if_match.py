"""If-Match across two real `eventapi serve` processes on one SQLite file and one Redis.

The check and the write are one atomic step in the database (the event's version), not in
a process's memory: a write through one process makes the other's stale ETag fail with 412
carrying the new ETag, and the ETag a write answers with is the one every process's GET
returns afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import STORE_OPERATIONS, Api, clients, metric, scrape
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

EVENTS = "/api/events"
WRITERS = 8  # concurrent conditional writes, alternating between the two processes


def item(event_id: str) -> str:
    return f"{EVENTS}/{event_id}"


async def get(api: Api, event_id: str) -> httpx.Response:
    response = await api.http.get(item(event_id))
    assert response.status_code == 200, f"{api.name}: {response.text}"
    return response


async def patch(api: Api, event_id: str, title: str, if_match: str | None = None) -> httpx.Response:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return await api.http.patch(item(event_id), json={"title": title}, headers=headers)


async def create(api: Api, title: str) -> str:
    response = await api.http.post(EVENTS, json={"title": title, "date": "2025-06-01T12:00:00"})
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


def assert_412_with(response: httpx.Response, etag: str) -> None:
    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["etag"] == etag
    assert response.json()["etag"] == etag


async def assert_every_get_shows(apis: list[Api], event_id: str, written: httpx.Response) -> None:
    """Through every process, twice (the second a cache HIT): the write's ETag and body."""
    for api in apis:
        for _ in range(2):
            got = await get(api, event_id)
            assert got.headers["etag"] == written.headers["etag"], api.name
            assert got.content == written.content, api.name


async def test_a_stale_etag_from_one_process_is_412_after_a_write_through_the_other(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = server_env(tmp_path / "app.db", redis_server.url)
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            a, b = apis
            event_id = await create(a, "v0")
            read_by_a = (await get(a, event_id)).headers["etag"]
            await get(b, event_id)  # cached in Redis too

            by_b = await patch(b, event_id, "written by B")  # no If-Match
            assert by_b.status_code == 200, by_b.text

            stale = await patch(a, event_id, "lost update", if_match=read_by_a)
            assert_412_with(stale, by_b.headers["etag"])
            await assert_every_get_shows(apis, event_id, by_b)

            # A re-reads (B's ETag, from the 412) and retries: it applies, and every process
            # then serves exactly what A's write answered with.
            by_a = await patch(a, event_id, "written by A", if_match=stale.headers["etag"])
            assert by_a.status_code == 200, by_a.text
            assert by_a.headers["etag"] != by_b.headers["etag"]
            await assert_every_get_shows(apis, event_id, by_a)

            deleted = await b.http.delete(item(event_id), headers={"If-Match": read_by_a})
            assert_412_with(deleted, by_a.headers["etag"])
            deleted = await b.http.delete(
                item(event_id), headers={"If-Match": by_a.headers["etag"]}
            )
            assert deleted.status_code == 200, deleted.text
            gone = await a.http.patch(
                item(event_id), json={"title": "x"}, headers={"If-Match": "*"}
            )
            assert gone.status_code == 412, gone.text


@contextlib.contextmanager
def write_lock(db: Path) -> Iterator[None]:
    """Hold SQLite's write lock on ``db`` from this process until the block ends."""
    with contextlib.closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


async def updates_started(apis: list[Api]) -> float:
    """Store updates the processes have begun: a conditional one begins after its check."""
    return sum([metric(await scrape(api), STORE_OPERATIONS, operation="update") for api in apis])


async def test_writes_with_one_etag_through_two_processes_at_once_exactly_one_applies(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Every write has read the event and passed its If-Match check before any of them may
    write (the database's write lock is held from outside until then): only the atomic check
    in the store can then tell them apart. Exactly one applies; every other one is a 412
    with the winner's ETag."""
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url, store_timeout=10)
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            event_id = await create(apis[0], "v0")
            tag = (await get(apis[1], event_id)).headers["etag"]
            before = await updates_started(apis)

            with write_lock(db):
                writes = [
                    asyncio.create_task(patch(apis[n % 2], event_id, f"w{n}", if_match=tag))
                    for n in range(WRITERS)
                ]

                async def all_checked() -> bool:
                    return await updates_started(apis) == before + WRITERS

                await eventually(all_checked, "every write past its If-Match check", within=5.0)
                assert not any(w.done() for w in writes)
            responses = await asyncio.gather(*writes)

            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200] + [412] * (WRITERS - 1), statuses
            (winner,) = [r for r in responses if r.status_code == 200]
            for loser in responses:
                if loser is not winner:
                    assert_412_with(loser, winner.headers["etag"])
            await assert_every_get_shows(apis, event_id, winner)


OLD_SCHEMA = """
CREATE TABLE events (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT, date_utc TEXT NOT NULL,
    date_naive INTEGER NOT NULL, location TEXT, category TEXT, category_key TEXT,
    organizer TEXT
);
CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT);
"""
OLD_ID = "68ed254e36d0233aa05afbe9"


async def test_two_processes_started_at_once_on_an_old_database_keep_versions(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A database from before versions were kept gets its version column from whichever
    process opens it first; the other waits and finds it there."""
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute(
            "INSERT INTO events (id, title, date_utc, date_naive) VALUES (?, 'Old', ?, 1)",
            (OLD_ID, "2025-06-01T12:00:00.000"),
        )
        conn.commit()
    env = server_env(db, redis_server.url)
    with cluster(tmp_path, env, at_once=True) as servers:
        async with clients(servers) as apis:
            a, b = apis
            old = (await get(a, OLD_ID)).headers["etag"]

            by_b = await patch(b, OLD_ID, "New", if_match=old)
            assert by_b.status_code == 200, by_b.text
            assert_412_with(await patch(a, OLD_ID, "Lost", if_match=old), by_b.headers["etag"])
            await assert_every_get_shows(apis, OLD_ID, by_b)
