"""Redis restarted from a snapshot taken before a write: it comes back holding the value the
write replaced. That value must never be served (cache/resp.py, ServerIdentity; guard.py).

The snapshot is Redis's own (SAVE writes dump.rdb in its folder, which a restart loads),
taken while the old value was cached; the write is acknowledged after it; then Redis is
SIGKILLed and started again from that file, as after a crash of a Redis with persistence.
"""

from __future__ import annotations

import pytest

from tests.cache.faults.helpers import read_until_hit, wait_for_redis
from tests.support.api import EVENTS, create, event
from tests.support.app import RunningApp
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


async def test_a_redis_restored_from_an_old_snapshot_never_serves_what_a_write_replaced(
    harness: RunningApp, redis_server: RedisServer
) -> None:
    http = harness.http
    step = harness.settings.cache_breaker_reset
    created = await create(http, "before the snapshot", 1)
    url = f"{EVENTS}/{created['id']}"
    page = f"{EVENTS}?limit=100"
    await read_until_hit(http, url, step)
    await read_until_hit(http, page, step)
    assert redis_server.command("SAVE") == b"+OK\r\n"

    written = await http.put(url, json=event("after the snapshot", 2))
    assert written.status_code == 200, written.text
    redis_server.restart()  # loads the snapshot: the old item and page are back in Redis

    for _ in range(20):  # first from the store, then, once caught up, from the cache again
        item, listed = await http.get(url), await http.get(page)
        assert item.json()["title"] == "after the snapshot", item.headers
        assert [e["title"] for e in listed.json()] == ["after the snapshot"], listed.headers
    await wait_for_redis(http, "connected", step)
    hit = (await read_until_hit(http, url, step))[-1]
    assert hit.json()["title"] == "after the snapshot"
