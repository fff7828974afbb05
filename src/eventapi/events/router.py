"""HTTP routes for /api/events: parse, call the service, map to status codes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from eventapi.deps import RuntimeDep, ServiceDep
from eventapi.errors import (
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    PreconditionRequired,
)
from eventapi.events.links import EVENTS_PATH
from eventapi.events.preconditions import IfMatch, IfUnmodifiedSince
from eventapi.events.responses import (
    JSON,
    Parts,
    calendar_parts,
    if_none_match_of,
    item_parts,
    list_parts,
    written_response,
)
from eventapi.events.schemas import (
    EVENT_ID,
    OCCURRENCE_ID,
    CalendarQuery,
    DeleteResult,
    EventCreate,
    EventQuery,
    EventRead,
    EventUpdate,
    OccurrenceRead,
)
from eventapi.events.service import IdempotencyKey
from eventapi.follow import cursor
from eventapi.http.json_body import JsonBodyRoute
from eventapi.http.problems import MethodNotAllowed, Problem, problem_response
from eventapi.runtime import runtime_of

EventId = Annotated[
    str,
    Path(
        pattern=f"^{EVENT_ID}$",
        description="24-character hexadecimal ObjectId",
        examples=["68ed254e36d0233aa05afbe9"],
    ),
]
# What GET answers: an event's id, or an occurrence's (of a recurring event, as an expanded
# list names it).
ReadId = Annotated[
    str,
    Path(
        pattern=f"^({EVENT_ID}|{OCCURRENCE_ID})$",
        description=(
            "24-character hexadecimal ObjectId, or an occurrence's id: the series' id, '_', "
            "and the occurrence's start in UTC (basic ISO 8601)"
        ),
        examples=["68ed254e36d0233aa05afbe9", "68ed254e36d0233aa05afbe9_20251202T000000Z"],
    ),
]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    # Filed under application/problem+json by http/openapi.py.
    return {code: {"model": Problem} for code in codes}


# What an operation with a request body may also answer (http/json_body.py, body_limit.py):
# 400 not a JSON document, 413 too large, 415 not sent as JSON.
BODY_PROBLEMS = (400, 413, 415)


IfNoneMatch = Annotated[str | None, Header(description="ETag(s) from an earlier response")]
IfModifiedSince = Annotated[
    str | None,
    Header(
        description="304 when the event is unchanged since this HTTP date (its "
        "Last-Modified); ignored with If-None-Match"
    ),
]

_ETAG = {"ETag": {"description": "Strong tag of the body", "schema": {"type": "string"}}}
# What a GET answers: the body's tag and where it came from; 304 to a matching If-None-Match.
_SERVED = {
    "ETag": {**_ETAG["ETag"], "required": True},
    "X-Cache": {
        "description": "HIT: from the cache; MISS: from the database (and now cached); "
        "BYPASS: from the database, the cache being off or unreachable",
        "required": True,
        "schema": {"type": "string", "enum": ["HIT", "MISS", "BYPASS"]},
    },
    "X-Changes-Cursor": {
        "description": "The change cursor this answer is consistent with: GET /api/changes "
        "from it gives every change the answer does not show (some it does, too)",
        "required": True,
        "schema": {"type": "string", "pattern": cursor.PATTERN, "examples": [cursor.EXAMPLE]},
    },
}
# What a GET of one event also answers.
_MODIFIED = {
    "Last-Modified": {
        "description": "When the event was last written (an HTTP date; absent for events "
        "written before the API kept it)",
        "schema": {"type": "string"},
    },
}
_PAGED = {
    "X-Total-Count": {
        "description": "How many events match the filters, over all pages",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Link": {
        "description": 'RFC 8288 links to the other pages: rel="first", "prev", "next", '
        '"last"; "next" (when a page follows) with a cursor, the others with offsets',
        "schema": {"type": "string"},
    },
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {
        "description": "Not Modified: If-None-Match matches the current ETag (no body)",
        "headers": {"ETag": _SERVED["ETag"]},
    }
}


def _links(event_id: str) -> dict[str, dict[str, Any]]:
    """OpenAPI links from a response that names one event (by ``event_id``, a runtime
    expression) and carries its ETag to the operations on that event: the ETag as If-Match,
    the way a client avoids lost updates."""
    guarded = {"event_id": event_id, "header.If-Match": "$response.header.ETag"}
    return {
        "GetEvent": {"operationId": "getEvent", "parameters": {"event_id": event_id}},
        "ReplaceEvent": {"operationId": "replaceEvent", "parameters": guarded},
        "UpdateEvent": {"operationId": "updateEvent", "parameters": guarded},
        "DeleteEvent": {"operationId": "deleteEvent", "parameters": guarded},
    }


_WRITTEN = {"headers": {**_ETAG, **_MODIFIED}, "links": _links("$request.path.event_id")}
# What a conditional write (PUT, PATCH, DELETE of one event) may also answer.
CONDITIONAL: dict[int | str, dict[str, Any]] = {
    412: {
        "model": Problem,
        "description": (
            "If-Match matches no current representation: the event changed since that ETag "
            "was read (the ETag header and the body's etag member carry its current ETag), or "
            "it does not exist"
        ),
        "headers": {
            "ETag": {"description": "The event's current ETag", "schema": {"type": "string"}}
        },
    },
    428: {
        "model": Problem,
        "description": "If-Match is required (EVENTAPI_REQUIRE_IF_MATCH) and was not sent",
    },
}


async def if_match_header(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(
            description=(
                "Write only if the event is unchanged: the ETag of a GET (several, "
                "comma-separated: any of them), or * (the event exists). Strong comparison: "
                "a weak tag never matches. Otherwise 412, with the current ETag."
            ),
            examples=['"0f8e5c8a3b6d4e2f9a1b7c6d5e4f3a2b"'],
        ),
    ] = None,
) -> IfMatch | None:
    """The request's If-Match (every If-Match line of it), or None; 428 if it is required."""
    del if_match  # documented above; read below with every line of it
    lines = request.headers.getlist("if-match")
    if not lines:
        if runtime_of(request.scope).settings.require_if_match:
            raise PreconditionRequired()
        return None
    return IfMatch.parse(", ".join(lines))


