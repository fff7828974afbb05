"""The app starts and serves every endpoint with no Redis listening at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cache.faults.helpers import fault_settings, health, read_until_hit, wait_for_redis
from tests.support.api import EVENTS, create
from tests.support.app import run_app
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


async def test_starts_and_serves_without_redis(tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    settings = fault_settings(tmp_path, f"redis://127.0.0.1:{port}/0")
    async with run_app(settings) as harness:
        http = harness.http
        body = await health(http)
        assert body["status"] == "degraded"
        assert body["redis"] == "disconnected"
        assert body["database"] == "connected"

        event = await create(http, "no redis", category="Tech")
        url = f"{EVENTS}/{event['id']}"
        reads = [
            await http.get(url),
            await http.get(url),
            await http.get(EVENTS),
            await http.get(EVENTS, params={"category": "tech", "limit": "5"}),
        ]
        assert [r.status_code for r in reads] == [200] * 4
        assert [r.headers["x-cache"] for r in reads] == ["BYPASS"] * 4
        assert reads[0].json() == reads[1].json() == event
        assert reads[2].json() == reads[3].json() == [event]
        assert reads[2].headers["x-total-count"] == "1"
        # Conditional GET works without the cache too.
        again = await http.get(url, headers={"If-None-Match": reads[0].headers["etag"]})
        assert again.status_code == 304
        assert again.headers["x-cache"] == "BYPASS"

        put = await http.put(url, json={"title": "replaced", "date": event["date"]})
        assert put.status_code == 200, put.text
        patch = await http.patch(url, json={"location": "Lisbon"})
        assert patch.status_code == 200, patch.text
        after = await http.get(url)
        assert after.headers["x-cache"] == "BYPASS"
        assert after.json() == patch.json()
        assert after.json()["title"] == "replaced"
        assert after.json()["location"] == "Lisbon"

        deleted = await http.delete(url)
        assert deleted.status_code == 200, deleted.text
        assert (await http.get(url)).status_code == 404
        assert (await http.get(EVENTS)).json() == []
        assert (await http.get("/metrics")).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 200
        assert (await health(http))["status"] == "degraded"


async def test_redis_started_later_is_picked_up(tmp_path: Path) -> None:
    """Redis down at start-up, started afterwards on the configured port: the app begins
    to use it without a restart."""
    port = free_port()
    settings = fault_settings(tmp_path, f"redis://127.0.0.1:{port}/0")
    async with run_app(settings) as harness:
        http = harness.http
        event = await create(http, "later")
        url = f"{EVENTS}/{event['id']}"
        assert (await http.get(url)).headers["x-cache"] == "BYPASS"
        server = RedisServer(tmp_path / "redis", port=port)
        server.workdir.mkdir()
        server.start()
        try:
            await wait_for_redis(http, "connected", step=settings.cache_breaker_reset)
            assert (await health(http))["status"] == "healthy"
            responses = await read_until_hit(http, url, step=settings.cache_breaker_reset)
            assert [r.headers["x-cache"] for r in responses] == ["MISS", "HIT"]
            assert all(r.json() == event for r in responses)
        finally:
            server.stop()
