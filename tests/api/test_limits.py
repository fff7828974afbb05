"""The 64 KiB request-body limit, with and without a Content-Length."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_problem, total
from tests.support.api import EVENTS, create, event
from tests.support.flaky import FlakyStore

LIMIT = 64 * 1024
CHUNK = 10_000  # not a divisor of LIMIT, so a chunk straddles the boundary


def padded(size: int, **fields: Any) -> bytes:
    """A valid JSON event body of exactly ``size`` bytes (trailing whitespace is valid JSON)."""
    body = json.dumps(event(**fields)).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


async def send(
    client: httpx.AsyncClient, method: str, url: str, data: bytes, *, chunked: bool
) -> httpx.Response:
    content: bytes | AsyncIterator[bytes] = chunks(data) if chunked else data
    request = client.build_request(
        method, url, content=content, headers={"content-type": "application/json"}
    )
    if chunked:
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
    else:
        assert request.headers["content-length"] == str(len(data))
    return await client.send(request)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [LIMIT + 1, LIMIT + CHUNK, 4 * LIMIT])
async def test_post_over_the_limit_is_413_and_creates_nothing(
    client: httpx.AsyncClient, size: int, chunked: bool
) -> None:
    await create(client)

    response = await send(client, "POST", EVENTS, padded(size, title="Too big"), chunked=chunked)

    problem = assert_problem(response, 413)
    assert problem["type"] == "https://eventapi.dev/problems/payload-too-large"
    assert await total(client) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_over_the_limit_is_413_and_changes_nothing(
    client: httpx.AsyncClient, method: str, chunked: bool
) -> None:
    created = await create(client)
    url = f"{EVENTS}/{created['id']}"

    response = await send(client, method, url, padded(LIMIT + 1, title="Changed"), chunked=chunked)

    assert_problem(response, 413)
    assert (await client.get(url)).json() == created


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_of_exactly_the_limit_is_accepted(
    client: httpx.AsyncClient, chunked: bool
) -> None:
    response = await send(client, "POST", EVENTS, padded(LIMIT, title="Fits"), chunked=chunked)

    assert response.status_code != 413
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "Fits"
    assert await total(client) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_invalid_json_of_exactly_the_limit_is_400_not_413(
    client: httpx.AsyncClient, chunked: bool
) -> None:
    response = await send(client, "POST", EVENTS, b"x" * LIMIT, chunked=chunked)

    assert_problem(response, 400)
    assert await total(client) == 0


async def test_declared_length_over_the_limit_is_refused_without_reading(
    flaky_client: httpx.AsyncClient, flaky: FlakyStore
) -> None:
    # A Content-Length over the limit is refused on the header alone: the body the
    # client declared is never consumed (here the generator would fail if it were).
    consumed: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        consumed.append(b"started")
        yield b"{}"
        raise AssertionError("the body was read")  # pragma: no cover

    request = flaky_client.build_request(
        "POST",
        EVENTS,
        content=body(),
        headers={"content-type": "application/json", "content-length": str(LIMIT + 1)},
    )

    response = await flaky_client.send(request)

    assert_problem(response, 413)
    assert consumed == []
    assert flaky.calls == []
