"""Two app instances (two create_app() calls: separate ReadThrough, separate Redis clients)
sharing one redis-server (or one Redis Cluster) and one store, with the same settings, so
the same key namespace: what two server processes behind a load balancer would share.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from eventapi.events.schemas import EventRead
from eventapi.settings import Settings
from tests.cache.helpers import (
    JoinProbe,
    Launch,
    N,
    assert_identical,
    assert_shows,
    stampede,
    within,
)
from tests.support.api import create, event, item
from tests.support.app import RunningApp, flights
from tests.support.gated_store import GatedStore

pytestmark = pytest.mark.parametrize("cache_kind", ["redis", "redis-cluster"])


async def two_apps(launch: Launch, settings: Settings | None = None) -> list[RunningApp]:
    return [await launch(settings), await launch(settings)]


async def test_cold_item_stampede_across_two_apps_reads_the_store_once(
    launch: Launch,
    cache_settings: Settings,
    gated: GatedStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The instance that loses the lease polls Redis for the winner's fill for up to
    # cache_lease_wait seconds of wall time, then gives up and reads the store itself. 1000
    # requests through ASGITransport take a second or so; a wide window keeps this test
    # about the lease, not about the machine's speed.
    wide = {"store_timeout": 30.0, "cache_lease_wait": 30.0}
    apps = await two_apps(launch, cache_settings.model_copy(update=wide))
    created = await create(apps[0].http, title="Popular")
    before = gated.calls["get"]
    gate = gated.arm("get")
    probe = JoinProbe(N).wrap(monkeypatch, apps)

    url = item(created["id"])
    tasks = [asyncio.create_task(apps[n % 2].http.get(url)) for n in range(N)]
    # One instance holds the lease and is paused in its store read; the other's flight
    # found the lease BUSY and waits for the fill. Requests arriving once a flight has
    # started wait in the next one.
    responses = await stampede(tasks, gate, probe, apps, gated, before + 1)
    assert probe.entered == {0: N // 2, 1: N // 2}

    assert_identical(responses)
    assert responses[0].json() == created
    assert gated.calls["get"] - before == 1  # not merely <= 2: the lease made one app wait
    outcomes = [Counter(r.headers["x-cache"] for r in responses[n::2]) for n in (0, 1)]
    waiter, loader = sorted(outcomes, key=lambda c: c["MISS"])
    assert waiter == {"HIT": N // 2}
    assert loader["MISS"] >= 1  # who joined the load; who came later hit what it filled
    assert loader["MISS"] + loader["HIT"] == N // 2


async def test_load_paused_on_one_app_cannot_cache_the_old_version_after_a_write_on_the_other(
    launch: Launch, gated: GatedStore
) -> None:
    first, second = await two_apps(launch)
    old = await create(first.http, title="Old")
    url = item(old["id"])
    gate = gated.arm("get")
    paused = asyncio.create_task(first.http.get(url))
    await within(gate.read_done.wait())
    assert isinstance(gate.value, EventRead)
    assert gate.value.title == "Old"

    put = await second.http.put(url, json=event(title="New"))
    assert put.status_code == 200, put.text
    new = put.json()

    gate.open()
    before = await within(paused)
    assert before.json() in (old, new)

    for app in (first, second, first, second):
        assert_shows(await app.http.get(url), new)
    reads = gated.calls["get"]
    for app in (first, second):
        response = await app.http.get(url)
        assert_shows(response, new)
        assert response.headers["x-cache"] == "HIT"
    assert gated.calls["get"] == reads


async def test_read_on_one_app_after_a_write_on_the_other_shows_the_write(
    launch: Launch, gated: GatedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write was acknowledged (by the other instance) before this read began, so the read
    must show it, although app1 has a load of the same key under way that began before the
    write: a request never joins a load that has started, so it forms the next flight. That
    one waits for the paused load, whose fill the write's revoked lease refuses, then looks
    at the cache itself: it finds the value the write left there (cache/base.py, Warm
    writes), or, if the write's lease was not taken in time, reads the store."""
    first, second = await two_apps(launch)
    old = await create(first.http, title="Old")
    url = item(old["id"])
    gate = gated.arm("get")
    paused = asyncio.create_task(first.http.get(url))
    await within(gate.read_done.wait())

    put = await second.http.put(url, json=event(title="New"))
    assert put.status_code == 200, put.text
    new = put.json()

    probe = JoinProbe(expected=1).wrap(monkeypatch, [first])
    after = asyncio.create_task(first.http.get(url))
    await within(probe.all_in.wait())
    assert flights(first.reads) == 2  # the paused one, and the next one
    gate.open()
    assert_shows(await within(after), new)
    assert (await within(paused)).json() in (old, new)
    assert gated.calls["get"] in (1, 2)
    for app in (first, second):
        assert_shows(await app.http.get(url), new)
