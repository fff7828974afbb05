"""How a served cache Entry becomes an HTTP response: shared by the FastAPI routes and the
ASGI fast path, so both send the same status, headers and bytes."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope, Send

from eventapi.cache.events import Served
from eventapi.errors import EventNotFound
from eventapi.events.schemas import EventQuery
from eventapi.events.service import EventService, Written
from eventapi.http.caller import Callers
from eventapi.http.problems import problem_parts

JSON = "application/json"

Parts = tuple[int, dict[str, str], bytes]


def if_none_match_of(scope: Scope) -> str | None:
    """The request's If-None-Match: every line of it, combined as RFC 9110 5.3 says (a
    recipient may join field lines with commas), or None without one."""
    lines = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"if-none-match"
    ]
    return ", ".join(lines) if lines else None


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a comma-separated list, or "*"."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


async def item_parts(
    service: EventService, event_id: str, if_none_match: str | None, path: str
) -> Parts:
    """GET /api/events/{id}, for a well-formed id: the one implementation, which both the
    route (documented in OpenAPI) and the ASGI fast path (which answers first) call."""
    event_id = event_id.lower()
    served = await service.get(event_id)
    if served.entry.status == 404:
        # Cached or not, "not found" is rendered without raising on this hot path; like
        # every read, it says where it came from.
        status, headers, body = problem_parts(EventNotFound(event_id), path)
        return status, {**headers, "X-Cache": served.outcome}, body
    return served_parts(served, if_none_match)


async def list_parts(
    service: EventService,
    callers: Callers,
    query: EventQuery,
    if_none_match: str | None,
    scope: Scope,
) -> Parts:
    """GET /api/events, for a validated query: called by the route and by the fast path
    (for a query string the route has validated). An uncached query takes a share of the
    list admission: its caller's (http/caller.py)."""
    served = await service.list(query, lambda: callers.of(scope).client)
    return served_parts(served, if_none_match)


def served_parts(served: Served, if_none_match: str | None) -> Parts:
    """(status, headers, body) for a read; 304 without a body when the ETag matches."""
    entry = served.entry
    headers = {"ETag": entry.etag, "X-Cache": served.outcome, "Cache-Control": "no-cache"}
    if entry.total:
        headers["X-Total-Count"] = entry.total
        headers["Link"] = entry.link
    if if_none_match and etag_matches(if_none_match, entry.etag):
        return 304, headers, b""
    headers["Content-Type"] = JSON
    return 200, headers, entry.body


def written_response(written: Written, status: int = 200, **headers: str) -> Response:
    """A write's answer: the event as now stored, with its new ETag (the one a GET of it
    returns, from any process, until the next write)."""
    return Response(
        written.body, status, headers={"ETag": written.etag, **headers}, media_type=JSON
    )


async def send_parts(send: Send, parts: Parts) -> None:
    """Send (status, headers, body) as an ASGI response (the edge's own answers)."""
    status, headers, body = parts
    raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    if status not in (204, 304):  # no Content-Length there (RFC 9110 8.6), as Starlette does
        raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
