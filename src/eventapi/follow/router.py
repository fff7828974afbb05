"""HTTP routes for following the events: GET /api/changes (the feed, a page at a time) and
GET /api/changes/stream (the same changes live, as Server-Sent Events)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from starlette.types import Receive, Scope, Send

from eventapi.deps import RuntimeDep
from eventapi.follow import cursor
from eventapi.follow.feed import MAX_LIMIT, ChangesPage, follow, page_body
from eventapi.follow.stream import ChangeStream
from eventapi.http.problems import Problem

CHANGES_PATH = "/api/changes"

After = Annotated[
    str | None,
    Query(
        description=(
            "The changes after this change cursor: an X-Changes-Cursor header, a change's "
            "cursor, or a page's next. Without it: from the first change the log keeps"
        ),
        pattern=cursor.PATTERN,
        examples=[cursor.EXAMPLE],
    ),
]
_CURSOR_HEADER = {
    "X-Changes-Cursor": {
        "description": "Where this answer leaves a follower in the change log",
        "schema": {"type": "string", "pattern": cursor.PATTERN},
    }
}
_GONE = {
    "model": Problem,
    "description": (
        "The log no longer keeps the changes after this cursor (EVENTAPI_CHANGES_RETENTION): "
        "sync again from a list and follow its X-Changes-Cursor"
    ),
}
_STREAM_EXAMPLE = (
    "retry: 2000\n\n"
    f"id: {cursor.EXAMPLE}\n"
    'data: {"cursor":"' + cursor.EXAMPLE + '","id":"68ed254e36d0233aa05afbe9",'
    '"kind":"deleted","event":null}\n\n'
    ": keep-alive\n\n"
)


def _problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": Problem} for code in codes}


router = APIRouter(prefix=CHANGES_PATH, tags=["changes"], responses=_problems(400, 422, 503))


@router.get(
    "",
    response_model=ChangesPage,
    operation_id="listChanges",
    summary="Changes since a cursor",
    description=(
        "Every create, update and delete after `after`, in commit order, each with the event "
        "as it is now (`event: null` once it is deleted: the tombstone). Follow `next` until "
        "`more` is false; keep `next` to ask again later. A client that stores a list's "
        "X-Changes-Cursor and follows the changes from it misses none (it may see some twice)."
    ),
    responses={410: _GONE, 200: {"headers": _CURSOR_HEADER}, **_problems(429)},
)
async def list_changes(
    request: Request,
    runtime: RuntimeDep,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Changes per page")] = 100,
) -> Response:
    position = 0 if after is None else cursor.decode(after)
    # A page reads up to MAX_LIMIT changes and their events from the store: admitted like an
    # uncached list query (events/admission.py), so a few clients asking for pages as fast as
    # they can take their share, not the process.
    with runtime.admission.admit(runtime.callers.of(request.scope).client):
        followed = await follow(runtime.store, position, limit)
    headers = {"X-Changes-Cursor": cursor.encode(followed.next), "Cache-Control": "no-store"}
    return Response(page_body(followed), media_type="application/json", headers=headers)


class _StreamResponse(Response):
    def __init__(self, stream: ChangeStream, after: int, release: Callable[[], None]) -> None:
        super().__init__()
        self._stream, self._after, self._release = stream, after, release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream(scope, receive, send, self._after)
        finally:
            self._release()


@router.get(
    "/stream",
    operation_id="streamChanges",
    summary="Changes as they happen (Server-Sent Events)",
    description=(
        "A text/event-stream: one event per change, `id:` its cursor and `data:` the change "
        "as GET /api/changes gives it. Resumes after `Last-Event-ID` (what a browser's "
        "EventSource sends when it reconnects) or `after`; with neither, from now. A comment "
        "line at least every EVENTAPI_STREAM_HEARTBEAT seconds. A change made through any "
        "server process arrives within about a second. At most EVENTAPI_STREAMS_PER_CLIENT "
        "streams per client (429) and EVENTAPI_STREAMS_PER_PROCESS per process (503)."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "The changes, as they happen",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}, "example": _STREAM_EXAMPLE}
            },
            "headers": _CURSOR_HEADER,
        },
        410: _GONE,
        **_problems(429),
    },
)
async def stream_changes(
    request: Request,
    runtime: RuntimeDep,
    after: After = None,
    last_event_id: Annotated[
        str | None,
        Header(
            description="The id of the last event received (sent by EventSource on a reconnect)",
            pattern=cursor.PATTERN,
        ),
    ] = None,
) -> Response:
    text = last_event_id or after
    watch = runtime.watch
    position = watch.head if text is None else cursor.decode(text)
    if watch.since(position) is None:
        await follow(runtime.store, position, 1)  # 410 now if the log no longer has them
    release = runtime.streams.take(runtime.callers.of(request.scope).client)
    settings = runtime.settings
    stream = ChangeStream(
        watch,
        runtime.store,
        runtime.streams.reads,
        settings.stream_heartbeat,
        settings.stream_send_timeout,
    )
    return _StreamResponse(stream, position, release)
