"""The read edge: cached reads straight from the service, without FastAPI's routing,
dependency solving, query validation and Request/Response objects (GET /api/events/{id} and
GET /api/events), and the list queries a process could not run anyway, refused before they
are parsed. One layer, because each layer costs a call on the cached hit path.

**Fast path.** A cache hit is the hot path of the whole API, and on it FastAPI's
per-request machinery costs several times the work of the hit itself (see
docs/benchmarks.md). This layer answers exactly the requests the FastAPI routes would answer
with 200, 304 or a domain error, by the same functions (events/responses.py); anything else
goes on to FastAPI, which stays the documented route. With ``serve=False`` it leaves them to
the routes (the API tests run both ways, and tests/api/test_one_contract.py requires the two
to answer byte for byte alike).

- One event: any well-formed id (a malformed one, another method or path goes on).
- Only a request without a body: a GET that sends one goes on to the body limit and the
  route, so it is answered as it would be with the fast path off.
- A list: only a query string the route has already validated, byte for byte
  (events/known_queries.py). The route learns each one from its own validation, so the fast
  path never parses a query itself and cannot read one differently: a query string it has
  not seen, or one that did not validate, goes to the route, which answers it (422 included).

**Shedding.** An uncached list query needs a place in the admission (events/admission.py).
When there is none, the route would still parse and validate the query string, build the
query, look it up in the cache and only then refuse it: a few clients sending unique (so
uncached) queries as fast as they are answered keep the event loop busy with exactly that,
and every other request waits behind them. So while the process (or this client) has no
place free, a GET of the list whose query string this process has not validated before is
answered here, with the refusal the admission would give (503 or 429, ``Retry-After``). A
query string the route has validated goes on as before: its page may be cached, and cached
reads are served whatever the load. What changes under that load is only the answer to a
string never seen: 503/429 where a quiet process would have parsed it (and answered 422 if
it did not validate). The same with ``serve`` on or off.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.errors import EventApiError
from eventapi.events.links import EVENTS_PATH
from eventapi.events.responses import (
    Parts,
    if_none_match_of,
    item_parts,
    list_parts,
    send_parts,
)
from eventapi.events.schemas import EVENT_ID
from eventapi.http.problems import problem_parts
from eventapi.runtime import Runtime, runtime_of

PREFIX = EVENTS_PATH + "/"
ROUTE = PREFIX + "{event_id}"
_ID = re.compile(EVENT_ID)
_ID_END = len(PREFIX) + 24


class ReadEdge:
    def __init__(self, app: ASGIApp, serve: bool = True) -> None:
        self.app = app
        self.serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path == EVENTS_PATH:
                runtime = runtime_of(scope)
                query = runtime.known_queries.get(scope["query_string"])
                if query is None:
                    if await _shed(scope, send, runtime):
                        return
                elif self.serve and not _has_body(scope):
                    scope["eventapi.route"] = EVENTS_PATH
                    inm = if_none_match_of(scope)
                    parts = list_parts(runtime.service, runtime.callers, query, inm, scope)
                    await _answer(scope, send, parts)
                    return
            elif (
                self.serve
                and len(path) == _ID_END
                and path.startswith(PREFIX)
                and _ID.fullmatch(path, len(PREFIX))
                and not _has_body(scope)
            ):
                scope["eventapi.route"] = ROUTE
                service = runtime_of(scope).service
                await _answer(scope, send, item_parts(service, path[len(PREFIX) :], scope, path))
                return
        await self.app(scope, receive, send)


async def _shed(scope: Scope, send: Send, runtime: Runtime) -> bool:
    """Refuse a never-validated list query when the admission has no place for it."""
    refused = runtime.service.list_refusal(runtime.callers.of(scope).client)
    if refused is None:
        return False
    scope["eventapi.route"] = EVENTS_PATH
    await send_parts(send, problem_parts(refused, EVENTS_PATH))
    return True


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