IfMatchDep = Annotated[IfMatch | None, Depends(if_match_header)]


async def if_unmodified_since_header(
    if_unmodified_since: Annotated[
        str | None,
        Header(
            description=(
                "Write only if the event is unchanged since this HTTP date (its "
                "Last-Modified); else 412. To the second: If-Match is exact. Ignored with "
                "If-Match, or when it is not an HTTP date."
            ),
            examples=["Tue, 02 Dec 2025 10:00:00 GMT"],
        ),
    ] = None,
) -> IfUnmodifiedSince | None:
    return None if if_unmodified_since is None else IfUnmodifiedSince.parse(if_unmodified_since)


IfUnmodifiedSinceDep = Annotated[IfUnmodifiedSince | None, Depends(if_unmodified_since_header)]

# 1 to 255 printable ASCII characters; spaces only inside (HTTP drops them at either end).
IDEMPOTENCY_KEY = r"^[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY)


async def idempotency_key_header(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            description=(
                "Create at most once: a retry with the same key and the same body (within "
                "24 hours, per API key) creates nothing and gets the original 201 again, "
                "with Idempotent-Replayed: true. The same key with another body: 422; "
                "while the first request is still being processed: 409. 1 to 255 "
                "printable ASCII characters, e.g. a UUID; anything else: 400."
            ),
            examples=["5f2b7c1e-8a4d-4c3b-9e6f-1a2b3c4d5e6f"],
            # Documented, not enforced by FastAPI: a bad key is our 400, not a 422.
            json_schema_extra={"pattern": IDEMPOTENCY_KEY, "maxLength": 255},
        ),
    ] = None,
) -> IdempotencyKey | None:
    if idempotency_key is None:
        return None
    if _IDEMPOTENCY_KEY.fullmatch(idempotency_key) is None:
        raise InvalidIdempotencyKey()
    # Behind the gate a create carries a configured key whenever keys are configured.
    caller = runtime_of(request.scope).callers.of(request.scope)
    return IdempotencyKey(caller.idempotency_scope, idempotency_key)


IdempotencyKeyDep = Annotated[IdempotencyKey | None, Depends(idempotency_key_header)]

_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "true: the original response to an earlier request with this "
        "Idempotency-Key (nothing was created)",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
IDEMPOTENT: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Malformed request body, or invalid Idempotency-Key"},
    409: {
        "model": Problem,
        "description": "A request with this Idempotency-Key is still being processed",
    },
    422: {
        "model": Problem,
        "description": "Invalid event, or this Idempotency-Key was used with another body",
    },
}


def _response(parts: Parts) -> Response:
    status, headers, body = parts
    return Response(body, status, headers=headers)


