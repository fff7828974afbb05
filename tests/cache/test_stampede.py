"""1000 concurrent reads of one cold key cost one store read, and all get the same bytes.

How the test knows all 1000 requests are waiting before it lets the one store read finish:
the store read is gated (GatedStore), and a JoinProbe counts requests entering the app's
``ReadThrough.read``. That method runs without yielding up to ``await asyncio.shield(flight)``,
so a counted request is already waiting on a flight: the paused one, or (if it arrived
after that one started) the next one, which waits for the paused one to fill the cache.
Both conditions are awaited as asyncio.Events (set by the gate and by the probe), so the
wait ends exactly when they hold, however long the 1000 requests take to get through
routing.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.cache.helpers import JoinProbe, N, assert_identical, stampede
from tests.support.api import EVENTS, create, item
from tests.support.app import RunningApp
from tests.support.gated_store import GatedStore

pytestmark = pytest.mark.parametrize("cache_kind", ["memory", "redis", "redis-cluster"])


async def test_cold_item_stampede_reads_the_store_once(
    api: RunningApp, gated: GatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create(api.http, title="Popular")  # a POST does not fill: still cold
    before = gated.calls["get"]
    gate = gated.arm("get")
    probe = JoinProbe(N).wrap(monkeypatch, [api])

    tasks = [asyncio.create_task(api.http.get(item(created["id"]))) for _ in range(N)]
    responses = await stampede(tasks, gate, probe, [api], gated, before + 1)

    assert gated.calls["get"] - before == 1
    assert_identical(responses)
    assert responses[0].json() == created
    # Those that joined the load see a MISS, the next flight a HIT of what it filled.
    outcomes = Counter(response.headers["x-cache"] for response in responses)
    assert outcomes["MISS"] >= 1
    assert outcomes["MISS"] + outcomes["HIT"] == N
    assert (await api.http.get(item(created["id"]))).headers["x-cache"] == "HIT"
    assert gated.calls["get"] - before == 1


async def test_list_stampede_right_after_a_write_reads_the_store_once(
    api: RunningApp, gated: GatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(api.http, title="First", date="2025-06-01T09:00:00")
    warm = await api.http.get(EVENTS)
    assert warm.headers["x-total-count"] == "1"
    assert (await api.http.get(EVENTS)).headers["x-cache"] == "HIT"
    added = await create(api.http, title="Second", date="2025-06-01T10:00:00")

    before = gated.calls["list"]
    gate = gated.arm("list")
    probe = JoinProbe(N).wrap(monkeypatch, [api])
    tasks = [asyncio.create_task(api.http.get(EVENTS)) for _ in range(N)]
    responses = await stampede(tasks, gate, probe, [api], gated, before + 1)

    assert gated.calls["list"] - before == 1
    assert_identical(responses)
    assert [entry["id"] for entry in responses[0].json()][-1] == added["id"]
    assert {response.headers["x-total-count"] for response in responses} == {"2"}
    outcomes = Counter(response.headers["x-cache"] for response in responses)
    assert outcomes["MISS"] >= 1
    assert outcomes["MISS"] + outcomes["HIT"] == N
