"""Lost updates: PUT, PATCH and DELETE with If-Match (RFC 9110 13.1.1), through HTTP.

A write with the ETag of a GET applies only if the event is unchanged since; otherwise 412
problem+json carrying the current ETag, and nothing is written. ``*`` needs the event to
exist; a list matches if any tag does; a weak tag never matches. Write responses carry the
new ETag, the one a later GET returns, HIT or MISS. With EVENTAPI_REQUIRE_IF_MATCH a write
without If-Match is a 428. Every test runs on every store backend, with and without the
item fast path; the race is made deterministic by pausing one write after its read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Literal

import httpx
import pytest

from eventapi.events.store import EventStore, Versioned
from eventapi.settings import Settings
from tests.api.helpers import assert_problem
from tests.support.api import EVENTS, MISSING_ID, create, event, item
from tests.support.app import run_app
from tests.support.gated_store import GatedStore

Write = Literal["put", "patch", "delete"]
WRITES: list[Write] = ["put", "patch", "delete"]
HANG_GUARD = 30.0  # only stops a broken test from hanging; a passing run never waits on it
IfMatchOf = Callable[[str], str | list[str]]  # the current ETag -> what to send


async def send(
    http: httpx.AsyncClient,
    kind: Write,
    event_id: str,
    if_match: str | list[str] | None = None,
    title: str = "Changed",
) -> httpx.Response:
    """PUT, PATCH or DELETE of one event; ``if_match`` as one If-Match line, or one line per
    list item."""
    lines = [if_match] if isinstance(if_match, str) else (if_match or [])
    headers = [("If-Match", line) for line in lines]
    if kind == "put":
        return await http.put(item(event_id), json=event(title, 2), headers=headers)
    if kind == "patch":
        return await http.patch(item(event_id), json={"title": title}, headers=headers)
    return await http.delete(item(event_id), headers=headers)


async def current(http: httpx.AsyncClient, event_id: str) -> httpx.Response:
    response = await http.get(item(event_id))
    assert response.status_code == 200, response.text
    return response


async def etag(http: httpx.AsyncClient, event_id: str) -> str:
    tag: str = (await current(http, event_id)).headers["etag"]
    return tag


def assert_applied(response: httpx.Response, kind: Write, title: str = "Changed") -> None:
    assert response.status_code == 200, response.text
    if kind == "delete":
        assert "etag" not in response.headers
    else:
        assert response.json()["title"] == title
        assert response.headers["etag"].startswith('"')


async def assert_write_shows_in_later_gets(
    http: httpx.AsyncClient, response: httpx.Response, kind: Write, event_id: str
) -> None:
    """The write's ETag is what GET returns after it, from the cache at once (the write left
    its value there: cache/base.py, Warm writes); a delete is a 404."""
    if kind == "delete":
        assert (await http.get(item(event_id))).status_code == 404
        return
    first, second = await current(http, event_id), await current(http, event_id)
    assert [first.headers["x-cache"], second.headers["x-cache"]] == ["HIT", "HIT"]
    for later in (first, second):
        assert later.headers["etag"] == response.headers["etag"]
        assert later.content == response.content


def assert_precondition_failed(response: httpx.Response, current_etag: str | None) -> None:
    """412 problem+json; with the event's current ETag (header and body) if it exists."""
    body = assert_problem(response, 412)
    if current_etag is None:
        assert "etag" not in response.headers
        assert "etag" not in body
    else:
        assert response.headers["etag"] == current_etag
        assert body["etag"] == current_etag


# --- a matching If-Match ------------------------------------------------------------------


@pytest.mark.parametrize("kind", WRITES)
async def test_if_match_with_the_etag_of_a_get_applies(
    client: httpx.AsyncClient, kind: Write
) -> None:
    created = await create(client, "Original")
    tag = await etag(client, created["id"])

    response = await send(client, kind, created["id"], tag)

    assert_applied(response, kind)
    await assert_write_shows_in_later_gets(client, response, kind, created["id"])


@pytest.mark.parametrize("kind", WRITES)
async def test_if_match_star_applies_to_an_existing_event(
    client: httpx.AsyncClient, kind: Write
) -> None:
    created = await create(client, "Original")

    response = await send(client, kind, created["id"], "*")

    assert_applied(response, kind)
    await assert_write_shows_in_later_gets(client, response, kind, created["id"])


