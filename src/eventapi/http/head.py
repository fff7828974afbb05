"""HEAD: the GET of the same URL without its body (RFC 9110 section 9.3.2), on every path
that answers GET (the events, one event, /health, /metrics, the documentation).

The request goes on inward as a GET, through everything a GET goes through: access
control, the item fast path (so a HEAD of one event is served without routing, like its
GET), the cache, the routes. Its answer is the GET's: the same status and headers, X-Cache
and ETag included, a 304 for a matching If-None-Match, and the Content-Length of the body
the GET would send. Only the body is dropped, here. The latency timer, outside this layer,
still records the request as a HEAD, under the route the GET matched.

FastAPI routes answer GET only (a HEAD was 405), and a 405 lists HEAD in Allow wherever it
lists GET (http/problems.py).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        # A copy: the server keeps seeing a HEAD (uvicorn then sends no body and does not
        # wait for Content-Length bytes of one).
        inner = {**scope, "method": "GET"}

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(inner, receive, without_body)
        finally:
            # What the layers inside recorded about the request (the matched route, which
            # the latency timer labels with) belongs to this request too.
            scope.update((key, value) for key, value in inner.items() if key != "method")
