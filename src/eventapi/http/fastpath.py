"""Cached reads straight from the service, without FastAPI's routing, dependency solving,
query validation and Request/Response objects: GET /api/events/{id} and GET /api/events.

A cache hit is the hot path of the whole API, and on it FastAPI's per-request machinery
costs several times the work of the hit itself (see docs/benchmarks.md). This middleware
answers exactly the requests the FastAPI routes would answer with 200, 304 or a domain
error, by the same functions (events/responses.py); anything else goes on to FastAPI, which
stays the documented route. The API test suite runs with and without it, so the two stay
one contract.

- One event: any well-formed id (a malformed one, another method or path goes on).
- Only a request without a body: a GET that sends one goes on to the body limit and the
  route, so it is answered as it would be with the fast path off.
- A list: only a query string the route has already validated, byte for byte
  (KnownQueries). The route learns each one from its own validation, so the fast path
  never parses a query itself and cannot read one differently: a query string it has not
  seen, or one that did not validate, goes to the route, which answers it (422 included).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.errors import EventApiError
from eventapi.events.links import EVENTS_PATH
from eventapi.events.responses import (
    EVENT_ID,
    Parts,
    if_none_match_of,
    item_parts,
    list_parts,
    send_parts,
)
from eventapi.events.schemas import EventQuery
from eventapi.events.service import EventService
from eventapi.http.problems import problem_parts

PREFIX = EVENTS_PATH + "/"
ROUTE = PREFIX + "{event_id}"
_ID = re.compile(EVENT_ID)
_ID_END = len(PREFIX) + 24


class KnownQueries:
    """Raw list query strings and what the route validated each to, at most ``size`` of
    them (the oldest learned goes first): bounded, whatever clients send."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._known: dict[bytes, EventQuery] = {}

    def __len__(self) -> int:
        return len(self._known)

    def get(self, raw: bytes) -> EventQuery | None:
        return self._known.get(raw)

    def learn(self, raw: bytes, query: EventQuery) -> None:
        if raw not in self._known and len(self._known) >= self.size:
            del self._known[next(iter(self._known))]
        self._known[raw] = query


class ReadFastPath:
    def __init__(self, app: ASGIApp, known: KnownQueries) -> None:
        self.app = app
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not _has_body(scope):
            path: str = scope["path"]
            if (
                len(path) == _ID_END
                and path.startswith(PREFIX)
                and _ID.fullmatch(path, len(PREFIX))
            ):
                scope["eventapi.route"] = ROUTE
                await self._item(scope, send, path[len(PREFIX) :])
                return
            if path == EVENTS_PATH and (query := self.known.get(scope["query_string"])):
                scope["eventapi.route"] = EVENTS_PATH
                await self._list(scope, send, query)
                return
        await self.app(scope, receive, send)

    async def _item(self, scope: Scope, send: Send, event_id: str) -> None:
        service: EventService = scope["app"].state.service
        path = scope["path"]
        await _answer(scope, send, item_parts(service, event_id, if_none_match_of(scope), path))

    async def _list(self, scope: Scope, send: Send, query: EventQuery) -> None:
        service: EventService = scope["app"].state.service
        await _answer(scope, send, list_parts(service, query, if_none_match_of(scope), scope))


def _has_body(scope: Scope) -> bool:
    """Whether the request says it sends a body: such a GET goes on, so the body limit
    (http/body_limit.py) judges it as it judges every request's."""
    for name, value in scope["headers"]:
        if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return True
    return False


async def _answer(scope: Scope, send: Send, answering: Awaitable[Parts]) -> None:
    """Send the parts, or the problem a domain error stands for (as the routes' handlers
    would)."""
    parts: Parts
    try:
        parts = await answering
    except EventApiError as exc:
        parts = problem_parts(exc, scope["path"])
    await send_parts(send, parts)