@pytest.mark.parametrize("kind", WRITES)
@pytest.mark.parametrize(
    "listed",
    [
        pytest.param(lambda tag: f'"stale", {tag}', id="one-line"),
        pytest.param(lambda tag: [f'W/{tag}, "stale"', tag], id="two-lines"),
    ],
)
async def test_if_match_with_a_list_applies_if_any_tag_matches(
    client: httpx.AsyncClient, kind: Write, listed: IfMatchOf
) -> None:
    created = await create(client, "Original")
    tag = await etag(client, created["id"])

    response = await send(client, kind, created["id"], listed(tag))

    assert_applied(response, kind)


@pytest.mark.parametrize("kind", WRITES)
async def test_each_write_response_etag_is_what_a_later_get_returns(
    client: httpx.AsyncClient, kind: Write
) -> None:
    created = await create(client, "Original")
    await current(client, created["id"])  # cached, so the write must retire it

    response = await send(client, kind, created["id"])  # no If-Match: as before

    assert_applied(response, kind)
    await assert_write_shows_in_later_gets(client, response, kind, created["id"])


async def test_the_created_event_etag_is_what_a_get_returns(client: httpx.AsyncClient) -> None:
    response = await client.post(EVENTS, json=event("New", 3, location="Lyon"))
    assert response.status_code == 201, response.text

    got = await current(client, response.json()["id"])

    assert got.headers["etag"] == response.headers["etag"]
    assert got.content == response.content


async def test_writes_chained_on_their_own_etags_all_apply(client: httpx.AsyncClient) -> None:
    created = await create(client, "v0")
    tag = await etag(client, created["id"])

    for n in range(1, 4):
        response = await send(client, "patch", created["id"], tag, title=f"v{n}")
        assert_applied(response, "patch", f"v{n}")
        tag = response.headers["etag"]

    assert await etag(client, created["id"]) == tag


# --- an If-Match that does not match ------------------------------------------------------


@pytest.mark.parametrize("kind", WRITES)
async def test_a_stale_etag_is_412_with_the_current_etag_and_changes_nothing(
    client: httpx.AsyncClient, kind: Write
) -> None:
    created = await create(client, "Original")
    stale = await etag(client, created["id"])
    other = await send(client, "patch", created["id"], title="Someone else's")
    assert other.status_code == 200, other.text

    response = await send(client, kind, created["id"], stale)

    assert_precondition_failed(response, other.headers["etag"])
    now = await current(client, created["id"])
    assert now.content == other.content
    assert now.headers["etag"] == other.headers["etag"]


@pytest.mark.parametrize("kind", WRITES)
@pytest.mark.parametrize(
    "if_match",
    [
        pytest.param(lambda tag: f"W/{tag}", id="weak"),
        pytest.param(lambda tag: '"stale", W/' + tag, id="list-without-it"),
        pytest.param(lambda tag: tag.strip('"'), id="unquoted"),
        pytest.param(lambda tag: "", id="empty"),
    ],
)
async def test_an_if_match_without_the_current_strong_etag_is_412(
    client: httpx.AsyncClient, kind: Write, if_match: IfMatchOf
) -> None:
    created = await create(client, "Original")
    get = await current(client, created["id"])
    tag = get.headers["etag"]

    response = await send(client, kind, created["id"], if_match(tag))

    assert_precondition_failed(response, tag)
    assert (await current(client, created["id"])).content == get.content


@pytest.mark.parametrize("kind", WRITES)
@pytest.mark.parametrize("if_match", ["*", '"0123456789abcdef0123456789abcdef"'])
async def test_if_match_on_a_missing_event_is_412_not_404(
    client: httpx.AsyncClient, kind: Write, if_match: str
) -> None:
    response = await send(client, kind, MISSING_ID, if_match)

    assert_precondition_failed(response, None)
    assert (await client.get(item(MISSING_ID))).status_code == 404


@pytest.mark.parametrize("kind", WRITES)
async def test_if_match_on_a_deleted_event_is_412(client: httpx.AsyncClient, kind: Write) -> None:
    created = await create(client, "Original")
    tag = await etag(client, created["id"])
    assert (await send(client, "delete", created["id"])).status_code == 200

    response = await send(client, kind, created["id"], tag)

    assert_precondition_failed(response, None)


