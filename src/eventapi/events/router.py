"""HTTP routes for /api/events: parse, call the service, map to status codes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from eventapi.deps import ServiceDep
from eventapi.events.links import EVENTS_PATH
from eventapi.events.responses import EVENT_ID, JSON, Parts, item_parts, served_parts
from eventapi.events.schemas import DeleteResult, EventCreate, EventQuery, EventRead, EventUpdate
from eventapi.http.json_body import JsonBodyRoute
from eventapi.http.problems import Problem

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
    responses=_problems(*BODY_PROBLEMS),
)
async def create_event(data: EventCreate, service: ServiceDep, request: Request) -> Response:
    written = await service.create(data)
    location = f"{request.url.path}/{written.event_id}"
    return Response(written.body, 201, media_type=JSON, headers={"Location": location})


@router.put(
    "/{event_id}",
    response_model=EventRead,
    summary="Replace an event",
    description="Full replace: optional fields left out are cleared.",
    responses=_problems(404, *BODY_PROBLEMS),
)
async def replace_event(event_id: EventId, data: EventCreate, service: ServiceDep) -> Response:
    return Response((await service.replace(event_id.lower(), data)).body, media_type=JSON)


@router.patch(
    "/{event_id}",
    response_model=EventRead,
    summary="Update some fields of an event",
    description=(
        "Fields left out stay as they are; null clears an optional field. The body may be "
        "sent as application/json or application/merge-patch+json."
    ),
    responses=_problems(404, *BODY_PROBLEMS),
)
async def patch_event(event_id: EventId, data: EventUpdate, service: ServiceDep) -> Response:
    return Response((await service.patch(event_id.lower(), data)).body, media_type=JSON)


@router.delete(
    "/{event_id}", response_model=DeleteResult, summary="Delete an event", responses=_problems(404)
)
async def delete_event(event_id: EventId, service: ServiceDep) -> DeleteResult:
    event_id = event_id.lower()
    await service.delete(event_id)
    return DeleteResult(message=f"Event {event_id} deleted successfully")
