"""A read that loaded the old version before a write can never put it in the cache after.

Each test pauses a GET right after its store read (cache miss: it holds the old version
and, underneath, the cache lease), performs a write through the API, lets the GET go on,
and then checks that fresh GETs see the write, twice: the second one is a cache HIT, so the
value in the cache is the new one.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import httpx
import pytest

from eventapi.events.schemas import EventPage, EventQuery, EventRead
from tests.cache.helpers import assert_shows, unless_stuck, within
from tests.support.api import EVENTS, create, event, item
from tests.support.app import RunningApp
from tests.support.gated_store import GatedStore

ItemWrite = Literal["put", "patch", "delete"]
ListWrite = Literal["post", "put", "delete"]


async def write_item(http: httpx.AsyncClient, kind: ItemWrite, event_id: str) -> Any:
    """Change the event through the API; returns its new JSON body, or None once deleted."""
    if kind == "put":
        response = await http.put(item(event_id), json=event(title="New", location="Boston"))
    elif kind == "patch":
        response = await http.patch(item(event_id), json={"title": "New"})
    else:
        response = await http.delete(item(event_id))
    assert response.status_code == 200, response.text
    return None if kind == "delete" else response.json()


async def assert_fresh_reads_show(
    http: httpx.AsyncClient, event_id: str, expected: Any, gated: GatedStore
) -> None:
    first = await http.get(item(event_id))
    assert_shows(first, expected)
    reads = gated.calls["get"]
    second = await http.get(item(event_id))
    assert_shows(second, expected)
    # The second read is served by the cache, so what the cache holds is the new version.
    assert gated.calls["get"] == reads
    if expected is not None:
        assert second.headers["x-cache"] == "HIT"


@pytest.mark.parametrize("write", ["put", "patch", "delete"])
async def test_item_load_paused_across_a_write_does_not_cache_the_old_version(
    api: RunningApp, gated: GatedStore, write: ItemWrite
) -> None:
    old = await create(api.http, title="Old")
    gate = gated.arm("get")
    paused = asyncio.create_task(api.http.get(item(old["id"])))
    await within(gate.read_done.wait())
    assert isinstance(gate.value, EventRead)
    assert gate.value.title == "Old"  # the paused reader holds the old version

    new = await write_item(api.http, write, old["id"])

    gate.open()
    before = await within(paused)
    # It asked before the write was acknowledged: either version is a correct answer.
    assert before.status_code in (200, 404)
    if before.status_code == 200:
        assert before.json() in (old, new)

    await assert_fresh_reads_show(api.http, old["id"], new, gated)


@pytest.mark.parametrize("write", ["put", "patch", "delete"])
async def test_item_read_after_a_write_does_not_join_a_load_begun_before_it(
    api: RunningApp, gated: GatedStore, write: ItemWrite
) -> None:
    old = await create(api.http, title="Old")
    gate = gated.arm("get")
    paused = asyncio.create_task(api.http.get(item(old["id"])))
    await within(gate.read_done.wait())

    new = await write_item(api.http, write, old["id"])

    # The paused load stays paused: a read after the write must not wait for it.
    on_its_own, after = await unless_stuck(asyncio.create_task(api.http.get(item(old["id"]))), gate)
    assert_shows(after, new)
    assert on_its_own, "the read after the write waited for the load begun before it"
    assert not paused.done()

    gate.open()
    await within(paused)
    await assert_fresh_reads_show(api.http, old["id"], new, gated)


async def expected_page(gated: GatedStore) -> EventPage:
    """What GET /api/events must show now: the store's own first page (default query)."""
    return await gated.inner.list(EventQuery.model_validate({}))


def page_json(page: EventPage) -> list[Any]:
    return [entry.model_dump(mode="json") for entry in page.items]


async def assert_list_shows(http: httpx.AsyncClient, page: EventPage) -> httpx.Response:
    response = await http.get(EVENTS)
    assert response.status_code == 200, response.text
    assert response.json() == page_json(page)
    assert response.headers["x-total-count"] == str(page.total)
    return response


async def write_for_list(http: httpx.AsyncClient, kind: ListWrite, ids: list[str]) -> None:
    if kind == "post":
        await create(http, title="Added", date="2025-06-02T12:00:00")
        return
    if kind == "put":
        response = await http.put(item(ids[0]), json=event(title="Renamed"))
    else:
        response = await http.delete(item(ids[1]))
    assert response.status_code == 200, response.text


async def seed_two(http: httpx.AsyncClient) -> list[str]:
    first = await create(http, title="First", date="2025-06-01T09:00:00")
    second = await create(http, title="Second", date="2025-06-01T10:00:00")
    return [first["id"], second["id"]]


@pytest.mark.parametrize("write", ["post", "put", "delete"])
async def test_list_load_paused_across_a_write_does_not_cache_the_old_page(
    api: RunningApp, gated: GatedStore, write: ListWrite
) -> None:
    ids = await seed_two(api.http)
    old = await expected_page(gated)
    gate = gated.arm("list")
    paused = asyncio.create_task(api.http.get(EVENTS))
    await within(gate.read_done.wait())
    assert gate.value == old

    await write_for_list(api.http, write, ids)
    new = await expected_page(gated)
    assert page_json(new) != page_json(old)

    gate.open()
    before = await within(paused)
    assert before.status_code == 200
    assert before.json() in (page_json(old), page_json(new))

    first = await assert_list_shows(api.http, new)
    lists = gated.calls["list"]
    second = await assert_list_shows(api.http, new)
    assert second.headers["x-cache"] == "HIT"
    assert gated.calls["list"] == lists
    assert second.headers["link"] == first.headers["link"]


async def test_list_read_after_a_write_does_not_join_a_load_begun_before_it(
    api: RunningApp, gated: GatedStore
) -> None:
    await seed_two(api.http)
    gate = gated.arm("list")
    paused = asyncio.create_task(api.http.get(EVENTS))
    await within(gate.read_done.wait())

    await create(api.http, title="Added", date="2025-06-02T12:00:00")
    new = await expected_page(gated)

    on_its_own, after = await unless_stuck(asyncio.create_task(api.http.get(EVENTS)), gate)
    assert after.json() == page_json(new)
    assert after.headers["x-total-count"] == "3"
    assert on_its_own, "the list read after the write waited for the load begun before it"

    gate.open()
    await within(paused)
    await assert_list_shows(api.http, new)
    assert (await assert_list_shows(api.http, new)).headers["x-cache"] == "HIT"
