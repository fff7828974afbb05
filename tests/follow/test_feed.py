"""GET /api/changes and the change cursor every read answers with (X-Changes-Cursor), in
process, on both stores: changes in commit order with their events as they are now,
tombstones, paging, refusals, the retention's 410, and the promise a follower relies on: a
client that stores a read's cursor and follows the feed from it misses no change."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import eventapi.changes
import eventapi.storage.mongo
import eventapi.storage.sqlite
from eventapi.changes import Retention
from eventapi.events.store import EventStore
from eventapi.follow import cursor
from eventapi.settings import Settings
from tests.api.helpers import assert_problem as problem
from tests.store.builders import event as stored_event
from tests.store.builders import stored
from tests.support.api import EVENTS, create, item
from tests.support.app import run_app
from tests.support.gated_store import GatedStore

CHANGES = "/api/changes"


async def follow(
    http: httpx.AsyncClient, after: str | None, limit: int = 100
) -> tuple[list[dict[str, Any]], str]:
    """Every change after ``after`` (None: from the start), following ``next`` until
    ``more`` is false; and the last ``next``."""
    changes: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        response = await http.get(CHANGES, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert response.headers["x-changes-cursor"] == page["next"]
        changes += page["changes"]
        after = page["next"]
        if not page["more"]:
            return changes, after


def apply(copy: dict[str, dict[str, Any]], changes: list[dict[str, Any]]) -> None:
    """What a follower does with the changes: keep each event as given, drop tombstones."""
    for change in changes:
        if change["event"] is None:
            copy.pop(change["id"], None)
        else:
            copy[change["id"]] = change["event"]


def assert_problem(response: httpx.Response, status: int, slug: str) -> None:
    body = problem(response, status)
    assert body["type"].endswith("/" + slug), body


async def everything(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = (await http.get(EVENTS, params={"limit": 100, "offset": offset})).json()
        found.update((e["id"], e) for e in page)
        if len(page) < 100:
            return found
        offset += 100


async def test_changes_come_in_commit_order_with_each_event_as_it_is_now(
    client: httpx.AsyncClient,
) -> None:
    a = await create(client, "a")
    b = await create(client, "b")
    updated = (await client.patch(item(a["id"]), json={"title": "a2"})).json()
    assert (await client.delete(item(b["id"]))).status_code == 200

    changes, _ = await follow(client, None)

    assert [(c["id"], c["kind"]) for c in changes] == [
        (a["id"], "created"),
        (b["id"], "created"),
        (a["id"], "updated"),
        (b["id"], "deleted"),
    ]
    assert [c["event"] for c in changes] == [updated, None, updated, None]  # as they are now
    cursors = [cursor.decode(c["cursor"]) for c in changes]
    assert cursors == sorted(set(cursors))


async def test_a_feed_is_paged_by_its_next_cursor(client: httpx.AsyncClient) -> None:
    made = [await create(client, f"e{n}") for n in range(7)]

    first = (await client.get(CHANGES, params={"limit": 3})).json()
    rest, last = await follow(client, first["next"], limit=3)

    assert first["more"] is True
    assert [c["id"] for c in first["changes"] + rest] == [e["id"] for e in made]
    # Caught up: asking again from the last cursor gives nothing, and the same cursor.
    again = (await client.get(CHANGES, params={"after": last})).json()
    assert again == {"changes": [], "next": last, "more": False}


@pytest.mark.parametrize(
    "after",
    ["", "nonsense", "2a", "2a.00000000", "2A.4f9c8e1b", cursor.encode(42)[:-1] + "x"],
)
async def test_a_cursor_the_api_did_not_hand_out_is_a_400(
    app_client: httpx.AsyncClient, after: str
) -> None:
    response = await app_client.get(CHANGES, params={"after": after})

    assert response.status_code in (400, 422)
    if response.status_code == 400:
        assert_problem(response, 400, "invalid-cursor")


async def test_a_tampered_cursor_is_a_400_problem(app_client: httpx.AsyncClient) -> None:
    good = cursor.encode(41)
    tampered = "2a" + good[good.index(".") :]  # the seq changed, the tag kept

    response = await app_client.get(CHANGES, params={"after": tampered})

    assert_problem(response, 400, "invalid-cursor")


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_a_page_is_1_to_1000_changes(app_client: httpx.AsyncClient, limit: int) -> None:
    assert (await app_client.get(CHANGES, params={"limit": limit})).status_code == 422


async def test_a_cursor_older_than_the_log_keeps_is_410_gone(
    store: EventStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventapi.changes, "RELAY_FLOOR", 3)
    for module in (eventapi.storage.sqlite, eventapi.storage.mongo):
        monkeypatch.setattr(module, "_PRUNE_EVERY", 2)
    monkeypatch.setattr(store, "_keep", Retention(seconds=0))
    async with run_app(settings, store) as app:
        first = await create(app.http, "first")
        start = (await app.http.get(item(first["id"]))).headers["x-changes-cursor"]
        for n in range(8):
            await create(app.http, f"e{n}")

        response = await app.http.get(CHANGES, params={"after": start})
        recent, _ = await follow(app.http, cursor.encode((await store.head()) - 2))

    assert_problem(response, 410, "changes-gone")
    assert "Sync again" in response.json()["detail"]
    assert len(recent) == 2  # what the log still keeps is followed as ever


async def test_bulk_writes_appear_as_a_change_of_each_event(
    store: EventStore, settings: Settings
) -> None:
    ids = [f"0123456789abcdef0123456{n}" for n in range(3)]
    async with run_app(settings, store) as app:
        start = (await app.http.get(EVENTS)).headers["x-changes-cursor"]
        await store.insert_missing([stored(i, stored_event(f"imported {i}")) for i in ids])
        changes, _ = await follow(app.http, start)

    assert [(c["id"], c["kind"]) for c in changes] == [(i, "created") for i in ids]
    assert [c["event"]["title"] for c in changes] == [f"imported {i}" for i in ids]


async def test_every_read_answers_with_its_change_cursor_hit_or_miss(
    client: httpx.AsyncClient,
) -> None:
    made = await create(client, "a")
    missing = "0123456789abcdef01234567"

    answers = [
        await client.get(item(made["id"])),  # MISS
        await client.get(item(made["id"])),  # HIT
        await client.get(EVENTS),
        await client.get(EVENTS),
        await client.get(item(missing)),  # 404
    ]
    etag = answers[1].headers["etag"]
    answers.append(await client.get(item(made["id"]), headers={"If-None-Match": etag}))  # 304

    assert [a.status_code for a in answers] == [200, 200, 200, 200, 404, 304]
    for answer in answers:
        cursor.decode(answer.headers["x-changes-cursor"])  # one this API handed out
    # A hit answers with the cursor its entry was filled with.
    assert answers[0].headers["x-changes-cursor"] == answers[1].headers["x-changes-cursor"]


async def test_a_read_overtaken_by_a_write_answers_with_a_cursor_before_that_write(
    store: EventStore, settings: Settings, fast_path: bool
) -> None:
    """A read pauses right after its store read; a write commits, and the process's watch
    moves its head past it; then the read answers (the old value). Its cursor must still be
    from before the read began, or a follower starting there would miss the write."""
    gated = GatedStore(store)
    try:
        async with run_app(settings, gated, fast_path=fast_path) as app:
            made = await create(app.http, "before")
            await app.runtime.watch.poll()
            gate = gated.arm("get")
            reading = asyncio.create_task(app.http.get(item(made["id"])))
            await gate.read_done.wait()
            await app.http.patch(item(made["id"]), json={"title": "after"})
            await app.runtime.watch.poll()
            gate.open()
            answer = await reading
            changes, _ = await follow(app.http, answer.headers["x-changes-cursor"])
    finally:
        gated.open_all()

    assert answer.json()["title"] == "before"
    copy = {made["id"]: answer.json()}
    apply(copy, changes)
    assert copy[made["id"]]["title"] == "after"


async def test_a_list_walk_then_the_feed_from_its_first_cursor_ends_equal_to_the_store(
    client: httpx.AsyncClient,
) -> None:
    """Writes (creates, updates, deletes) between the pages of a walk: the walk alone
    misses some of them, the walk and the feed from its first page's cursor never do."""
    made = [await create(client, f"e{n:02d}", n % 28 + 1) for n in range(30)]
    copy: dict[str, dict[str, Any]] = {}
    first_cursor = None
    offset, n = 0, 0
    while True:
        response = await client.get(EVENTS, params={"limit": 7, "offset": offset})
        first_cursor = first_cursor or response.headers["x-changes-cursor"]
        page = response.json()
        copy.update((e["id"], e) for e in page)
        # Meanwhile: one event created, one changed, one deleted.
        await create(client, f"new{n}", n + 1)
        await client.patch(item(made[29 - n]["id"]), json={"title": f"changed{n}"})
        await client.delete(item(made[n * 2]["id"]))
        n += 1
        if len(page) < 7:
            break
        offset += 7

    changes, _ = await follow(client, first_cursor)
    apply(copy, changes)

    assert copy == await everything(client)


def test_the_documented_cursors_are_ones_the_api_hands_out() -> None:
    """The README's examples and the OpenAPI document's can be sent as they are."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shown = re.findall(r"\b[0-9a-f]{1,16}\.[0-9a-f]{8}\b", readme)

    assert len(shown) >= 4
    for text in [*shown, cursor.EXAMPLE]:
        cursor.decode(text)
