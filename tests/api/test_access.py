"""Access control in process (http/access.py): API keys on writes (and reads when
EVENTAPI_PUBLIC_READS=false), the 401 problem, keys never logged nor kept, the OpenAPI
security scheme, CORS, and the start-up rules (open-API warning, production refusal)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventapi.app import create_app
from eventapi.http.access import OPEN_WARNING, AccessRefused
from eventapi.settings import Settings
from tests.api.helpers import PROBLEM_JSON, assert_problem
from tests.support.api import EVENTS, MISSING_ID, event, item
from tests.support.app import run_app
from tests.support.settings import app_settings

KEY = "current-key-0123456789abcdef"
OLD_KEY = "previous-key-fedcba9876543210"  # still configured: a rotation in progress
WRONG = "wrong-key-00000000000000000000"
KEYS = (KEY, OLD_KEY, WRONG)
AUTH = {"X-API-Key": KEY}

CREDENTIALS: dict[str, tuple[dict[str, str], bool]] = {  # headers, accepted?
    "no-key": ({}, False),
    "wrong-bearer": ({"Authorization": f"Bearer {WRONG}"}, False),
    "wrong-x-api-key": ({"X-API-Key": WRONG}, False),
    "basic-scheme": ({"Authorization": f"Basic {KEY}"}, False),
    "empty-bearer": ({"Authorization": "Bearer "}, False),
    "key-as-prefix": ({"X-API-Key": KEY[:-1]}, False),
    "key-in-query": ({}, False),  # the key in the URL (below) does not count
    "bearer": ({"Authorization": f"Bearer {KEY}"}, True),
    "bearer-any-case": ({"Authorization": f"bEARER {KEY}"}, True),
    "x-api-key": ({"X-API-Key": KEY}, True),
    "rotated-bearer": ({"Authorization": f"Bearer {OLD_KEY}"}, True),
    "rotated-x-api-key": ({"X-API-Key": OLD_KEY}, True),
    "wrong-bearer-right-x-api-key": ({"Authorization": f"Bearer {WRONG}", "X-API-Key": KEY}, True),
}
WRITES: dict[str, tuple[str, bool, int]] = {  # method: (path kind, has body, success)
    "POST": ("list", True, 201),
    "PUT": ("item", True, 200),
    "PATCH": ("item", True, 200),
    "DELETE": ("item", False, 200),
}
DOCS = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def access_settings(tmp_path: Path, keys: str = f"{KEY}, {OLD_KEY}", **extra: Any) -> Settings:
    return app_settings(tmp_path, api_keys=keys, **extra)


@pytest.fixture
async def keyed(tmp_path: Path, fast_path: bool) -> AsyncIterator[httpx.AsyncClient]:
    """The app with two keys (a rotation in progress) and public reads."""
    async with run_app(access_settings(tmp_path), fast_path=fast_path) as running:
        yield running.http


@pytest.fixture
async def private(tmp_path: Path, fast_path: bool) -> AsyncIterator[httpx.AsyncClient]:
    """The app with keys and EVENTAPI_PUBLIC_READS=false."""
    settings = access_settings(tmp_path, public_reads=False)
    async with run_app(settings, fast_path=fast_path) as running:
        yield running.http


async def seeded(http: httpx.AsyncClient) -> str:
    response = await http.post(EVENTS, json=event("Existing", 3), headers=AUTH)
    assert response.status_code == 201, response.text
    event_id: str = response.json()["id"]
    return event_id


async def snapshot(http: httpx.AsyncClient, event_id: str) -> tuple[Any, Any]:
    listed = await http.get(EVENTS, headers=AUTH)
    one = await http.get(item(event_id), headers=AUTH)
    return listed.json(), (one.status_code, one.json())


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert body["type"] == "https://eventapi.dev/problems/unauthorized"
    assert body["instance"] == response.request.url.path
    for key in KEYS:
        assert key not in response.text
    return body


@pytest.mark.parametrize("fast_path", [True], ids=["fast-path"])
@pytest.mark.parametrize("credentials", CREDENTIALS)
@pytest.mark.parametrize("method", WRITES)
async def test_writes_need_a_key(keyed: httpx.AsyncClient, method: str, credentials: str) -> None:
    http = keyed
    event_id = await seeded(http)
    before = await snapshot(http, event_id)
    kind, has_body, success = WRITES[method]
    url = EVENTS if kind == "list" else item(event_id)
    headers, accepted = CREDENTIALS[credentials]
    params = {"api_key": KEY} if credentials == "key-in-query" else None

    response = await http.request(
        method,
        url,
        headers=headers,
        params=params,
        json=event("Written", 9) if has_body else None,
    )

    if accepted:
        assert response.status_code == success, response.text
        assert await snapshot(http, event_id) != before
    else:
        assert_unauthorized(response)
        assert await snapshot(http, event_id) == before


async def test_missing_and_wrong_keys_are_told_apart(keyed: httpx.AsyncClient) -> None:
    missing = assert_unauthorized(await keyed.post(EVENTS, json=event()))
    wrong = assert_unauthorized(await keyed.post(EVENTS, json=event(), headers={"X-API-Key": "x"}))

    assert "needs an API key" in missing["detail"]
    assert "Authorization: Bearer" in missing["detail"]
    assert wrong["detail"] == "The API key is not valid"


async def test_a_write_anywhere_needs_a_key(keyed: httpx.AsyncClient) -> None:
    # Without a key, no write learns whether a path or a method exists.
    for method, path in [("POST", "/nowhere"), ("DELETE", EVENTS), ("POST", "/health")]:
        assert_unauthorized(await keyed.request(method, path))
    assert (await keyed.post("/nowhere", headers=AUTH)).status_code == 404
    assert (await keyed.delete(EVENTS, headers=AUTH)).status_code == 405
    # With a key the request goes on as before: 404 for a missing event, 422 for bad input.
    assert (await keyed.delete(item(MISSING_ID), headers=AUTH)).status_code == 404
    assert (await keyed.post(EVENTS, json={}, headers=AUTH)).status_code == 422


async def test_the_key_is_checked_before_the_body_is_read(keyed: httpx.AsyncClient) -> None:
    too_large = b"x" * (200 * 1024)  # over the body limit: still 401, not 413
    response = await keyed.post(EVENTS, content=too_large)
    assert_unauthorized(response)
    assert (await keyed.post(EVENTS, content=too_large, headers=AUTH)).status_code == 413


async def test_reads_are_public_by_default(keyed: httpx.AsyncClient) -> None:
    event_id = await seeded(keyed)
    for path in (EVENTS, item(event_id), item(MISSING_ID), "/health", "/metrics", *DOCS):
        response = await keyed.get(path)
        assert response.status_code in {200, 404}, (path, response.text)
    assert (await keyed.get(item(event_id))).json()["title"] == "Existing"
    # HEAD and OPTIONS are reads too: whatever the route answers, never 401.
    assert (await keyed.head(EVENTS)).status_code == 200
    assert (await keyed.options(EVENTS)).status_code == 405


async def test_private_reads_need_a_key(private: httpx.AsyncClient) -> None:
    event_id = await seeded(private)
    reads = [
        ("GET", EVENTS),
        ("GET", item(event_id)),
        ("GET", item(MISSING_ID)),
        ("GET", item("not-an-id")),
        ("GET", "/metrics"),
        ("GET", "/nowhere"),
        ("HEAD", EVENTS),
        ("OPTIONS", item(event_id)),
    ]
    for method, path in reads:
        response = await private.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"
        if method != "HEAD":
            assert_unauthorized(response)
        wrong = await private.request(method, path, headers={"Authorization": f"Bearer {WRONG}"})
        assert wrong.status_code == 401

    listed = await private.get(EVENTS, headers={"Authorization": f"Bearer {OLD_KEY}"})
    assert [e["id"] for e in listed.json()] == [event_id]
    one = await private.get(item(event_id), headers=AUTH)
    assert (one.status_code, one.json()["id"]) == (200, event_id)
    assert (await private.get("/metrics", headers=AUTH)).status_code == 200


async def test_health_and_documentation_stay_public(private: httpx.AsyncClient) -> None:
    for path in ("/health", *DOCS):
        response = await private.get(path)
        assert response.status_code == 200, (path, response.text)
    # ... for reads only.
    assert_unauthorized(await private.post("/health"))


async def test_without_keys_the_api_is_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = access_settings(tmp_path, keys="")
    with caplog.at_level(logging.WARNING, logger="eventapi"):
        async with run_app(settings) as running:
            http = running.http
            created = await http.post(EVENTS, json=event("Open"))
            assert created.status_code == 201
            assert (await http.delete(item(created.json()["id"]))).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [OPEN_WARNING]
    assert "securitySchemes" not in running.app.openapi().get("components", {})


async def test_private_reads_without_keys_warn_that_reads_are_open_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="eventapi"):
        create_app(access_settings(tmp_path, keys="", public_reads=False))
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.startswith(OPEN_WARNING)
    assert "EVENTAPI_PUBLIC_READS=false needs keys" in line


async def test_with_keys_there_is_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="eventapi"):
        create_app(access_settings(tmp_path))
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_production_without_keys_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(AccessRefused, match="EVENTAPI_API_KEYS"):
        create_app(access_settings(tmp_path, keys="", env="production"))


async def test_production_with_keys_starts(tmp_path: Path) -> None:
    settings = access_settings(tmp_path, env="production")
    async with run_app(settings) as running:
        http = running.http
        assert (await http.get("/health")).status_code == 200
        assert_unauthorized(await http.post(EVENTS, json=event()))
        assert (await http.post(EVENTS, json=event(), headers=AUTH)).status_code == 201


async def test_no_key_is_ever_logged_or_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = access_settings(tmp_path, public_reads=False)
    with caplog.at_level(logging.DEBUG):
        async with run_app(settings) as running:
            http = running.http
            event_id = await seeded(http)
            for key in KEYS:
                for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
                    await http.get(item(event_id), headers=headers)
                    await http.patch(item(event_id), json={"title": key}, headers=headers)
                    await http.post("/nowhere", headers=headers)
            text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)

    for key in KEYS:
        assert key not in text
    # Only digests are kept: nothing reachable from the settings the app holds shows a key.
    held = running.held_settings
    assert held.api_keys.digests == tuple(
        hashlib.sha256(key.encode()).digest() for key in (KEY, OLD_KEY)
    )
    for shown in (repr(held), str(held), held.model_dump_json(), str(held.model_dump())):
        assert KEY not in shown
        assert OLD_KEY not in shown


async def openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def secured(document: dict[str, Any]) -> dict[str, bool]:
    """{"POST /api/events": whether the operation needs a key, ...}"""
    out: dict[str, bool] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            needs = "security" in operation
            if needs:
                assert operation["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
                response = operation["responses"]["401"]
                schema = response["content"][PROBLEM_JSON]["schema"]
                assert set(response["content"]) == {PROBLEM_JSON}
                assert schema["$ref"] == "#/components/schemas/Problem"
                assert "WWW-Authenticate" in response["headers"]
            else:
                assert "401" not in operation["responses"]
            out[f"{method.upper()} {path}"] = needs
    return out


async def test_openapi_has_the_security_schemes(keyed: httpx.AsyncClient) -> None:
    document = await openapi(keyed)

    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key as a token"},
        "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    assert secured(document) == {
        "GET /api/events": False,
        "POST /api/events": True,
        "GET /api/events.ics": False,
        "GET /api/events/{event_id}.ics": False,
        "GET /api/events/{event_id}": False,
        "PUT /api/events/{event_id}": True,
        "PATCH /api/events/{event_id}": True,
        "DELETE /api/events/{event_id}": True,
        "GET /api/changes": False,
        "GET /api/changes/stream": False,
        "GET /health": False,
        "GET /metrics": False,
    }
    # The other error responses are still filed as problem+json (problems.py's wrapper).
    post = document["paths"]["/api/events"]["post"]
    assert set(post["responses"]["422"]["content"]) == {PROBLEM_JSON}
    # Served twice, the document is the same.
    assert await openapi(keyed) == document


async def test_openapi_with_private_reads(private: httpx.AsyncClient) -> None:
    needs = secured(await openapi(private))

    assert {op for op, secure in needs.items() if not secure} == {"GET /health"}


async def test_swagger_ui_can_authorize(keyed: httpx.AsyncClient) -> None:
    page = await keyed.get("/docs")
    assert page.status_code == 200
    # Swagger UI shows its Authorize button when the document has security schemes.
    assert "/openapi.json" in page.text
    assert (await openapi(keyed))["components"]["securitySchemes"]


ORIGIN = "https://app.example.com"


def preflight(method: str, origin: str = ORIGIN) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, x-api-key, content-type, if-match",
    }


def names(response: httpx.Response, header: str) -> set[str]:
    return {name.strip().lower() for name in response.headers[header].split(",")}


@pytest.fixture
async def cors(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = access_settings(
        tmp_path, public_reads=False, cors_origins=f"{ORIGIN},http://localhost:3000"
    )
    async with run_app(settings) as running:
        http = running.http
        yield http


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_cors_preflight_from_an_allowed_origin(cors: httpx.AsyncClient, method: str) -> None:
    # A preflight carries no key: answered before the key check, even with private reads.
    response = await cors.options(item(MISSING_ID), headers=preflight(method))

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert method in response.headers["access-control-allow-methods"].split(", ")
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert allowed >= {"authorization", "x-api-key", "content-type", "if-match", "idempotency-key"}
    assert "access-control-allow-credentials" not in response.headers


async def test_cors_preflight_from_another_origin_is_refused(cors: httpx.AsyncClient) -> None:
    for origin in ("https://evil.example.com", "https://app.example.com.evil.net", "null"):
        response = await cors.options(EVENTS, headers=preflight("POST", origin))
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers


async def test_cors_actual_requests(cors: httpx.AsyncClient) -> None:
    created = await cors.post(EVENTS, json=event(), headers={"Origin": ORIGIN, **AUTH})
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
    }
    assert exposed >= {"etag", "x-cache", "x-total-count", "link", "location"}
    # The page may read a 401 too (so it can tell its user the key is wrong).
    refused = await cors.get(EVENTS, headers={"Origin": ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    # Another origin gets its answer, but no header letting its page read it.
    other = await cors.get(EVENTS, headers={"Origin": "https://evil.example.com", **AUTH})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_cors_any_origin(tmp_path: Path) -> None:
    settings = access_settings(tmp_path, cors_origins="*")
    async with run_app(settings) as running:
        http = running.http
        response = await http.options(EVENTS, headers=preflight("POST", "https://any.example"))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize("keys", ["", f"{KEY}"])
async def test_no_cross_origin_access_by_default(tmp_path: Path, keys: str) -> None:
    async with run_app(access_settings(tmp_path, keys=keys)) as running:
        http = running.http
        response = await http.options(EVENTS, headers=preflight("POST"))
        assert response.status_code == 405
        read = await http.get(EVENTS, headers={"Origin": ORIGIN})
        assert read.status_code == 200
        for answered in (response, read):
            assert not [h for h in answered.headers if h.startswith("access-control-")]
