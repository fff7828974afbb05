"""How long, and how many, connections may hold the server.

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

Three more bounds, for the same reason (a few clients must not hold every socket):

- A request body must be complete within EVENTAPI_BODY_TIMEOUT of its head; past it a 408
  (or, once the response has started, just the close). Without it a client that declares
  a body and never sends it holds the connection, and a request task, for ever.
- A request head larger than MAX_HEAD_BYTES is a 431 and the connection is closed, before
  the parser joins its pieces (which costs time quadratic in their number).
- A process holds at most EVENTAPI_MAX_CONNECTIONS connections; one more is answered 503
  at once and closed, so the process never runs out of file descriptors (``raise_file_limit``
  lifts the soft limit to the hard one at start, and the cap is kept below it).

It also sends each response with one write (coalesce.py). `eventapi serve` installs it
(cli.py). Behind a reverse proxy the proxy's own header timeout does the same job at the
edge (README, Deploy).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import resource
import socket
import struct

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from eventapi.draining import ABORT, Draining
from eventapi.http.coalesce import CoalescingTransport
from eventapi.settings import Settings

log = logging.getLogger("eventapi.http")

#: What `uvicorn.run(http=...)` is given: a string, so `--workers` processes import it.
PROTOCOL = f"{__name__}:HeaderTimeoutProtocol"
# The largest request head (request line and every header) read: far above any real one.
MAX_HEAD_BYTES = 64 * 1024
# File descriptors kept free of connections: the database, Redis, logs, the listener.
SPARE_FILES = 64


def _closing_problem(status: int, reason: str, title: str, detail: str) -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _request_timeout(seconds: float, what: str = "The request headers were") -> bytes:
    detail = f"{what} not complete within {seconds:g} s."
    return _closing_problem(408, "Request Timeout", "Request Timeout", detail)


def _head_too_large() -> bytes:
    return _closing_problem(
        431,
        "Request Header Fields Too Large",
        "Request Header Fields Too Large",
        f"The request head is larger than {MAX_HEAD_BYTES} bytes.",
    )


def _too_many_connections(cap: int) -> bytes:
    return _closing_problem(
        503,
        "Service Unavailable",
        "Service Unavailable",
        f"This server process already holds {cap} connections; try again shortly.",
    )


@functools.cache
def header_timeout() -> float:
    # Read in each worker process from the same environment the parent validated.
    return Settings().header_timeout


@functools.cache
def body_timeout() -> float:
    return Settings().body_timeout


@functools.cache
def max_connections() -> int:
    """The cap on open connections, below the file limit (raised as far as it goes)."""
    limit = raise_file_limit()
    wanted = Settings().max_connections
    if limit is not None and wanted > limit - SPARE_FILES:
        capped = max(1, limit - SPARE_FILES)
        log.warning(
            "EVENTAPI_MAX_CONNECTIONS=%d is above what the open-file limit (%d) allows: using %d",
            wanted,
            limit,
            capped,
        )
        return capped
    return wanted


def raise_file_limit() -> int | None:
    """Lift this process's soft limit on open files to its hard limit; the limit now
    (None: unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # not allowed here: keep the soft limit
            pass
    return None if soft == resource.RLIM_INFINITY else soft


def _cancel(timer: asyncio.TimerHandle | None) -> None:
    """Cancel ``timer`` if one is armed."""
    if timer is not None:
        timer.cancel()


class _Open:
    """The connections this process holds (one event loop per process)."""

    count = 0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    _header_deadline: asyncio.TimerHandle | None = None
    _body_deadline: asyncio.TimerHandle | None = None
    _counted = False
    _reading_head = True  # between a message's end (or the connection's start) and its head
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
        cap = max_connections()
        if _Open.count >= cap:
            self.transport.write(_too_many_connections(cap))
            self.transport.close()
            return
        _Open.count += 1
        self._counted = True
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        if not self._reading_head or self.transport.is_closing():
            super().data_received(data)
            return
        if self._header_deadline is None:
            # uvicorn stops the keep-alive timer at any byte, but the parser begins no
            # message for the CR and LF it skips between requests: without this, a client
            # sending "\r\n" after a response held the connection for ever.
            self._arm_header_deadline()
        room = MAX_HEAD_BYTES - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Only as much as the cap allows; if the head is still not complete, it is too large.
        self._head_bytes += room
        super().data_received(data[:room])
        if self._reading_head:
            if not self.transport.is_closing():
                self._disarm_header_deadline()
                self.transport.write(_head_too_large())
                self.transport.close()
            return
        self.data_received(data[room:])  # the body, or the next request (its own head)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # a kept-alive connection's next request
            self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._disarm_header_deadline()
        # A long response (a change stream) may drop a reader that stopped reading, its
        # buffered bytes and all (follow/stream.py).
        extensions: dict[str, object] = self.scope.setdefault("extensions", {})  # type: ignore[assignment]
        extensions[ABORT] = self._reset
        super().on_headers_complete()
        self._body_deadline = self.loop.call_later(body_timeout(), self._body_timed_out)

    def on_message_complete(self) -> None:
        self._disarm_body_deadline()
        self._reading_head, self._head_bytes = True, 0
        super().on_message_complete()

    def _reset(self) -> None:
        """Drop the connection now, with what it has not sent (a reset: SO_LINGER 0), so the
        kernel does not keep sending a dropped reader's backlog either."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # Closed meanwhile: uvloop's socket then has no descriptor (ValueError).
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def shutdown(self) -> None:
        # The graceful shutdown begins (uvicorn asks each connection): change streams end
        # now, or the shutdown would wait for them until its time-out.
        Draining.begin()
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        self._disarm_body_deadline()
        if self._counted:
            self._counted = False
            _Open.count -= 1
        super().connection_lost(exc)

    def _disarm_body_deadline(self) -> None:
        _cancel(self._body_deadline)
        self._body_deadline = None

    def _body_timed_out(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            self.transport.write(_request_timeout(body_timeout(), "The request body was"))
        self.transport.close()

    def _arm_header_deadline(self) -> None:
        self._header_deadline = self.loop.call_later(header_timeout(), self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        _cancel(self._header_deadline)
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
