"""Idempotency-Key on POST /api/events: a retry creates nothing and gets the original answer.

The same key and body: the original 201, byte for byte, with its Location and ETag and
``Idempotent-Replayed: true``; the same key with another body: 422; while the first is in
flight: 409. Keys are per API key. Every test runs on every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eventapi.events.store import Saved
from eventapi.settings import ApiKeys, Settings
from tests.api.helpers import assert_problem, total
from tests.support.api import EVENTS, event, item
from tests.support.app import run_app
from tests.support.gated_store import GatedStore

HANG_GUARD = 30.0  # only stops a broken test from hanging; a passing run never waits on it
KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-fedcba9876543210"


def keyed(key: str, api_key: str | None = None) -> dict[str, str]:
    headers = {"Idempotency-Key": key}
    if api_key is not None:
        headers["X-API-Key"] = api_key
    return headers


async def test_a_retry_gets_the_original_response_and_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post(EVENTS, json=event("Gala"), headers=keyed("k1"))
    again = await client.post(EVENTS, json=event("Gala"), headers=keyed("k1"))

    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["location"] == first.headers["location"]
    assert await total(client) == 1


async def test_equivalent_bodies_are_the_same_request(client: httpx.AsyncClient) -> None:
    sent = b'{ "date": "2025-06-01T12:00:00", "title": "Gala" }'
    headers = {**keyed("k1"), "Content-Type": "application/json"}

    one = await client.post(EVENTS, content=sent, headers=headers)
    two = await client.post(EVENTS, json=event("Gala"), headers=keyed("k1"))

    assert one.status_code == 201, one.text
    assert two.headers["idempotent-replayed"] == "true"
    assert two.content == one.content
    assert await total(client) == 1


async def test_a_replay_answers_as_first_even_after_the_event_changed_or_went(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post(EVENTS, json=event("Gala"), headers=keyed("k1"))
    event_id = first.json()["id"]
    assert (await client.patch(item(event_id), json={"title": "Renamed"})).status_code == 200
    assert (await client.delete(item(event_id))).status_code == 200

    again = await client.post(EVENTS, json=event("Gala"), headers=keyed("k1"))

    assert again.status_code == 201
    assert again.content == first.content
    assert await total(client) == 0


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient) -> None:
    await client.post(EVENTS, json=event("Gala"), headers=keyed("k1"))

    other = await client.post(EVENTS, json=event("Other"), headers=keyed("k1"))

    body = assert_problem(other, 422)
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await total(client) == 1


async def test_without_a_key_every_post_creates(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.post(EVENTS, json=event("Gala"))).status_code == 201

    assert await total(client) == 2


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "tab\there", "caf\u00e9"], ids=["empty", "long", "control", "latin1"]
)
async def test_an_invalid_key_is_400_and_creates_nothing(
    client: httpx.AsyncClient, key: str
) -> None:
    response = await client.post(
        EVENTS, json=event("Gala"), headers=[(b"Idempotency-Key", key.encode("latin-1"))]
    )

    assert_problem(response, 400)
    assert await total(client) == 0


@pytest.mark.parametrize("key", ["x", "x" * 255, "a b ~!", "5f2b7c1e-8a4d-4c3b-9e6f-1a2b3c4d5e6f"])
async def test_valid_keys_are_taken(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(EVENTS, json=event("Gala"), headers=keyed(key))

    assert response.status_code == 201, response.text


# --- in flight ---------------------------------------------------------------------------


async def test_a_duplicate_while_the_first_is_in_flight_is_409(
    gated_client: tuple[httpx.AsyncClient, GatedStore],
) -> None:
    http, gated = gated_client
    gate = gated.arm("create_once")
    first = asyncio.create_task(http.post(EVENTS, json=event("Gala"), headers=keyed("k1")))
    async with asyncio.timeout(HANG_GUARD):
        await gate.read_done.wait()
    assert isinstance(gate.value, Saved)

    duplicate = await http.post(EVENTS, json=event("Gala"), headers=keyed("k1"))
    other_key = await http.post(EVENTS, json=event("Gala"), headers=keyed("k2"))
    gate.open()
    async with asyncio.timeout(HANG_GUARD):
        done = await first
    after = await http.post(EVENTS, json=event("Gala"), headers=keyed("k1"))

    assert_problem(duplicate, 409)
    assert other_key.status_code == 201
    assert done.status_code == 201
    assert after.content == done.content
    assert await total(http) == 2


# --- per API key -------------------------------------------------------------------------


@pytest.fixture
async def two_keys(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/keyed.db",
        cache_url="memory://",
        api_keys=ApiKeys.parse(f"{KEY_A},{KEY_B}"),
    )
    async with run_app(settings) as running:
        http = running.http
        yield http


async def test_keys_are_scoped_per_api_key(two_keys: httpx.AsyncClient) -> None:
    a = await two_keys.post(EVENTS, json=event("Gala"), headers=keyed("k1", KEY_A))
    b = await two_keys.post(EVENTS, json=event("Other"), headers=keyed("k1", KEY_B))
    a_again = await two_keys.post(
        EVENTS,
        json=event("Gala"),
        headers={"Idempotency-Key": "k1", "Authorization": f"Bearer {KEY_A}"},
    )

    assert a.status_code == 201
    assert b.status_code == 201, b.text  # another API key: its own "k1"
    assert b.json()["id"] != a.json()["id"]
    assert a_again.headers["idempotent-replayed"] == "true"
    assert a_again.content == a.content
    assert await total(two_keys) == 2


async def test_post_documents_the_header_and_its_answers(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    post = schema["paths"][EVENTS]["post"]

    assert any(p["name"] == "idempotency-key" and p["in"] == "header" for p in post["parameters"])
    assert {"400", "409", "422"} <= set(post["responses"])
    assert "Idempotent-Replayed" in post["responses"]["201"]["headers"]


async def test_the_scope_is_the_api_key_that_matched(two_keys: httpx.AsyncClient) -> None:
    first = await two_keys.post(EVENTS, json=event("Gala"), headers=keyed("k1", KEY_A))
    # The wrong key first: the one that matched is the scope, not the first one sent.
    headers = {"Authorization": "Bearer not-a-configured-key-000", **keyed("k1", KEY_A)}

    again = await two_keys.post(EVENTS, json=event("Gala"), headers=headers)

    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
