"""Every error is problem+json; invalid input is refused with 422 before any store call."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.api.helpers import assert_problem, total
from tests.support.api import EVENTS, MISSING_ID, create, event
from tests.support.app import RunningApp
from tests.support.flaky import FlakyStore

MALFORMED_IDS = [
    pytest.param("abc", id="too-short"),
    pytest.param(MISSING_ID[:-1], id="23-chars"),
    pytest.param(MISSING_ID + "a", id="25-chars"),
    pytest.param("zz" + MISSING_ID[2:], id="non-hex"),
    pytest.param("0123456789abcdef0123456-", id="dash"),
    pytest.param(quote('{"$gt":""}', safe=""), id="operator"),
    pytest.param(quote(" " + MISSING_ID[1:], safe=""), id="space"),
]

WRITES = ["post", "put", "patch"]


async def send(client: httpx.AsyncClient, method: str, event_id: str, body: Any) -> httpx.Response:
    """POST to the collection, or PUT/PATCH to ``event_id``, with the JSON ``body``."""
    url = EVENTS if method == "post" else f"{EVENTS}/{event_id}"
    return await client.request(method.upper(), url, json=body)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("event_id", MALFORMED_IDS)
async def test_malformed_id_is_422_and_never_reaches_the_store(
    flaky_client: httpx.AsyncClient, flaky: FlakyStore, method: str, event_id: str
) -> None:
    body = {"title": "x"} if method == "PATCH" else event() if method == "PUT" else None

    response = await flaky_client.request(method, f"{EVENTS}/{event_id}", json=body)

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["path", "event_id"]
    assert flaky.calls == []


async def test_a_well_formed_id_does_reach_the_store(
    flaky_client: httpx.AsyncClient, flaky: FlakyStore
) -> None:
    # The counterpart of the test above: the spy does see calls when they happen.
    assert_problem(await flaky_client.get(f"{EVENTS}/{MISSING_ID}"), 404)
    assert flaky.calls == ["get"]


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("field", ["id", "_id", "extra", "created_at", "Title"])
async def test_unknown_body_field_is_422(
    client: httpx.AsyncClient, method: str, field: str
) -> None:
    created = await create(client)

    response = await send(client, method, created["id"], event(**{field: MISSING_ID}))

    problem = assert_problem(response, 422)
    assert ["body", field] in [error["loc"] for error in problem["errors"]]
    assert await total(client) == 1
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"title": {"$gt": ""}}, id="title-gt"),
        pytest.param({"title": {"$ne": None}}, id="title-ne"),
        pytest.param({"category": {"$regex": ".*"}}, id="category-regex"),
        pytest.param({"date": {"$gt": ""}}, id="date-gt"),
        pytest.param({"description": ["a", "b"]}, id="description-list"),
    ],
)
async def test_operator_payload_in_body_is_422(
    client: httpx.AsyncClient, method: str, fields: dict[str, Any]
) -> None:
    created = await create(client)

    assert_problem(await send(client, method, created["id"], event(**fields)), 422)
    assert await total(client) == 1
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


# (PATCH with a null date is test_crud's test_patch_null_for_a_required_field_is_422.)
@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "date", [1764583200, 1764583200.5, True, ["2025-12-01T10:00:00"], "tomorrow", ""]
)
async def test_date_that_is_not_an_iso_string_is_422(
    client: httpx.AsyncClient, method: str, date: Any
) -> None:
    created = await create(client)

    response = await send(client, method, created["id"], event(date=date))

    problem = assert_problem(response, 422)
    assert ["body", "date"] in [error["loc"][:2] for error in problem["errors"]]
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


@pytest.mark.parametrize("method", ["post", "put"])
async def test_null_date_is_422(client: httpx.AsyncClient, method: str) -> None:
    created = await create(client)

    assert_problem(await send(client, method, created["id"], event(date=None)), 422)
    assert await total(client) == 1
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"title": ""}, id="title-empty"),
        pytest.param({"title": "   "}, id="title-spaces"),
        pytest.param({"title": "x" * 201}, id="title-201"),
        pytest.param({"title": 42}, id="title-number"),
        pytest.param({"description": "x" * 5001}, id="description-5001"),
        pytest.param({"location": "x" * 201}, id="location-201"),
        pytest.param({"category": "x" * 101}, id="category-101"),
        pytest.param({"organizer": "x" * 201}, id="organizer-201"),
        pytest.param({"organizer": ""}, id="organizer-empty"),
        # Lengths count as sent, as the document's maxLength does (whitespace trimmed later).
        pytest.param({"title": " " + "x" * 200}, id="title-201-as-sent"),
        # Only whitespace, by any party's count: JSON Schema's, Python's, or a BOM.
        pytest.param({"title": "\u3000\t"}, id="title-ideographic-space"),
        pytest.param({"title": "\x1f"}, id="title-unit-separator"),
        pytest.param({"location": "\ufeff"}, id="location-bom"),
    ],
)
async def test_text_out_of_bounds_is_422(
    client: httpx.AsyncClient, method: str, fields: dict[str, Any]
) -> None:
    created = await create(client)

    response = await send(client, method, created["id"], event(**fields))

    problem = assert_problem(response, 422)
    [name] = fields
    assert ["body", name] in [error["loc"] for error in problem["errors"]]
    assert await total(client) == 1
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


async def test_text_of_one_visible_character_among_whitespace_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, title="\ufeff\u2003x\x1f", location=" " * 199 + "y")

    assert (created["title"], created["location"]) == ("x", "y")


async def test_text_at_its_maximum_length_is_accepted(client: httpx.AsyncClient) -> None:
    fields = {
        "title": "t" * 200,
        "description": "d" * 5000,
        "location": "l" * 200,
        "category": "c" * 100,
        "organizer": "o" * 200,
    }
    created = await create(client, **fields)
    assert {name: created[name] for name in fields} == fields


@pytest.mark.parametrize("method", ["post", "put"])
@pytest.mark.parametrize("missing", ["title", "date"])
async def test_missing_required_field_is_422(
    client: httpx.AsyncClient, method: str, missing: str
) -> None:
    created = await create(client)
    body = event(description="d")
    del body[missing]

    problem = assert_problem(await send(client, method, created["id"], body), 422)
    assert problem["errors"] == [
        {"loc": ["body", missing], "msg": "Field required", "type": "missing"}
    ]
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


# A body that is not a JSON document at all is 400 (tests/api/test_hostile_input.py has
# more); a JSON document that is not an object fails validation: 422.
@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    ("content", "status"),
    [
        pytest.param(b'{"title": "x", "date": ', 400, id="truncated"),
        pytest.param(b"{'title': 'x'}", 400, id="single-quotes"),
        pytest.param(b"not json", 400, id="text"),
        pytest.param(b"", 400, id="empty"),
        pytest.param(b"[]", 422, id="array"),
        pytest.param(b'"a string"', 422, id="string"),
        pytest.param(b"null", 422, id="null"),
    ],
)
async def test_body_that_is_not_a_json_object_is_refused(
    client: httpx.AsyncClient, method: str, content: bytes, status: int
) -> None:
    created = await create(client)
    url = EVENTS if method == "post" else f"{EVENTS}/{created['id']}"

    response = await client.request(
        method.upper(), url, content=content, headers={"content-type": "application/json"}
    )

    assert_problem(response, status)
    assert await total(client) == 1
    assert (await client.get(f"{EVENTS}/{created['id']}")).json() == created


async def test_validation_errors_do_not_echo_the_input(client: httpx.AsyncClient) -> None:
    secret = "s3cr3t-value-the-client-sent"

    response = await client.post(
        EVENTS, json={"title": {"nested": secret}, "date": f"{secret}", "organizer": [secret]}
    )

    problem = assert_problem(response, 422)
    assert secret not in response.text
    assert problem["type"] == "https://eventapi.dev/problems/validation-error"
    assert problem["instance"] == EVENTS
    assert {tuple(error["loc"]) for error in problem["errors"]} >= {
        ("body", "title"),
        ("body", "date"),
        ("body", "organizer"),
    }


@pytest.mark.parametrize(
    "path", ["/", "/nope", "/api", "/api/event", "/api/eventsx", f"{EVENTS}/{MISSING_ID}/extra"]
)
async def test_unknown_route_is_404_problem(client: httpx.AsyncClient, path: str) -> None:
    problem = assert_problem(await client.get(path), 404)
    assert problem["type"] == "https://eventapi.dev/problems/not-found"


WRONG_METHODS = [
    ("DELETE", EVENTS, {"GET", "POST"}),
    ("PUT", EVENTS, {"GET", "POST"}),
    ("PATCH", EVENTS, {"GET", "POST"}),
    ("POST", f"{EVENTS}/{MISSING_ID}", {"GET", "PUT", "PATCH", "DELETE"}),
    ("POST", "/health", {"GET"}),
    ("DELETE", "/health", {"GET"}),
]


@pytest.mark.parametrize(("method", "path"), [(method, path) for method, path, _ in WRONG_METHODS])
async def test_wrong_method_is_405_problem(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await create(client)

    response = await client.request(method, path)

    problem = assert_problem(response, 405)
    assert problem["type"] == "https://eventapi.dev/problems/method-not-allowed"
    assert method not in response.headers["allow"]
    assert await total(client) == 1


@pytest.mark.parametrize(("method", "path", "allowed"), WRONG_METHODS)
async def test_405_allow_header_lists_every_supported_method(
    app_client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    # RFC 9110 section 15.5.6: a 405 MUST carry an Allow header listing the resource's
    # currently supported methods (all of them, not just one).
    response = await app_client.request(method, path)

    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} - {"HEAD"} == allowed


async def test_unexpected_store_error_is_500_without_its_message(
    flaky: FlakyStore, flaky_app: RunningApp, flaky_client: httpx.AsyncClient
) -> None:
    created = await create(flaky_client)
    flaky.error = RuntimeError("sqlite3 pymongo internal detail at /srv/app/db.py line 12")
    flaky.down = True

    # Starlette re-raises an unhandled exception after sending the 500 (so that servers
    # log it); this client only looks at the response.
    async with flaky_app.client(raise_app_exceptions=False) as http:
        response = await http.get(f"{EVENTS}/{created['id']}")

    problem = assert_problem(response, 500)
    assert "internal detail" not in response.text
    assert "/srv/app" not in response.text
    assert problem["detail"] == "An unexpected error occurred"
