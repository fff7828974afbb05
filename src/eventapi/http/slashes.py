"""A path with a trailing slash that matches a route once the slash is removed
(``GET /api/events/``) is redirected there with 307 and a *relative* Location
(``/api/events``, query string kept); any other unknown path is the usual 404 problem.

Starlette's own redirect_slashes (FastAPI's default, turned off by the app factory) builds
an absolute URL from the request's Host header: ``GET /api/events/`` with
``Host: evil.example`` was sent to ``http://evil.example/api/events``, and a cache or a
client that follows it goes wherever the header said. A relative reference (RFC 9110
section 10.2.2) is resolved by the client against the URL it asked for, so the redirect
can never leave this server, and nothing in the answer comes from the Host header. 307
keeps the method and the body, as before.

It runs as the handler of 404, so it costs nothing until routing has found no route.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.routing import Match

from eventapi.http.problems import Handler

# Characters left as they are in a path (RFC 3986 pchar and "/"); anything else, "%" and
# control characters included, is percent-encoded, so the header is the path, exactly.
_PATH_SAFE = "/:@!$&'()*+,;=~"
# The query string arrives percent-encoded already: keep its escapes and delimiters.
_QUERY_SAFE = _PATH_SAFE + "%?"


def slashless_location(request: Request) -> str | None:
    """The relative URL without the trailing slash, if that one has a route."""
    path: str = request.scope["path"]
    stripped = path.rstrip("/")
    if stripped == path or not stripped:
        return None
    candidate = {**request.scope, "path": stripped}
    if all(route.matches(candidate)[0] is Match.NONE for route in request.app.router.routes):
        return None
    location = quote(stripped, safe=_PATH_SAFE)
    query: bytes = request.scope.get("query_string", b"")
    return f"{location}?{quote(query, safe=_QUERY_SAFE)}" if query else location


def install_slash_redirect(app: FastAPI, not_found: Handler) -> None:
    """Answer 404s: the relative redirect when there is one, else ``not_found``."""

    async def on_not_found(request: Request, exc: Exception) -> Response:
        location = slashless_location(request)
        if location is None:
            return await not_found(request, exc)
        return Response(status_code=307, headers={"Location": location})

    app.add_exception_handler(404, on_not_found)
