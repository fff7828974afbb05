"""HTTP routes for /api/events: parse, call the service, map to status codes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from eventapi.deps import ServiceDep
from eventapi.errors import PreconditionFailed, PreconditionRequired
from eventapi.events.entry import IfMatch
from eventapi.events.links import EVENTS_PATH
from eventapi.events.responses import (
    EVENT_ID,
    JSON,
    Parts,
    item_parts,
    precondition_failed,
    served_parts,
    written_response,
)
from eventapi.events.schemas import DeleteResult, EventCreate, EventQuery, EventRead, EventUpdate
from eventapi.http.json_body import JsonBodyRoute
from eventapi.http.problems import Problem
from eventapi.settings import Settings

EventId = Annotated[
    str,
    Path(
        pattern=f"^{EVENT_ID}$",
        description="24-character hexadecimal ObjectId",
        examples=["68ed254e36d0233aa05afbe9"],
    ),
]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    # Filed under application/problem+json by errors.document_problem_responses.
    return {code: {"model": Problem} for code in codes}


# What an operation with a request body may also answer (http/json_body.py, body_limit.py):
# 400 not a JSON document, 413 too large, 415 not sent as JSON.
BODY_PROBLEMS = (400, 413, 415)


IfNoneMatch = Annotated[str | None, Header(description="ETag(s) from an earlier response")]

_ETAG = {"ETag": {"description": "Strong tag of the body", "schema": {"type": "string"}}}
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
        settings: Settings = request.app.state.settings
        if settings.require_if_match:
            raise PreconditionRequired()
        return None
    return IfMatch.parse(", ".join(lines))


IfMatchDep = Annotated[IfMatch | None, Depends(if_match_header)]


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
    response_model=list[EventRead],
    summary="List events",
    description=(
        "Filter, sort and page. Total in X-Total-Count; pages in the Link header. "
        "X-Cache says whether the page came from the cache (HIT), the store (MISS), or "
        "the store because the cache is off or unreachable (BYPASS)."
    ),
)
async def list_events(
    service: ServiceDep,
    query: Annotated[EventQuery, Query()],
    if_none_match: IfNoneMatch = None,
) -> Response:
    return _response(served_parts(await service.list(query), if_none_match))


@router.get(
    "/{event_id}", response_model=EventRead, summary="Get one event", responses=_problems(404)
)
async def get_event(
    event_id: EventId, service: ServiceDep, request: Request, if_none_match: IfNoneMatch = None
) -> Response:
    # The ASGI fast path (http/fastpath.py) answers these requests before routing; this
    # route documents the operation in OpenAPI and serves when the fast path is off. Both
    # run item_parts.
    return _response(await item_parts(service, event_id, if_none_match, request.url.path))


@router.post(
    "",
    response_model=EventRead,
    status_code=201,
    summary="Create an event",
    responses={**_problems(*BODY_PROBLEMS), 201: {"headers": _ETAG}},
)
async def create_event(data: EventCreate, service: ServiceDep, request: Request) -> Response:
    written = await service.create(data)
    location = f"{request.url.path}/{written.event_id}"
    return written_response(written, 201, Location=location)


@router.put(
    "/{event_id}",
    response_model=EventRead,
    summary="Replace an event",
    description=(
        "Full replace: optional fields left out are cleared. With If-Match, only if the "
        "event is unchanged since that ETag was read (else 412). The response's ETag is "
        "the new one."
    ),
    responses={**_problems(404, *BODY_PROBLEMS), **CONDITIONAL, 200: {"headers": _ETAG}},
)
async def replace_event(
    event_id: EventId,
    data: EventCreate,
    service: ServiceDep,
    request: Request,
    if_match: IfMatchDep,
) -> Response:
    try:
        written = await service.replace(event_id.lower(), data, if_match)
    except PreconditionFailed as exc:
        return precondition_failed(exc, request.url.path)
    return written_response(written)


@router.patch(
    "/{event_id}",
    response_model=EventRead,
    summary="Update some fields of an event",
    description=(
        "Fields left out stay as they are; null clears an optional field. The body may be "
        "sent as application/json or application/merge-patch+json. With If-Match, only if "
        "the event is unchanged since that ETag was read (else 412). The response's ETag "
        "is the new one."
    ),
    responses={**_problems(404, *BODY_PROBLEMS), **CONDITIONAL, 200: {"headers": _ETAG}},
)
async def patch_event(
    event_id: EventId,
    data: EventUpdate,
    service: ServiceDep,
    request: Request,
    if_match: IfMatchDep,
) -> Response:
    try:
        written = await service.patch(event_id.lower(), data, if_match)
    except PreconditionFailed as exc:
        return precondition_failed(exc, request.url.path)
    return written_response(written)


@router.delete(
    "/{event_id}",
    response_model=DeleteResult,
    summary="Delete an event",
    description="With If-Match, only if the event is unchanged since that ETag was read.",
    responses={**_problems(404), **CONDITIONAL},
)
async def delete_event(
    event_id: EventId, service: ServiceDep, request: Request, if_match: IfMatchDep
) -> Response:
    event_id = event_id.lower()
    try:
        await service.delete(event_id, if_match)
    except PreconditionFailed as exc:
        return precondition_failed(exc, request.url.path)
    body = DeleteResult(message=f"Event {event_id} deleted successfully")
    return Response(body.model_dump_json(), media_type=JSON)
