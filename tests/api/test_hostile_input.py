"""Hostile input, row by row: each answer is the documented status as an RFC 9457 problem,
changes nothing in the store, logs no error (no traceback for a client's mistake), and is
listed in the OpenAPI document.

1. Dates whose UTC instant is outside years 1-9999: 422 (was a 500, OverflowError).
2. Numbers and numeric strings as dates: 422, ISO 8601 only (were read as Unix time).
3. A body that is not a JSON document: 400 "malformed-body" (was 400 or 422 by accident).
4. A body not sent as JSON (text/plain, form, multipart, XML, no Content-Type): 415.
5. HEAD: the GET's answer without the body, from the cache when cached (was 405).
6. A trailing slash: a relative redirect, never built from the Host header (was absolute).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from eventapi.events.store import EventStore
from eventapi.http.fastpath import ReadEdge
from eventapi.http.observe import ObserveMiddleware
from eventapi.metrics import Metrics
from eventapi.settings import Settings
from tests.api.helpers import assert_problem, total
from tests.support.api import EVENTS, MISSING_ID, create, event, item
from tests.support.app import http_client, run_app

WRITES = ["POST", "PUT", "PATCH"]
MALFORMED = "https://eventapi.dev/problems/malformed-body"
UNSUPPORTED = "https://eventapi.dev/problems/unsupported-media-type"


@pytest.fixture
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The test logs nothing at ERROR or above (a client's mistake is not a server error:
    no "unhandled error" line, no traceback)."""
    with caplog.at_level(logging.INFO):
        yield
    # At teardown, caplog.records holds the teardown's records only: ask for the test's.
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert [record.getMessage() for record in records if record.levelno >= logging.ERROR] == []


async def write(
    client: httpx.AsyncClient, method: str, event_id: str, **request: Any
) -> httpx.Response:
    """POST to the collection, or PUT/PATCH to ``event_id``."""
    url = EVENTS if method == "POST" else item(event_id)
    return await client.request(method, url, **request)


async def assert_unchanged(client: httpx.AsyncClient, created: dict[str, Any]) -> None:
    """The store holds ``created``, as created, and nothing else."""
    assert await total(client) == 1
    assert (await client.get(item(created["id"]))).json() == created


# --- 1. Dates out of range once in UTC ------------------------------------------------

OUT_OF_RANGE = ["9999-12-31T23:59:59-00:01", "0001-01-01T00:00:00+00:01"]
DATE_TARGETS = ["POST", "PUT", "PATCH", "date_from", "date_to"]


async def send_date(
    client: httpx.AsyncClient, target: str, event_id: str, date: Any
) -> tuple[httpx.Response, list[str]]:
    """``date`` in a write's body or in a list query parameter; the response, and the
    location its error should name."""
    if target in WRITES:
        body = {"date": date} if target == "PATCH" else event(date=date)
        return await write(client, target, event_id, json=body), ["body", "date"]
    return await client.get(EVENTS, params={target: date}), ["query", target]


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize("target", DATE_TARGETS)
@pytest.mark.parametrize("date", OUT_OF_RANGE)
async def test_date_out_of_range_in_utc_is_422(
    client: httpx.AsyncClient, target: str, date: str
) -> None:
    created = await create(client)

    response, loc = await send_date(client, target, created["id"], date)

    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [loc]
    assert "out of range" in problem["errors"][0]["msg"]
    await assert_unchanged(client, created)


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("9999-12-31T23:59:59+00:01", "9999-12-31T23:58:59Z"),
        ("0001-01-01T00:00:00-00:01", "0001-01-01T00:01:00Z"),
        ("9999-12-31T23:59:59.999", "9999-12-31T23:59:59.999"),
        ("0001-01-01T00:00:00", "0001-01-01T00:00:00"),
    ],
)
async def test_dates_at_the_edges_of_the_range_are_kept(
    client: httpx.AsyncClient, sent: str, returned: str
) -> None:
    created = await create(client, date=sent)

    assert created["date"] == returned
    assert (await client.get(item(created["id"]))).json()["date"] == returned
    listed = await client.get(EVENTS, params={"date_from": sent, "date_to": sent})
    assert [found["id"] for found in listed.json()] == [created["id"]]


# --- 2. Numbers and numeric strings are not dates --------------------------------------

NUMERIC_DATES = ["1700000000", "0.5", "-1", ".5", "2025", "20251201", "1699999999999"]


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize("target", DATE_TARGETS)
@pytest.mark.parametrize("date", NUMERIC_DATES)
async def test_numeric_date_is_422_iso_8601_only(
    client: httpx.AsyncClient, target: str, date: str
) -> None:
    created = await create(client)

    response, loc = await send_date(client, target, created["id"], date)

    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [loc]
    assert "ISO 8601" in problem["errors"][0]["msg"]
    await assert_unchanged(client, created)