async def test_an_empty_patch_checks_if_match_too(client: httpx.AsyncClient) -> None:
    created = await create(client, "Original")
    stale = await etag(client, created["id"])
    other = await send(client, "patch", created["id"], title="Other")

    refused = await client.patch(item(created["id"]), json={}, headers={"If-Match": stale})
    assert_precondition_failed(refused, other.headers["etag"])

    same = await client.patch(
        item(created["id"]), json={}, headers={"If-Match": other.headers["etag"]}
    )
    assert same.status_code == 200, same.text
    assert same.headers["etag"] == other.headers["etag"]
    assert same.content == other.content


# --- a race: the event changes between the check and the write ----------------------------


@pytest.mark.parametrize("kind", WRITES)
async def test_of_two_writes_with_one_etag_exactly_one_applies(
    gated_client: tuple[httpx.AsyncClient, GatedStore], kind: Write
) -> None:
    """The first write passes the If-Match check and is paused before it writes; the second,
    with the same ETag, goes through; the first must then fail: the check and the write are
    one atomic step, not a read followed by a blind write."""
    http, gated = gated_client
    created = await create(http, "Original")
    tag = await etag(http, created["id"])
    gate = gated.arm("get_versioned")
    first = asyncio.create_task(send(http, kind, created["id"], tag, title="First"))
    async with asyncio.timeout(HANG_GUARD):
        await gate.read_done.wait()
    assert isinstance(gate.value, Versioned)
    assert gate.value.event.title == "Original"  # the first write has checked its ETag

    second = await send(http, "patch", created["id"], tag, title="Second")
    gate.open()
    async with asyncio.timeout(HANG_GUARD):
        late = await first

    assert_applied(second, "patch", "Second")
    assert_precondition_failed(late, second.headers["etag"])
    now = await current(http, created["id"])
    assert now.content == second.content
    assert gated.calls["update"] + gated.calls["delete"] == 2


async def test_a_delete_between_the_check_and_the_write_is_412(
    gated_client: tuple[httpx.AsyncClient, GatedStore],
) -> None:
    http, gated = gated_client
    created = await create(http, "Original")
    tag = await etag(http, created["id"])
    gate = gated.arm("get_versioned")
    paused = asyncio.create_task(send(http, "patch", created["id"], tag))
    async with asyncio.timeout(HANG_GUARD):
        await gate.read_done.wait()

    assert (await send(http, "delete", created["id"])).status_code == 200
    gate.open()
    async with asyncio.timeout(HANG_GUARD):
        late = await paused

    assert_precondition_failed(late, None)
    assert (await http.get(item(created["id"]))).status_code == 404


# --- If-Match required --------------------------------------------------------------------


@pytest.fixture
async def strict(
    store: EventStore, tmp_path: Path, fast_path: bool
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with EVENTAPI_REQUIRE_IF_MATCH=true."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/app.db", cache_url="memory://", require_if_match=True
    )
    async with run_app(settings, store, fast_path=fast_path) as running:
        yield running.http


@pytest.mark.parametrize("kind", WRITES)
async def test_a_write_without_if_match_is_428_when_required(
    strict: httpx.AsyncClient, kind: Write
) -> None:
    created = await create(strict, "Original")  # POST needs no If-Match
    before = await current(strict, created["id"])

    response = await send(strict, kind, created["id"])

    body = assert_problem(response, 428)
    assert "If-Match" in body["detail"]
    assert (await current(strict, created["id"])).content == before.content


@pytest.mark.parametrize("kind", WRITES)
async def test_a_write_with_if_match_applies_when_required(
    strict: httpx.AsyncClient, kind: Write
) -> None:
    created = await create(strict, "Original")
    tag = await etag(strict, created["id"])

    assert_applied(await send(strict, kind, created["id"], tag), kind)


async def test_a_missing_event_without_if_match_is_428_when_required(
    strict: httpx.AsyncClient,
) -> None:
    for kind in WRITES:
        assert_problem(await send(strict, kind, MISSING_ID), 428)


# --- the OpenAPI document -----------------------------------------------------------------


async def test_openapi_documents_if_match_412_and_428(app_client: httpx.AsyncClient) -> None:
    document = (await app_client.get("/openapi.json")).json()
    operations = document["paths"]["/api/events/{event_id}"]

    for method in ("put", "patch", "delete"):
        operation = operations[method]
        headers = {p["name"].lower() for p in operation["parameters"] if p["in"] == "header"}
        assert "if-match" in headers, method
        assert {"412", "428"} <= set(operation["responses"]), method
        assert "ETag" in operation["responses"]["412"]["headers"], method
    for method in ("put", "patch"):
        assert "ETag" in operations[method]["responses"]["200"]["headers"], method
