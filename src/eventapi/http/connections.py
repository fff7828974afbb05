"""How long a connection may hold the server without sending a request.

uvicorn closes a keep-alive connection that stays idle after a response, but nothing bounds
a connection that never finishes a request head: one opened and left silent, or one that
trickles a header byte now and then (slowloris). Each holds a socket and its buffers for as
long as the client likes, so a few hundred of them exhaust the process's file descriptors.

``HeaderTimeoutProtocol`` is uvicorn's httptools protocol with one more timer: a request
head must be complete within EVENTAPI_HEADER_TIMEOUT of the connection opening, or of its
first byte on a kept-alive connection (the idle time before that byte is uvicorn's
keep-alive timeout). Past it the client gets a 408 and the connection is closed. A request
whose head is complete is never cut by it: a slow store or a slow response is bounded
elsewhere (EVENTAPI_STORE_TIMEOUT), and a body by EVENTAPI_MAX_BODY_BYTES.

It also sends each response with one write (coalesce.py). `eventapi serve` installs it
(cli.py). Behind a reverse proxy the proxy's own header timeout does the same job at the
edge (README, Deploy).
"""

from __future__ import annotations

import asyncio
import functools
import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from eventapi.http.coalesce import CoalescingTransport
from eventapi.settings import Settings

#: What `uvicorn.run(http=...)` is given: a string, so `--workers` processes import it.
PROTOCOL = f"{__name__}:HeaderTimeoutProtocol"


def _request_timeout(seconds: float) -> bytes:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Request Timeout",
            "status": 408,
            "detail": f"The request headers were not complete within {seconds:g} s.",
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


@functools.cache
def header_timeout() -> float:
    # Read in each worker process from the same environment the parent validated.
    return Settings().header_timeout


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # a kept-alive connection's next request
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(header_timeout(), self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_request_timeout(header_timeout()))
            self.transport.close()
        else:
            # A pipelined head is trickling in behind a response still being written: that
            # response ends the connection instead of a 408 cutting into it.
            self.cycle.keep_alive = False