@pytest.mark.parametrize("date", ["2025-12-01", "2025-12-01 10:00:00", "2025-12-01T10:00"])
async def test_iso_forms_that_start_with_the_year_are_still_dates(
    client: httpx.AsyncClient, date: str
) -> None:
    # The counterpart of the test above: ISO 8601 text is read as before.
    created = await create(client, date=date)
    assert created["date"].startswith("2025-12-01T")


# --- 3. A body that is not a JSON document: 400 ------------------------------------------

VALID = b'{"title": "Changed", "date": "2025-06-01T12:00:00"}'
NOT_JSON = [
    pytest.param(b'{"title": "\xff\xfe", "date": "2025-06-01T12:00:00"}', id="invalid-utf-8"),
    pytest.param(b'{"title": "\\ud800", "date": "2025-06-01T12:00:00"}', id="lone-surrogate"),
    pytest.param(b"\xef\xbb\xbf" + VALID, id="byte-order-mark"),
    pytest.param(b"[" * 30_000 + b"]" * 30_000, id="30k-nested-arrays"),
    pytest.param(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, id="10k-nested-objects"),
    pytest.param(b'{"title": "x", "date": "2025-06-01T12:00:00", "n": NaN}', id="nan"),
    pytest.param(b'{"title": "x", "date": ', id="truncated"),
    pytest.param(b"{'title': 'x'}", id="single-quotes"),
    pytest.param(b"title=x&date=2025", id="form-text"),
    pytest.param(b"", id="empty"),
    pytest.param(b"   ", id="blank"),
    pytest.param(VALID + b" {}", id="two-documents"),
]


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("content", NOT_JSON)
async def test_body_that_is_not_a_json_document_is_400(
    client: httpx.AsyncClient, method: str, content: bytes
) -> None:
    created = await create(client)

    response = await write(
        client, method, created["id"], content=content, headers={"content-type": "application/json"}
    )

    problem = assert_problem(response, 400)
    assert problem["type"] == MALFORMED
    assert problem["title"] == "Malformed request body"
    await assert_unchanged(client, created)


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"1e3", id="number"),
        pytest.param(b'{"title": ' + b"[" * 1000 + b"]" * 1000 + b"}", id="1000-nested-arrays"),
    ],
)
async def test_json_document_that_fails_validation_is_422(
    client: httpx.AsyncClient, method: str, content: bytes
) -> None:
    # The other side of the line: a JSON document, just not an event.
    created = await create(client)

    response = await write(
        client, method, created["id"], content=content, headers={"content-type": "application/json"}
    )

    assert_problem(response, 422)
    await assert_unchanged(client, created)


@pytest.mark.usefixtures("no_error_logged")
async def test_100k_nested_arrays_are_refused_at_once(
    store: EventStore, settings: Settings, fast_path: bool
) -> None:
    # 200 KB of nesting, under a body limit raised to let it through: the parser gives up
    # at level 1025, whatever follows (json.loads would have raised RecursionError).
    depth = 100_000
    roomy = settings.model_copy(update={"max_body_bytes": 4 * depth})
    async with run_app(roomy, store, fast_path=fast_path) as running:
        started_at = time.perf_counter()
        response = await running.http.post(
            EVENTS,
            content=b"[" * depth + b"]" * depth,
            headers={"content-type": "application/json"},
        )
        elapsed = time.perf_counter() - started_at

        assert_problem(response, 400)
        assert "depth" in response.json()["detail"]
        assert elapsed < 2.0
        assert await total(running.http) == 0


@pytest.mark.usefixtures("no_error_logged")
async def test_client_gone_before_the_body_is_400_without_a_traceback(
    store: EventStore, settings: Settings
) -> None:
    # The body never arrives (the client disconnected): nothing to parse, nothing logged.
    async with run_app(settings, store) as running:
        messages: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            messages.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": EVENTS,
            "raw_path": EVENTS.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
            "server": ("test", 80),
            "client": ("127.0.0.1", 1234),
        }
        await running.app(scope, receive, send)

        assert messages[0]["status"] == 400
        assert await total(running.http) == 0


# --- 4. A body not sent as JSON: 415 ------------------------------------------------------


