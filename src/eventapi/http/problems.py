"""The one place that turns any error into an RFC 9457 problem+json response: domain
errors (eventapi/errors.py), validation errors, Starlette's HTTP errors (405 with every
allowed method), and anything unexpected (http/openapi.py files them in the document)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
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


Handler = Callable[[Request, Exception], Awaitable[Response]]


class MethodNotAllowed(StarletteHTTPException):
    """A 405 raised by a route that states its own Allow (a path the other routes' patterns
    also match, whose methods it must not list)."""

    def __init__(self, allow: str) -> None:
        super().__init__(405, headers={"Allow": allow})


def http_error_handler(routers: Sequence[APIRouter]) -> Handler:
    """The handler of Starlette's HTTP errors. A 405 lists in Allow every method of every
    route of ``routers`` on its path (Starlette names only the first route's), and HEAD
    wherever GET is (http/observe.py answers it)."""
    table = [
        (route.path_regex, route.methods or set())
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
    ]

    def allowed_methods(path: str) -> str:
        allowed = {m for regex, methods in table if regex.match(path) for m in methods}
        allowed.update({"HEAD"} if "GET" in allowed else ())
        return ", ".join(sorted(allowed))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
        headers = dict(exc.headers or {})
        if status == 405 and not isinstance(exc, MethodNotAllowed):
            headers["Allow"] = allowed_methods(request.url.path)
        return problem_response(status, detail, instance=request.url.path, headers=headers)

    return on_http_error


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "An unexpected error occurred", instance=request.url.path)


def install_error_handlers(app: FastAPI, on_http_error: Handler) -> None:
    app.add_exception_handler(EventApiError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
