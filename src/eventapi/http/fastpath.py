"""GET /api/events/{id} straight from the service, without FastAPI's routing, dependency
solving and Request/Response objects.

A cache hit is the hot path of the whole API, and on it FastAPI's per-request machinery
costs several times the work of the hit itself (see docs/benchmarks.md). This middleware
answers exactly the requests the FastAPI route would answer with 200, 304 or a domain
error, by the same function (events/responses.py: item_parts); anything else (a malformed
id, another method or path) goes on to FastAPI, which stays the documented route. The API
test suite runs with and without it, so the two stay one contract.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.errors import EventApiError
from eventapi.events.links import EVENTS_PATH
from eventapi.events.responses import EVENT_ID, Parts, item_parts
from eventapi.events.service import EventService
from eventapi.http.problems import problem_parts

PREFIX = EVENTS_PATH + "/"
ROUTE = PREFIX + "{event_id}"
_ID = re.compile(EVENT_ID)
_ID_END = len(PREFIX) + 24


class ItemReadFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and len(path) == _ID_END
            and path.startswith(PREFIX)
            and _ID.fullmatch(path, len(PREFIX))
        ):
            scope["eventapi.route"] = ROUTE
            await self._serve(scope, send, path[len(PREFIX) :])
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, send: Send, event_id: str) -> None:
        service: EventService = scope["app"].state.service
        if_none_match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        parts: Parts
        try:
            parts = await item_parts(service, event_id, if_none_match, scope["path"])
        except EventApiError as exc:
            parts = problem_parts(exc, scope["path"])
        status, headers, body = parts
        raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
