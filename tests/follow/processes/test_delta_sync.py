"""Delta sync through real server processes: a client walks the list through one process
(along its cursors) while writers create, change and delete events through two processes,
then follows GET /api/changes from the walk's first X-Changes-Cursor. Its copy must equal
the database at the end, deletions included."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import links
from tests.support.api import EVENTS, item
from tests.support.redis_server import RedisServer
from tests.support.server import serve
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

SEEDED = 120
WRITES = 300  # per writer


async def writer(
    http: httpx.AsyncClient,
    ids: list[str],
    rng: random.Random,
    start: asyncio.Event,
    stop: asyncio.Event,
) -> int:
    """Writes until stopped; how many writes the store took (a change of an event the
    other writer deleted meanwhile is a 404 and writes nothing)."""
    await start.wait()
    done = written = 0
    while done < WRITES and not stop.is_set():
        action = rng.random()
        if action < 0.3 or not ids:
            body = {
                "title": f"new {rng.random():.6f}",
                "date": f"2026-0{rng.randint(1, 9)}-10T10:00:00",
            }
            response = await http.post(EVENTS, json=body)
            ids.append(response.json()["id"])
        elif action < 0.75:
            target = rng.choice(ids)
            day = rng.randint(10, 28)  # moves it in the date order too
            response = await http.patch(
                item(target), json={"title": f"t{done}", "date": f"2026-05-{day}T10:00:00"}
            )
        else:
            target = ids.pop(rng.randrange(len(ids)))
            response = await http.delete(item(target))
        done += 1
        written += response.is_success
    return written


async def test_a_walk_and_the_feed_from_its_first_cursor_equal_the_database(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url)
    with serve(tmp_path, "a", env) as a, serve(tmp_path, "b", env) as b:
        a.wait_ready()
        b.wait_ready()
        async with (
            httpx.AsyncClient(base_url=a.url, trust_env=False, timeout=15.0) as on_a,
            httpx.AsyncClient(base_url=b.url, trust_env=False, timeout=15.0) as on_b,
        ):
            ids = []
            for n in range(SEEDED):
                body = {"title": f"seed {n}", "date": f"2026-0{n % 9 + 1}-01T10:00:00"}
                ids.append((await on_a.post(EVENTS, json=body)).json()["id"])
            # The writers start once the walk's first page (and so its cursor) is read: a
            # write before it is in the walk's copy, not after its cursor.
            start, stop = asyncio.Event(), asyncio.Event()
            writers = [
                asyncio.create_task(writer(api, ids, random.Random(seed), start, stop))
                for seed, api in enumerate([on_a, on_b])
            ]
            copy: dict[str, dict[str, Any]] = {}
            first_cursor = None
            url: str | None = f"{EVENTS}?limit=10"
            pages = 0
            while url is not None:
                response = await on_a.get(url)
                assert response.status_code == 200
                first_cursor = first_cursor or response.headers["x-changes-cursor"]
                copy.update((e["id"], e) for e in response.json())
                url = links(response).get("next")
                start.set()
                pages += 1
                await asyncio.sleep(0.01)  # the writers go on between pages
            stop.set()
            written = sum(await asyncio.gather(*writers))
            after = first_cursor
            followed = 0
            while True:
                page = (await on_b.get("/api/changes", params={"after": after, "limit": 50})).json()
                for change in page["changes"]:
                    followed += 1
                    if change["event"] is None:
                        copy.pop(change["id"], None)
                    else:
                        copy[change["id"]] = change["event"]
                after = page["next"]
                if not page["more"]:
                    break
            everything = await on_a.get(EVENTS, params={"limit": 100})
    with sqlite3.connect(db) as conn:
        stored = {row[0]: row[1] for row in conn.execute("SELECT id, title FROM events")}

    assert pages > 3, pages
    assert written > 50, written
    assert followed >= written, (followed, written)
    assert {i: e["title"] for i, e in copy.items()} == stored
    assert everything.headers["x-total-count"] == str(len(stored))
