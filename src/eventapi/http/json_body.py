"""The request body of every operation that takes one (POST, PUT and PATCH on /api/events):
one JSON document, sent as JSON. Three statuses, each for one kind of mistake:

- **415 Unsupported Media Type**: the Content-Type is not JSON. Accepted are
  ``application/json`` and every ``application/*+json`` type (so PATCH takes
  ``application/merge-patch+json``, RFC 7396, whose rules its semantics follow), with no
  charset or ``charset=utf-8`` (RFC 8259: JSON is UTF-8). ``text/plain``, forms, multipart
  and XML are refused, and so is **a request without a Content-Type, with or without a
  body**: the API never guesses a media type. That also keeps out what a browser sends
  cross-site without a CORS preflight (``text/plain``, forms), which a lenient server would
  read as JSON. A 415 on PATCH carries ``Accept-Patch`` (RFC 5789).
- **400 Bad Request** ("Malformed request body"): the body is not one JSON document. Empty,
  truncated or not JSON at all, not UTF-8 (or with a byte order mark, or a lone surrogate
  escape), ``NaN``, a number too large for a double, or nested deeper than 1024 levels.
- **422 Unprocessable Content**: a JSON document that does not fit the operation's schema
  (``[]``, ``null``, a wrong field), reported field by field by FastAPI's validation.

The check runs in the route, after routing: an unknown path is still 404 and a wrong method
405, whatever the body. The body is parsed once, with orjson, and the document handed to
FastAPI. Left to itself, FastAPI would parse it with ``json.loads``, which answered the same
kind of mistake with 400 or 422 depending on the Python exception it happened to raise
(RecursionError for deep nesting, UnicodeDecodeError for invalid UTF-8), accepted ``NaN``
and lone surrogates, and read a body of any Content-Type but JSON as a string (422). orjson
refuses a document nested over 1024 levels as soon as it reaches level 1025, in
microseconds whatever the body's size (which BodyLimitMiddleware bounds anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from eventapi.errors import MalformedBody, UnsupportedMediaType
from eventapi.http.problems import problem_for

JSON = "application/json"
ACCEPT_PATCH = "application/json, application/merge-patch+json"

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``application/*+json``, without a charset other than UTF-8."""
    if not content_type:
        return False
    media_type, *parameters = content_type.split(";")
    kind, _, subtype = media_type.strip().lower().partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


class _Parsed(Request):
    """The request with its body already read and parsed: what FastAPI's handler reads."""

    def __init__(self, request: Request, body: bytes, document: Any) -> None:
        super().__init__(request.scope, request.receive)
        self._raw_body = body
        self._document = document

    async def body(self) -> bytes:
        return self._raw_body

    async def json(self) -> Any:
        return self._document


async def _parse(request: Request) -> _Parsed:
    if not is_json(request.headers.get("content-type")):
        raise UnsupportedMediaType(
            f"The request body must be JSON, sent with 'Content-Type: {JSON}'"
        )
    try:
        body = await request.body()
    except ClientDisconnect:
        raise MalformedBody("The request body was not received in full") from None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"The request body is not a JSON document: {exc}") from None
    return _Parsed(request, body, document)


class JsonBodyRoute(APIRoute):
    """An APIRoute whose request body, if it takes one, must be a JSON document (see the
    module docstring); routes without a body are served as by APIRoute."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def json_body_first(request: Request) -> Response:
            try:
                parsed = await _parse(request)
            except UnsupportedMediaType as exc:
                headers = {"Accept-Patch": ACCEPT_PATCH} if request.method == "PATCH" else None
                return problem_for(exc, request.url.path, headers)
            except MalformedBody as exc:
                return problem_for(exc, request.url.path)
            return await handler(parsed)

        return json_body_first
