"""The outermost layer: every request gets an id, a latency observation and a log line, and
a HEAD is answered as the GET of the same URL without its body.

One middleware does all four because each layer costs a call on the cached hit path.

- **Request id**: X-Request-ID from the request if it is 1-128 characters of
  ``A-Z a-z 0-9 . _ : = + / -`` (a proxy's or a client's trace id), else a new one: a
  random per-process prefix and a counter, unique across processes without a syscall per
  request. Echoed in the response's X-Request-ID, and on every log line written while
  the request is served (logs.REQUEST_ID).
- **Latency**: the eventapi_request_duration_seconds histogram, by method, route template and
  status (the template, not the raw path, keeps the label set small).
- **Request log** (logs.RequestLog, when EVENTAPI_LOG_LEVEL is info or debug): time,
  client address (after trusted proxies' X-Forwarded-For), method, route template (the
  path, escaped, when no route took the request), status, duration, cache outcome (the
  response's X-Cache, or -), request id.
- **HEAD** (RFC 9110 section 9.3.2), on every path that answers GET (the events, one event,
  /health, /metrics, the documentation): the request goes on inward as a GET, through
  everything a GET goes through (access control, the fast path, the cache, the routes),
  and its answer is the GET's: the same status and headers, X-Cache and ETag included, a
  304 for a matching If-None-Match, and the Content-Length of the body the GET would send.
  Only the body is dropped, here. The latency and the log still record a HEAD, under the
  route the GET matched. (FastAPI routes answer GET only; a 405 lists HEAD in Allow
  wherever it lists GET: http/problems.py.)
"""

from __future__ import annotations

import itertools
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventapi.logs import REQUEST_ID, RequestLog
from eventapi.metrics import Metrics

_VALID_ID = re.compile(rb"[A-Za-z0-9._:=+/-]{1,128}")
# Per process: uvicorn's --workers are spawned, so each imports this anew.
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}-{next(_COUNTER):x}"


def request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if _VALID_ID.fullmatch(value):
                given: str = value.decode("ascii")
                return given
            break  # an invalid id is replaced, never echoed (log and header injection)
    return new_request_id()


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, request_log: RequestLog | None) -> None:
        self.app = app
        self.metrics = metrics
        self.request_log = request_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        token = REQUEST_ID.set(rid)
        status = 500
        cache = "-"

        logging = self.request_log is not None
        head = scope["method"] == "HEAD"
        # A HEAD goes on as a GET in a copy of the scope: the server keeps seeing a HEAD
        # (uvicorn then sends no body and does not wait for Content-Length bytes of one).
        inner = {**scope, "method": "GET"} if head else scope

        async def observed_send(message: Message) -> None:
            nonlocal status, cache
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or ()
                if logging:
                    for name, value in headers:
                        if name == b"x-cache":
                            cache = value.decode("latin-1")
                # A new list: the fast path's headers may be shared by many responses.
                message["headers"] = [*headers, (b"x-request-id", rid.encode("ascii"))]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, observed_send)
        finally:
            elapsed = time.perf_counter() - started
            route = _route(inner)  # what the layers inside recorded, the matched route
            self.metrics.observe_latency(scope["method"], route or "unmatched", status, elapsed)
            if self.request_log is not None:
                client = scope.get("client")
                self.request_log.write(
                    client[0] if client else "-",
                    scope["method"],
                    route or _printable(scope["path"]),
                    status,
                    elapsed,
                    cache,
                    rid,
                )
            REQUEST_ID.reset(token)


def _route(scope: Scope) -> str | None:
    """The route template (the fast path sets its own); None if no route took the request
    (404, or answered before routing: 401, 429, 413)."""
    named = scope.get("eventapi.route")
    if named is not None:
        return str(named)
    route = scope.get("route")
    return None if route is None else str(route.path)


def _printable(path: str) -> str:
    # A request's own path in a log line: control characters could forge another line.
    path = path[:200]
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")
