"""How a served cache Entry becomes an HTTP response: shared by the FastAPI routes and the
ASGI fast path, so both send the same status, headers and bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from starlette.responses import Response
from starlette.types import Scope, Send

from eventapi.cache.entry import Entry
from eventapi.cache.events import Served
from eventapi.errors import EventNotFound
from eventapi.events.schemas import EventQuery
from eventapi.events.service import EventService, Written
from eventapi.follow import cursor
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


def if_modified_since_of(scope: Scope) -> str | None:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"if-modified-since":
            return value.decode("latin-1")
    return None


def not_modified_since(modified: str, if_modified_since: str) -> bool:
    """RFC 9110 13.1.3: whether the event, last modified at the HTTP date ``modified``, is
    unchanged since the field's date (a field that is no HTTP date is ignored: False)."""
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return parsedate_to_datetime(modified) <= since


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: weak comparison over a comma-separated list, or "*"."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


async def item_parts(service: EventService, event_id: str, scope: Scope, path: str) -> Parts:
    """GET /api/events/{id}, for a well-formed id (of an event, or of an occurrence of a
    recurring one): the one implementation, which both the route (documented in OpenAPI)
    and the ASGI fast path (which answers first) call."""
    event_id = event_id.lower()
    if "_" in event_id:
        series_id, start = _occurrence(event_id)
        served = await (service.get_occurrence(series_id, start) if start else _not_found())
    else:
        served = await service.get(event_id)
    if served.entry.status == 404:
        # Cached or not, "not found" is rendered without raising on this hot path; like
        # every read, it says where it came from.
        status, headers, body = problem_parts(EventNotFound(event_id), path)
        cached = {"X-Cache": served.outcome, "X-Changes-Cursor": served.entry.cursor}
        return status, {**headers, **cached}, body
    inm = if_none_match_of(scope)
    return served_parts(served, inm, None if inm else if_modified_since_of(scope))


def _occurrence(occurrence_id: str) -> tuple[str, datetime | None]:
    """An occurrence id's series id and start (None: digits that are no date-time)."""
    series_id, stamp = occurrence_id.split("_")
    try:
        start = datetime.strptime(stamp[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return series_id, None
    if len(stamp) > 16:  # .mmmZ
        start = start.replace(microsecond=int(stamp[16:19]) * 1000)
    return series_id, start


async def _not_found() -> Served:
    return Served(Entry.build(404, b"", cursor=cursor.encode(0)), "MISS")


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


CALENDAR = "text/calendar; charset=utf-8"


def calendar_parts(served: Served, scope: Scope, path: str, event_id: str = "") -> Parts:
    """An .ics answer: as a JSON read's (ETag, 304, X-Cache, X-Changes-Cursor), as
    text/calendar; 404 as a problem when the event does not exist."""
    if served.entry.status == 404:
        status, headers, body = problem_parts(EventNotFound(event_id), path)
        cached = {"X-Cache": served.outcome, "X-Changes-Cursor": served.entry.cursor}
        return status, {**headers, **cached}, body
    status, headers, body = served_parts(served, if_none_match_of(scope))
    if status == 200:
        headers["Content-Type"] = CALENDAR
    return status, headers, body


def served_parts(
    served: Served, if_none_match: str | None, if_modified_since: str | None = None
) -> Parts:
    """(status, headers, body) for a read; 304 without a body when the ETag matches, or
    (with no If-None-Match) the event is unmodified since If-Modified-Since."""
    entry = served.entry
    headers = {
        "ETag": entry.etag,
        "X-Cache": served.outcome,
        "Cache-Control": "no-cache",
        "X-Changes-Cursor": entry.cursor,
    }
    if entry.total:
        headers["X-Total-Count"] = entry.total
        headers["Link"] = entry.link
    if entry.modified:
        headers["Last-Modified"] = entry.modified
    if if_none_match and etag_matches(if_none_match, entry.etag):
        return 304, headers, b""
    if (
        if_modified_since
        and entry.modified
        and not_modified_since(entry.modified, if_modified_since)
    ):
        return 304, headers, b""
    headers["Content-Type"] = JSON
    return 200, headers, entry.body


def written_response(written: Written, status: int = 200, **headers: str) -> Response:
    """A write's answer: the event as now stored, with its new ETag (the one a GET of it
    returns, from any process, until the next write)."""
    if written.modified:
        headers = {"Last-Modified": written.modified, **headers}
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
