"""The one place that turns any error into an RFC 9457 problem+json response: domain
errors (eventapi/errors.py), validation errors, Starlette's HTTP errors (405 with every
allowed method), and anything unexpected; and the OpenAPI document says so."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from eventapi.errors import EventApiError

log = logging.getLogger("eventapi")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://eventapi.dev/problems/"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The RFC 9457 body of every error response (media type application/problem+json)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem_body(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> bytes:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or phrase.lower().replace(" ", "-")),
        "title": title or phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return orjson.dumps(body)


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = problem_body(status, detail, slug=slug, title=title, instance=instance, **extra)
    return Response(body, status, headers=headers, media_type=PROBLEM_JSON)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only location, message and type: pydantic's "input" and "ctx" can echo back
    # arbitrary client data and internal objects.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def problem_parts(exc: EventApiError, path: str) -> tuple[int, dict[str, str], bytes]:
    """A domain error as (status, headers, body), for an ASGI sender."""
    body = problem_body(
        exc.status, exc.detail, slug=exc.slug, title=exc.title, instance=path, **exc.members
    )
    return exc.status, {**exc.headers, "Content-Type": PROBLEM_JSON}, body


def problem_for(
    exc: EventApiError, path: str | None, headers: Mapping[str, str] | None = None
) -> Response:
    return problem_response(
        exc.status,
        exc.detail,
        slug=exc.slug,
        title=exc.title,
        instance=path,
        headers={**exc.headers, **(headers or {})},
        **exc.members,
    )


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EventApiError)
    return problem_for(exc, request.url.path)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422,
        "The request is not valid; see 'errors' for each field",
        slug="validation-error",
        title="Validation failed",
        instance=request.url.path,
        errors=_field_errors(exc),
    )


def _allowed_methods(request: Request) -> str:
    """Every method of every route on this path (Starlette names only the first route's),
    and HEAD wherever GET is (http/head.py answers it).

    ``app.state.methods_by_path`` is filled by the app factory from its routers.
    """
    table: list[tuple[re.Pattern[str], set[str]]] = request.app.state.methods_by_path
    path = request.url.path
    allowed = {m for regex, methods in table if regex.match(path) for m in methods}
    allowed.update({"HEAD"} if "GET" in allowed else ())
    return ", ".join(sorted(allowed))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem_response(exc.status_code, detail, instance=request.url.path, headers=headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "An unexpected error occurred", instance=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EventApiError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
    document_problem_responses(app)


def document_problem_responses(app: FastAPI) -> None:
    """In the OpenAPI document, file the Problem responses under application/problem+json,
    the media type the handlers above actually send (FastAPI puts models under
    application/json)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operation in _operations(schema):
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if _is_problem(content.get("application/json")):
                        content[PROBLEM_JSON] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _is_problem(media: dict[str, Any] | None) -> bool:
    # Only the Problem model: /health's 503 is its own JSON body, as documented.
    return media is not None and media.get("schema", {}).get("$ref", "").endswith("/Problem")


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in schema.get("paths", {}).values() for op in path.values()]
