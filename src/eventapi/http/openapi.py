"""The OpenAPI document, built once, here: FastAPI's document of the routes, then what the
layers in front of the routes add to every operation they apply to.

- The Problem responses are filed under application/problem+json, the media type the
  handlers send (http/problems.py); FastAPI files models under application/json.
- 413 on every operation: the body limit applies to any request with a body, a GET's
  included, before routing (http/body_limit.py).
- With API keys: the two ways to send one (so Swagger UI has an Authorize button), which
  operations need one, and their 401 (http/access.py).
- With rate limits: the 429 of every operation a limit applies to (http/limits.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from eventapi.http.access import PUBLIC, READS, KeyCheck
from eventapi.http.limits import DRAFT, RateLimits
from eventapi.http.problems import PROBLEM_JSON
from eventapi.ratelimit.rates import Policy

Document = dict[str, Any]
PROBLEM_REF = {"schema": {"$ref": "#/components/schemas/Problem"}}
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "An API key as a token"}
API_KEY_SCHEME = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]


def document_builder(
    app: FastAPI, max_body_bytes: int, keys: KeyCheck | None, limits: RateLimits | None
) -> Callable[[], Document]:
    """``app.openapi``: the document, built on first call and kept."""

    def openapi() -> Document:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # FastAPI's own (which keeps it in openapi_schema)
            file_problems(schema)
            add_too_large(schema, max_body_bytes)
            if keys is not None:
                add_security(schema, keys.public_reads)
            if limits is not None:
                add_rate_limits(schema, limits.policies)
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi


def _operations(schema: Document) -> list[tuple[str, str, Document]]:
    """(path, METHOD, operation) of every operation (FastAPI: a path holds operations only)."""
    return [
        (path, method.upper(), operation)
        for path, operations in schema.get("paths", {}).items()
        for method, operation in operations.items()
    ]


def file_problems(schema: Document) -> None:
    for _, _, operation in _operations(schema):
        for response in operation.get("responses", {}).values():
            content = response.get("content", {})
            if _is_problem(content.get("application/json")):
                content[PROBLEM_JSON] = content.pop("application/json")


def _is_problem(media: Document | None) -> bool:
    # Only the Problem model: /health's 503 is its own JSON body, as documented.
    return media is not None and media.get("schema", {}).get("$ref", "").endswith("/Problem")


def add_too_large(schema: Document, limit: int) -> None:
    too_large = {
        "description": f"Request body larger than {limit} bytes (EVENTAPI_MAX_BODY_BYTES)",
        "content": {PROBLEM_JSON: PROBLEM_REF},
    }
    for _, _, operation in _operations(schema):
        operation.setdefault("responses", {}).setdefault("413", too_large)


def add_security(schema: Document, public_reads: bool) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(
        bearerAuth=BEARER_SCHEME, apiKeyHeader=API_KEY_SCHEME
    )
    unauthorised = {
        "description": "Missing or invalid API key",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
        "content": {PROBLEM_JSON: PROBLEM_REF},
    }
    for path, method, operation in _operations(schema):
        if method in READS and (public_reads or path in PUBLIC):
            continue
        operation["security"] = SECURITY
        operation.setdefault("responses", {})["401"] = unauthorised


def add_rate_limits(schema: Document, policies: tuple[Policy, ...]) -> None:
    for path, method, operation in _operations(schema):
        if path in PUBLIC:
            continue
        applies = [p for p in policies if not p.writes_only or method not in READS]
        if applies:
            operation.setdefault("responses", {})["429"] = _too_many(applies)


def _too_many(policies: list[Policy]) -> Document:
    described = ", ".join(f"{p.name}: {p.rate}" for p in policies)
    text = {"schema": {"type": "string"}}
    return {
        "description": f"Rate limit reached ({described}, per API key or address)",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a retry can pass",
                "schema": {"type": "integer"},
            },
            "RateLimit": {"description": f"The limit reached ({DRAFT})", **text},
            "RateLimit-Policy": {"description": f"The limits that apply ({DRAFT})", **text},
        },
        "content": {PROBLEM_JSON: PROBLEM_REF},
    }