def _not_json_requests() -> list[Any]:
    body = VALID
    return [
        pytest.param({"content": body, "headers": {"content-type": "text/plain"}}, id="text"),
        pytest.param(
            {"content": body, "headers": {"content-type": "text/plain; charset=utf-8"}},
            id="text-utf8",
        ),
        pytest.param({"data": {"title": "x", "date": "2025-06-01T12:00:00"}}, id="form"),
        pytest.param(
            {"data": {"title": "x"}, "files": {"date": ("d.txt", b"2025-06-01T12:00:00")}},
            id="multipart",
        ),
        pytest.param(
            {
                "content": b"<event><title>x</title></event>",
                "headers": {"content-type": "application/xml"},
            },
            id="xml",
        ),
        pytest.param({"content": body, "headers": {"content-type": "text/json"}}, id="text-json"),
        pytest.param(
            {"content": body, "headers": {"content-type": "application/jsonx"}}, id="jsonx"
        ),
        pytest.param(
            {"content": body, "headers": {"content-type": "application/json; charset=latin-1"}},
            id="latin-1",
        ),
        pytest.param({"content": body}, id="no-content-type"),
        pytest.param({}, id="no-content-type-no-body"),
    ]


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("request_parts", _not_json_requests())
async def test_body_not_sent_as_json_is_415(
    client: httpx.AsyncClient, method: str, request_parts: dict[str, Any]
) -> None:
    created = await create(client)

    response = await write(client, method, created["id"], **request_parts)

    problem = assert_problem(response, 415)
    assert problem["type"] == UNSUPPORTED
    assert "application/json" in problem["detail"]
    if method == "PATCH":
        assert "application/merge-patch+json" in response.headers["accept-patch"]
    else:
        assert "accept-patch" not in response.headers
    await assert_unchanged(client, created)


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        'Application/JSON;Charset="UTF-8"',
        "application/merge-patch+json",
        "application/problem+json",
        "application/vnd.api+json",
    ],
)
async def test_json_media_types_are_accepted(
    client: httpx.AsyncClient, method: str, content_type: str
) -> None:
    created = await create(client)

    response = await write(
        client, method, created["id"], content=VALID, headers={"content-type": content_type}
    )

    assert response.status_code in (200, 201), response.text
    assert response.json()["title"] == "Changed"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/nope", 404),
        ("POST", f"{EVENTS}/{MISSING_ID}", 405),
        ("DELETE", EVENTS, 405),
    ],
)
async def test_routing_answers_before_the_media_type_check(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(
        method, path, content=b"x", headers={"content-type": "text/plain"}
    )

    assert_problem(response, status)


# --- 5. HEAD ------------------------------------------------------------------------------

STABLE = ("content-type", "content-length", "etag", "cache-control", "x-total-count", "link")


async def head_then_get(
    client: httpx.AsyncClient, path: str, **headers: str
) -> tuple[httpx.Response, httpx.Response]:
    head = await client.head(path, headers=headers)
    get = await client.get(path, headers=headers)
    assert head.content == b""
    return head, get


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize(
    "path", ["list", "list-query", "item", "missing-item", "/health", "/docs", "/openapi.json"]
)
async def test_head_answers_like_get_without_the_body(client: httpx.AsyncClient, path: str) -> None:
    created = await create(client)
    url = {
        "list": EVENTS,
        "list-query": f"{EVENTS}?limit=1&sort=-title",
        "item": item(created["id"]),
        "missing-item": item(MISSING_ID),
    }.get(path, path)

    head, get = await head_then_get(client, url)

    assert head.status_code == get.status_code == (404 if path == "missing-item" else 200)
    for name in STABLE:
        assert head.headers.get(name) == get.headers.get(name), name
    assert int(head.headers["content-length"]) == len(get.content) > 0
    if path in ("list", "list-query", "item"):
        # HEAD came first and filled the cache; the GET was served from it.
        assert (head.headers["x-cache"], get.headers["x-cache"]) == ("MISS", "HIT")


@pytest.mark.parametrize("path", ["list", "item"])
async def test_head_is_served_from_the_cache(client: httpx.AsyncClient, path: str) -> None:
    created = await create(client)
    url = EVENTS if path == "list" else item(created["id"])
    get = await client.get(url)

    head = await client.head(url)
    not_modified = await client.head(url, headers={"if-none-match": get.headers["etag"]})

    assert head.status_code == 200
    assert head.headers["x-cache"] == "HIT"
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == str(len(get.content))
    assert head.content == b""
    assert not_modified.status_code == 304
    assert not_modified.headers["x-cache"] == "HIT"


async def test_head_of_metrics_and_redoc(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/redoc"):
        head = await client.head(path)
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) > 0
        assert head.headers["content-type"] == (await client.get(path)).headers["content-type"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", EVENTS, "GET, HEAD, POST"),
        ("POST", item(MISSING_ID), "DELETE, GET, HEAD, PATCH, PUT"),
        ("POST", "/health", "GET, HEAD"),
        ("PUT", "/metrics", "GET, HEAD"),
    ],
)
async def test_405_lists_head_wherever_get_is_allowed(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)

    assert_problem(response, 405)
    assert response.headers["allow"] == allowed


