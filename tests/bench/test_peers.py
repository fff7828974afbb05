"""The peers (bench/peers.py) in-process over a seeded SQLite file and a private
redis-server: a miss reads the store and fills Redis, a hit answers from Redis alone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fastapi import FastAPI

from bench import peers
from bench.seed import generate, seed_file
from eventapi.events.schemas import ORIGINAL_FIELDS, EventRead
from tests.support.app import run_app
from tests.support.redis_server import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, list[EventRead]]:
    events = generate(5)
    path = tmp_path / "peers.db"
    seed_file(path, events)
    return path, events


@pytest.fixture
def configured(
    seeded: tuple[Path, list[EventRead]],
    redis_server: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> list[EventRead]:
    monkeypatch.setenv(peers.DATABASE_ENV, str(seeded[0]))
    monkeypatch.setenv(peers.REDIS_ENV, redis_server.url)
    return seeded[1]


def forget(database: Path, event_id: str) -> None:
    """Delete the row behind the peers' backs: a later 200 can only come from Redis."""
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM events WHERE id = ?", (event_id,))


@pytest.mark.parametrize("factory", [peers.tutorial_app, peers.fastapi_cache_app])
async def test_a_miss_fills_redis_and_a_hit_needs_no_store(
    factory: object,
    configured: list[EventRead],
    seeded: tuple[Path, list[EventRead]],
    redis_server: RedisServer,
) -> None:
    assert callable(factory)
    app = factory()
    assert isinstance(app, FastAPI)
    event = configured[2]
    async with run_app(app=app) as running:
        http = running.http
        assert (await http.get("/health")).status_code == 200
        first = await http.get(f"/api/events/{event.id}")
        assert first.status_code == 200
        # A tutorial's event: the original API's fields only.
        original = event.model_dump(mode="json", include={"id", *ORIGINAL_FIELDS})
        assert json.loads(first.content) == original
        assert redis_server.command("DBSIZE") == b":1\r\n"
        forget(seeded[0], event.id)
        again = await http.get(f"/api/events/{event.id}")
        assert again.status_code == 200
        assert again.content == first.content
        missing = await http.get("/api/events/0123456789abcdef01234567")
        assert missing.status_code == 404
    if factory is peers.fastapi_cache_app:
        assert first.headers["x-fastapi-cache"] == "MISS"
        assert again.headers["x-fastapi-cache"] == "HIT"


async def test_the_tutorial_sets_a_time_to_live(
    configured: list[EventRead], redis_server: RedisServer
) -> None:
    event = configured[0]
    async with run_app(app=peers.tutorial_app()) as running:
        assert (await running.http.get(f"/api/events/{event.id}")).status_code == 200
    ttl = redis_server.command("TTL", f"event:{event.id}")
    assert 0 < int(ttl.strip().lstrip(b":")) <= peers.TTL


def test_a_peer_without_its_settings_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(peers.DATABASE_ENV, raising=False)
    with pytest.raises(RuntimeError, match=peers.DATABASE_ENV):
        peers.tutorial_app()
    with pytest.raises(RuntimeError, match=peers.DATABASE_ENV):
        peers.fastapi_cache_app()