router = APIRouter(
    prefix=EVENTS_PATH,
    tags=["events"],
    responses=_problems(422, 503),
    route_class=JsonBodyRoute,
)


@router.get(
    "",
    response_model=list[OccurrenceRead | EventRead],
    operation_id="listEvents",
    summary="List events",
    responses={
        400: {
            "model": Problem,
            "description": "A cursor that is not one the API gave for this query (damaged, "
            "or of other filters, another sort or expand)",
        },
        **_problems(429, 503),
        **NOT_MODIFIED,
        200: {"headers": {**_SERVED, **_PAGED}},
    },
    description=(
        "Filter, sort and page. Total in X-Total-Count; pages in the Link header: follow "
        'rel="next" (a cursor) to see every event that exists throughout the walk once, '
        "whatever is created or deleted meanwhile. "
        "X-Cache says whether the page came from the cache (HIT), the store (MISS), or "
        "the store because the cache is off or unreachable (BYPASS). A page the cache "
        "cannot answer runs a query: a client may run only a few at once (429 beyond), "
        "a server process a few more (503 beyond), both with Retry-After."
    ),
)
async def list_events(
    runtime: RuntimeDep,
    query: Annotated[EventQuery, Query()],
    request: Request,
    if_none_match: IfNoneMatch = None,
) -> Response:
    del if_none_match  # documented above; read with every line of it (if_none_match_of)
    scope = request.scope
    # What this query string validated to: the fast path (http/fastpath.py) answers the
    # same string from now on without validating it again. Both run list_parts.
    runtime.known_queries.learn(scope["query_string"], query)
    parts = list_parts(runtime.service, runtime.callers, query, if_none_match_of(scope), scope)
    return _response(await parts)


_CALENDAR_EXAMPLE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//eventapi//eventapi//EN\r\n"
    "CALSCALE:GREGORIAN\r\nBEGIN:VEVENT\r\nUID:68ed254e36d0233aa05afbe9@eventapi\r\n"
    "DTSTAMP:20251013T160502Z\r\nSEQUENCE:42\r\nSUMMARY:New Conference\r\n"
    "DTSTART:20251201T100000\r\nSTATUS:CONFIRMED\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
_CALENDAR_CONTENT = {"text/calendar": {"schema": {"type": "string"}, "example": _CALENDAR_EXAMPLE}}


@router.get(
    ".ics",
    operation_id="listEventsCalendar",
    summary="The events as an iCalendar feed (.ics)",
    description=(
        "The list's filters and sort as an RFC 5545 calendar, up to 500 events a page (more "
        "pages in the Link header): a calendar app subscribes to this URL. Each event is one "
        "VEVENT with a stable UID, SEQUENCE rising with every change, DTSTART/DTEND in its "
        "time zone (with a VTIMEZONE for each zone used), RRULE and EXDATE for a recurring "
        "event, STATUS:CANCELLED for a cancelled one. Cached like every read (ETag, 304)."
    ),
    response_class=Response,
    responses={
        **_problems(400, 429, 503),
        **NOT_MODIFIED,
        200: {"content": _CALENDAR_CONTENT, "headers": {**_SERVED, **_PAGED}},
    },
)
async def list_calendar(
    runtime: RuntimeDep,
    query: Annotated[CalendarQuery, Query()],
    request: Request,
    if_none_match: IfNoneMatch = None,
) -> Response:
    del if_none_match  # documented above; read with every line of it (calendar_parts)
    scope = request.scope
    served = await runtime.service.calendar(query, lambda: runtime.callers.of(scope).client)
    return _response(calendar_parts(served, scope, request.url.path))


@router.get(
    "/{event_id}.ics",
    operation_id="getEventCalendar",
    summary="One event as an iCalendar file (.ics)",
    description="The event as a calendar of one VEVENT (see listEventsCalendar).",
    response_class=Response,
    responses={
        **_problems(404),
        **NOT_MODIFIED,
        200: {"content": _CALENDAR_CONTENT, "headers": {**_SERVED, **_MODIFIED}},
    },
)
async def get_event_calendar(
    event_id: EventId, service: ServiceDep, request: Request, if_none_match: IfNoneMatch = None
) -> Response:
    del if_none_match  # documented above; read with every line of it (calendar_parts)
    event_id = event_id.lower()
    served = await service.calendar_of(event_id)
    return _response(calendar_parts(served, request.scope, request.url.path, event_id))


