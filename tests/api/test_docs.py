"""Interactive documentation and the OpenAPI document (independent of the store backend)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

EXPECTED_PATHS = {
    "/api/events": {"get", "post"},
    "/api/events/{event_id}": {"get", "put", "patch", "delete"},
    "/health": {"get"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


@pytest.mark.parametrize(("path", "marker"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
async def test_documentation_pages_are_html(
    app_client: httpx.AsyncClient, path: str, marker: str
) -> None:
    response = await app_client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert marker in response.text.lower()
    assert "/openapi.json" in response.text


async def test_openapi_lists_every_path_and_method(app_client: httpx.AsyncClient) -> None:
    paths = (await openapi(app_client))["paths"]

    for path, methods in EXPECTED_PATHS.items():
        assert set(paths[path]) & HTTP_METHODS == methods, path


async def test_openapi_documents_the_list_parameters(app_client: httpx.AsyncClient) -> None:
    operation = (await openapi(app_client))["paths"]["/api/events"]["get"]

    names = {
        parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "query"
    }
    assert names >= {"limit", "offset", "category", "q", "date_from", "date_to", "sort"}


@pytest.mark.parametrize(
    "example",
    [
        "New Conference",
        "Amazing event",
        "2025-12-01T10:00:00",
        "New York, NY",
        "Event Corp",
        "68ed254e36d0233aa05afbe9",
        "Event 68ed254e36d0233aa05afbe9 deleted successfully",
    ],
)
async def test_openapi_carries_the_original_readme_examples(
    app_client: httpx.AsyncClient, example: str
) -> None:
    text = json.dumps(await openapi(app_client))

    assert json.dumps(example) in text


async def test_openapi_error_responses_are_problem_json(app_client: httpx.AsyncClient) -> None:
    # Errors are sent as application/problem+json, so that is the media type the document
    # should give the Problem schema under (and not application/json, which is never sent).
    paths = (await openapi(app_client))["paths"]
    wrong: list[str] = []
    for path in ("/api/events", "/api/events/{event_id}"):
        for method, operation in paths[path].items():
            for status, response in operation["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                content = response.get("content", {})
                schema = content.get("application/problem+json", {}).get("schema", {})
                if set(content) != {"application/problem+json"} or not schema.get(
                    "$ref", ""
                ).endswith("/Problem"):
                    wrong.append(f"{method.upper()} {path} {status}: {sorted(content)}")
    assert wrong == []


async def test_openapi_health_503_is_the_health_body_it_sends(
    app_client: httpx.AsyncClient,
) -> None:
    unhealthy = (await openapi(app_client))["paths"]["/health"]["get"]["responses"]["503"]

    assert unhealthy["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
    }


@pytest.mark.parametrize("path", ["/api/events", "/api/events/{event_id}"])
async def test_openapi_documents_what_a_get_answers(
    app_client: httpx.AsyncClient, path: str
) -> None:
    responses = (await openapi(app_client))["paths"][path]["get"]["responses"]

    assert "304" in responses
    headers = responses["200"]["headers"]
    assert headers["X-Cache"]["schema"]["enum"] == ["HIT", "MISS", "BYPASS"]
    assert headers["ETag"]["required"]


async def test_openapi_links_a_created_event_to_its_operations_with_its_etag(
    app_client: httpx.AsyncClient,
) -> None:
    create = (await openapi(app_client))["paths"]["/api/events"]["post"]
    links = create["responses"]["201"]["links"]

    assert {link["operationId"] for link in links.values()} == {
        "getEvent",
        "replaceEvent",
        "updateEvent",
        "deleteEvent",
    }
    assert links["UpdateEvent"]["parameters"] == {
        "event_id": "$response.body#/id",
        "header.If-Match": "$response.header.ETag",
    }


async def test_openapi_patch_cannot_null_a_required_field(
    app_client: httpx.AsyncClient,
) -> None:
    schema = (await openapi(app_client))["components"]["schemas"]["EventUpdate"]

    for name in ("title", "date"):
        assert schema["properties"][name]["type"] == "string"
        assert "anyOf" not in schema["properties"][name]


async def test_openapi_every_operation_lists_413(app_client: httpx.AsyncClient) -> None:
    # The body limit applies before routing, to a GET with a body as much as to a POST.
    paths = (await openapi(app_client))["paths"]

    missing = [
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "413" not in operation["responses"]
    ]
    assert missing == []
