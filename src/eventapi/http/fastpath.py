"""GET /api/events/{id} straight from the service, without FastAPI's routing, dependency
solving and Request/Response objects.

A cache hit is the hot path of the whole API, and on it FastAPI's per-request machinery
costs several times the work of the hit itself (see docs/benchmarks.md). This middleware
answers exactly the requests the FastAPI route would answer with 200, 304 or a domain
error, using the same service and the same response parts; anything else (a malformed
id, another method or path) goes on to FastAPI, which stays the documented route.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.errors import EventApiError, problem_for
from eventapi.events.responses import served_parts
from eventapi.events.service import EventService

PREFIX = "/api/events/"
ROUTE = PREFIX + "{event_id}"
_ID = re.compile(r"[0-9a-fA-F]{24}")
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
            await self._serve(scope, receive, send, path[len(PREFIX) :].lower())
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, event_id: str) -> None:
        service: EventService = scope["app"].state.service
        try:
            served = await service.get(event_id)
        except EventApiError as exc:
            await problem_for(exc, scope["path"])(scope, receive, send)
            return
        if_none_match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        status, headers, body = served_parts(served, if_none_match)
        raw = [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
