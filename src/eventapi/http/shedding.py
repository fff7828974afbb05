"""Refuse a list query the process could not run anyway, before it is parsed.

An uncached list query needs a place in the admission (events/admission.py). When there is
none, the route would still parse and validate the query string, build the query, look it
up in the cache and only then refuse it: a few clients sending unique (so uncached)
queries as fast as they are answered keep the event loop busy with exactly that, and
every other request waits behind them. So while the process (or this client) has no place
free, a GET of the list whose query string this process has not validated before is
answered here, with the refusal the admission would give (503 or 429, ``Retry-After``).

A query string the route has validated (fast path's KnownQueries) goes on as before: its
page may be cached, and cached reads are served whatever the load. What changes under
that load is only the answer to a string never seen: 503/429 where a quiet process would
have parsed it (and answered 422 if it did not validate). The same with the fast path
on or off: this layer sits in front of both.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from eventapi.events.links import EVENTS_PATH
from eventapi.events.responses import client_of, send_parts
from eventapi.events.service import EventService
from eventapi.http.fastpath import KnownQueries
from eventapi.http.problems import problem_parts


class ShedListQueries:
    def __init__(self, app: ASGIApp, known: KnownQueries) -> None:
        self.app = app
        self.known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == EVENTS_PATH
            and self.known.get(scope["query_string"]) is None
        ):
            service: EventService = scope["app"].state.service
            refused = service.list_refusal(client_of(scope))
            if refused is not None:
                scope["eventapi.route"] = EVENTS_PATH
                await send_parts(send, problem_parts(refused, EVENTS_PATH))
                return
        await self.app(scope, receive, send)
