"""Cursor paging across processes (issue 20): two `eventapi serve` on one SQLite file and
one Redis; a client walks the list along rel="next" through process A while process B
creates and deletes events all along, before and after the walk's place. Every event that
exists throughout the walk is listed exactly once, and none twice, whichever process
cached which page."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.api.helpers import links
from tests.support.api import EVENTS, item
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

SEEDED = 150


def body(n: int, rng: random.Random) -> dict[str, str]:
    """Dates over 30 days (many ties: a few hours a day), titles from a few words."""
    day, hour = rng.randrange(1, 31), rng.choice([9, 12, 18])
    title = f"{rng.choice(['Alpha', 'Beta', 'Gamma', 'Delta'])} {n % 7}"
    return {"title": title, "date": f"2025-05-{day:02d}T{hour:02d}:00:00"}


async def walk(http: httpx.AsyncClient, sort: str) -> list[str]:
    response = await http.get(EVENTS, params={"sort": sort, "limit": 7})
    seen: list[str] = []
    while True:
        assert response.status_code == 200, response.text
        seen += [event["id"] for event in response.json()]
        found = links(response)
        if "next" not in found:
            return seen
        assert "cursor" in parse_qs(urlsplit(found["next"]).query), found["next"]
        await asyncio.sleep(0.005)  # room for B's writes between pages
        response = await http.get(found["next"])


@pytest.mark.parametrize("sort", ["date", "-title"])
async def test_a_walk_through_one_process_while_another_writes(
    tmp_path: Path, redis_server: RedisServer, sort: str
) -> None:
    rng = random.Random(20)
    env = server_env(tmp_path / "app.db", redis_server.url)
    with cluster(tmp_path, env) as [a, b]:
        async with (
            httpx.AsyncClient(base_url=a.url, trust_env=False, timeout=15.0) as on_a,
            httpx.AsyncClient(base_url=b.url, trust_env=False, timeout=15.0) as on_b,
        ):
            seeded = []
            for n in range(SEEDED):
                response = await on_b.post(EVENTS, json=body(n, rng))
                assert response.status_code == 201, response.text
                seeded.append(response.json()["id"])
            victims = rng.sample(seeded, SEEDED // 3)
            deleted: set[str] = set()
            created: set[str] = set()
            walking = True

            async def write_on_b() -> None:
                n = SEEDED
                while walking and (victims or n < 3 * SEEDED):
                    if victims and n % 2:
                        victim = victims.pop()
                        response = await on_b.delete(item(victim))
                        assert response.status_code == 200, response.text
                        deleted.add(victim)
                    else:
                        response = await on_b.post(EVENTS, json=body(n, rng))
                        assert response.status_code == 201, response.text
                        created.add(response.json()["id"])
                    n += 1

            writer = asyncio.create_task(write_on_b())
            try:
                seen = await walk(on_a, sort)
            finally:
                walking = False
                await writer

    assert deleted, "B deleted nothing during the walk"
    assert created, "B created nothing during the walk"
    assert len(seen) == len(set(seen)), "an event was listed twice"
    throughout = [i for i in seeded if i not in deleted]
    missed = [i for i in throughout if i not in seen]
    assert not missed, f"{len(missed)} events that existed throughout were not listed"
    assert set(seen) <= set(seeded) | created