async def test_head_of_an_item_is_answered_by_the_fast_path_without_routing(
    store: EventStore, settings: Settings
) -> None:
    # The outer layer (HEAD as GET) in front of the fast path, and behind them a "router"
    # that records what reaches it: a HEAD of one event never does; a HEAD of anything else
    # arrives as a GET.
    async with run_app(settings, store) as running:
        created = await create(running.http)
        routed: list[str] = []

        async def router(scope: Scope, receive: Receive, send: Send) -> None:
            routed.append(f"{scope['method']} {scope['path']}")
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        layers = ObserveMiddleware(ReadEdge(router), Metrics(), None)

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = {"runtime": running.runtime}
            await layers(scope, receive, send)

        async with http_client(app) as http:
            head = await http.head(item(created["id"]))
            other = await http.head(EVENTS)

        assert head.status_code == 200
        assert head.headers["x-cache"] == "MISS"
        assert head.content == b""
        assert other.status_code == 204
        assert routed == [f"GET {EVENTS}"]


async def test_head_is_timed_as_head_under_the_route_it_matched(client: httpx.AsyncClient) -> None:
    created = await create(client)
    await client.head(item(created["id"]))
    await client.head(EVENTS)

    text = (await client.get("/metrics")).text

    assert 'method="HEAD",route="/api/events/{event_id}",status="200"' in text
    assert 'method="HEAD",route="/api/events",status="200"' in text


# --- 6. A trailing slash never reflects the Host header --------------------------------------


@pytest.mark.usefixtures("no_error_logged")
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
@pytest.mark.parametrize(
    ("path", "location"),
    [
        (f"{EVENTS}/", EVENTS),
        (f"{EVENTS}//", EVENTS),
        (f"{EVENTS}/?limit=1&q=a%20b", f"{EVENTS}?limit=1&q=a%20b"),
        (f"{EVENTS}/{MISSING_ID}/", f"{EVENTS}/{MISSING_ID}"),
        ("/health/", "/health"),
    ],
)
async def test_trailing_slash_redirect_is_relative_and_ignores_the_host(
    client: httpx.AsyncClient, method: str, path: str, location: str
) -> None:
    await create(client)

    response = await client.request(
        method,
        path,
        headers={"host": "evil.example", "x-forwarded-host": "evil.example"},
        json=event() if method == "POST" else None,
    )

    assert response.status_code == 307
    assert response.headers["location"] == location
    assert not location.startswith("//")
    assert "evil" not in str(response.headers).lower()
    assert await total(client) == 1


async def test_following_the_redirect_gives_the_answer_without_the_slash(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client)

    redirect = await client.get(f"{EVENTS}/", headers={"host": "evil.example"})
    followed = await client.get(redirect.headers["location"])

    assert followed.status_code == 200
    assert followed.json() == [created]


@pytest.mark.parametrize("path", ["/nope/", f"{EVENTS}/{MISSING_ID}/extra/", "//", "/api/"])
async def test_trailing_slash_on_an_unknown_path_is_404(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"host": "evil.example"})

    assert_problem(response, 404)
    assert "location" not in response.headers


# --- OpenAPI: every status listed --------------------------------------------------------


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


async def test_openapi_lists_the_body_statuses_under_problem_json(
    app_client: httpx.AsyncClient,
) -> None:
    paths = (await openapi(app_client))["paths"]
    with_body = {
        (method, path): operation
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }

    assert set(with_body) == {
        ("post", EVENTS),
        ("put", f"{EVENTS}/{{event_id}}"),
        ("patch", f"{EVENTS}/{{event_id}}"),
    }
    for (method, path), operation in with_body.items():
        for status in ("400", "413", "415", "422", "503"):
            content = operation["responses"][status]["content"]
            assert list(content) == ["application/problem+json"], (method, path, status)


async def test_head_is_not_a_separate_operation(app_client: httpx.AsyncClient) -> None:
    # HEAD is part of every GET (RFC 9110): the document lists no HEAD operations.
    paths = (await openapi(app_client))["paths"]
    assert not [path for path, operations in paths.items() if "head" in operations]
