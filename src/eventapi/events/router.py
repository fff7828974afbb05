"""HTTP routes for /api/events: parse, call the service, map to status codes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from eventapi.deps import ServiceDep
from eventapi.errors import Problem
from eventapi.events.links import page_links
from eventapi.events.schemas import DeleteResult, EventCreate, EventQuery, EventRead, EventUpdate

JSON = "application/json"

EventId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-fA-F]{24}$",
        description="24-character hexadecimal ObjectId",
        examples=["68ed254e36d0233aa05afbe9"],
    ),
]


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem, "content": {"application/problem+json": {}}} for code in codes}


router = APIRouter(prefix="/api/events", tags=["events"], responses=_problems(422, 503))


@router.get(
    "",
    response_model=list[EventRead],
    summary="List events",
    description="Filter, sort and page. Total in X-Total-Count; pages in the Link header.",
)
async def list_events(
    request: Request, service: ServiceDep, query: Annotated[EventQuery, Query()]
) -> Response:
    page = await service.list(query)
    headers = {
        "X-Total-Count": str(page.total),
        "Link": page_links(request.url.path, query, page.total),
    }
    return Response(page.body, media_type=JSON, headers=headers)


@router.get(
    "/{event_id}", response_model=EventRead, summary="Get one event", responses=_problems(404)
)
async def get_event(event_id: EventId, service: ServiceDep) -> Response:
    return Response(await service.get(event_id.lower()), media_type=JSON)


@router.post("", response_model=EventRead, status_code=201, summary="Create an event")
async def create_event(data: EventCreate, service: ServiceDep, request: Request) -> Response:
    written = await service.create(data)
    location = f"{request.url.path}/{written.event_id}"
    return Response(written.body, 201, media_type=JSON, headers={"Location": location})


@router.put(
    "/{event_id}",
    response_model=EventRead,
    summary="Replace an event",
    description="Full replace: optional fields left out are cleared.",
    responses=_problems(404),
)
async def replace_event(event_id: EventId, data: EventCreate, service: ServiceDep) -> Response:
    return Response((await service.replace(event_id.lower(), data)).body, media_type=JSON)


@router.patch(
    "/{event_id}",
    response_model=EventRead,
    summary="Update some fields of an event",
    description="Fields left out stay as they are; null clears an optional field.",
    responses=_problems(404),
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