@router.api_route(
    "/{event_id}.ics",
    methods=["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"],
    include_in_schema=False,
)
async def write_event_calendar() -> None:
    """An event's calendar is read only. Without this route the routes of /{event_id} would
    take the path for their methods (an id holds no dot, but their pattern's segment can)
    and answer, or list their methods in Allow, as if it named an event."""
    raise MethodNotAllowed("GET, HEAD")


@router.get(
    "/{event_id}",
    response_model=EventRead,
    operation_id="getEvent",
    summary="Get one event",
    responses={**_problems(404), **NOT_MODIFIED, 200: {"headers": {**_SERVED, **_MODIFIED}}},
)
async def get_event(
    event_id: ReadId,
    service: ServiceDep,
    request: Request,
    if_none_match: IfNoneMatch = None,
    if_modified_since: IfModifiedSince = None,
) -> Response:
    del if_none_match, if_modified_since  # documented above; read by item_parts
    # The ASGI fast path (http/fastpath.py) answers these requests before routing; this
    # route documents the operation in OpenAPI and serves when the fast path is off. Both
    # run item_parts.
    return _response(await item_parts(service, event_id, request.scope, request.url.path))


@router.post(
    "",
    response_model=EventRead,
    status_code=201,
    operation_id="createEvent",
    summary="Create an event",
    responses={
        **_problems(*BODY_PROBLEMS),
        **IDEMPOTENT,
        201: {
            "headers": {
                **_ETAG,
                **_MODIFIED,
                "Location": {"schema": {"type": "string"}},
                **_REPLAYED,
            },
            "links": _links("$response.body#/id"),
        },
    },
)
async def create_event(
    data: EventCreate, service: ServiceDep, request: Request, key: IdempotencyKeyDep
) -> Response:
    try:
        written = await service.create(data, key)
    except IdempotencyKeyReused as exc:
        # Shaped like every other 422 of the API: with the offending input in ``errors``.
        error = {"loc": ["header", "Idempotency-Key"], "msg": exc.detail, "type": exc.slug}
        return problem_response(
            exc.status,
            exc.detail,
            slug=exc.slug,
            title=exc.title,
            instance=request.url.path,
            errors=[error],
        )
    location = f"{request.url.path}/{written.event_id}"
    if written.replayed:
        return written_response(written, 201, Location=location, **{"Idempotent-Replayed": "true"})
    return written_response(written, 201, Location=location)


@router.put(
    "/{event_id}",
    response_model=EventRead,
    operation_id="replaceEvent",
    summary="Replace an event",
    description=(
        "Full replace: optional fields left out are cleared. With If-Match, only if the "
        "event is unchanged since that ETag was read (else 412). The response's ETag is "
        "the new one."
    ),
    responses={**_problems(404, *BODY_PROBLEMS), **CONDITIONAL, 200: _WRITTEN},
)
async def replace_event(
    event_id: EventId,
    data: EventCreate,
    service: ServiceDep,
    if_match: IfMatchDep,
    unmodified: IfUnmodifiedSinceDep,
) -> Response:
    written = await service.replace(event_id.lower(), data, if_match, unmodified)
    return written_response(written)


@router.patch(
    "/{event_id}",
    response_model=EventRead,
    operation_id="updateEvent",
    summary="Update some fields of an event",
    description=(
        "Fields left out stay as they are; null clears an optional field. The body may be "
        "sent as application/json or application/merge-patch+json. With If-Match, only if "
        "the event is unchanged since that ETag was read (else 412). The response's ETag "
        "is the new one."
    ),
    responses={**_problems(404, *BODY_PROBLEMS), **CONDITIONAL, 200: _WRITTEN},
)
async def patch_event(
    event_id: EventId,
    data: EventUpdate,
    service: ServiceDep,
    if_match: IfMatchDep,
    unmodified: IfUnmodifiedSinceDep,
) -> Response:
    written = await service.patch(event_id.lower(), data, if_match, unmodified)
    return written_response(written)


@router.delete(
    "/{event_id}",
    response_model=DeleteResult,
    operation_id="deleteEvent",
    summary="Delete an event",
    description="With If-Match, only if the event is unchanged since that ETag was read.",
    responses={**_problems(404), **CONDITIONAL},
)
async def delete_event(
    event_id: EventId,
    service: ServiceDep,
    if_match: IfMatchDep,
    unmodified: IfUnmodifiedSinceDep,
) -> Response:
    event_id = event_id.lower()
    await service.delete(event_id, if_match, unmodified)
    body = DeleteResult(message=f"Event {event_id} deleted successfully")
    return Response(body.model_dump_json(), media_type=JSON)
