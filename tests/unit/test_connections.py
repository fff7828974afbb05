"""HeaderTimeoutProtocol in-process, on a real socket: a request head that is not complete in
time gets a 408 and the connection closes; a complete head is never cut. The same, with 700
connections against a real `eventapi serve`, is in tests/cli/test_connections.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from eventapi.http import connections
from eventapi.http.connections import HeaderTimeoutProtocol

TIMEOUT = 0.3
STEP = TIMEOUT / 6  # between trickled bytes: well inside the timeout, so bytes keep coming
REQUEST = b"GET /x HTTP/1.1\r\nhost: t\r\n\r\n"

Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


@dataclass
class App:
    """Answers 200 with the request body; waits for ``release`` when asked to (path /wait)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/wait":
            self.started.set()
            await self.release.wait()
        body = body or b"ok"
        length = str(len(body)).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", length)]}
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class Running:
    port: int
    app: App
    protocols: list[Watched]
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers.append(writer)  # closed by the fixture, also when a test fails
        return reader, writer


class Watched(HeaderTimeoutProtocol):
    """Tells the test when a header deadline has fired."""

    timed_out: asyncio.Event

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.timed_out = asyncio.Event()
        super().connection_made(transport)

    def _header_timed_out(self) -> None:
        super()._header_timed_out()
        self.timed_out.set()


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.setenv("EVENTAPI_HEADER_TIMEOUT", str(TIMEOUT))
    connections.header_timeout.cache_clear()
    app = App()
    config = Config(app, http=connections.PROTOCOL, timeout_keep_alive=5, log_level="error")
    config.load()
    state = ServerState()
    protocols: list[Watched] = []

    def factory() -> Watched:
        protocol = Watched(config=config, server_state=state, app_state={})
        protocols.append(protocol)
        return protocol

    loop = asyncio.get_running_loop()
    listener = await loop.create_server(factory, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    running = Running(port, app, protocols)
    try:
        yield running
    finally:
        for writer in running.writers:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in running.writers), return_exceptions=True)
        listener.close()
        for protocol in protocols:
            protocol.transport.close()
        await listener.wait_closed()
        await asyncio.sleep(0)  # the transports' connection_lost callbacks run
        connections.header_timeout.cache_clear()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout=TIMEOUT * 10)


def timed_out(answer: bytes) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"content-type: application/problem+json" in head
    assert b"connection: close" in head
    problem: dict[str, Any] = json.loads(body)
    return problem


async def test_a_silent_connection_gets_408_and_is_closed(server: Running) -> None:
    reader, _ = await server.connect()
    started = time.monotonic()

    answer = await until_closed(reader)

    assert time.monotonic() - started >= TIMEOUT * 0.9
    assert timed_out(answer) == {
        "type": "about:blank",
        "title": "Request Timeout",
        "status": 408,
        "detail": f"The request headers were not complete within {TIMEOUT:g} s.",
    }


async def test_trickled_header_bytes_do_not_extend_the_deadline(server: Running) -> None:
    reader, writer = await server.connect()
    started = time.monotonic()
    writer.write(b"GET /x HTTP/1.1\r\n")

    async def trickle() -> None:
        while True:  # one header line per step, forever: only the deadline ends it
            writer.write(b"x-slow: 1\r\n")
            await asyncio.sleep(STEP)

    trickler = asyncio.create_task(trickle())
    try:
        answer = await until_closed(reader)
    finally:
        trickler.cancel()
    assert time.monotonic() - started < TIMEOUT * 4
    timed_out(answer)


async def test_a_complete_head_is_never_cut_even_with_a_slow_body(server: Running) -> None:
    reader, writer = await server.connect()
    writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\nconnection: close\r\n\r\n")
    for byte in b"body":  # the body takes twice the header timeout
        await asyncio.sleep(TIMEOUT / 2)
        writer.write(bytes([byte]))

    answer = await until_closed(reader)

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nbody")


async def test_the_next_request_on_a_kept_alive_connection_is_bounded_too(
    server: Running,
) -> None:
    reader, writer = await server.connect()
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    await reader.readexactly(2)  # "ok"
    # The first request's deadline was disarmed; the second's is armed by its first byte
    # (the keep-alive timeout, 5 s here, bounds the idle time before that byte).
    writer.write(b"GET /x HTTP/1.1\r\n")

    timed_out(await until_closed(reader))


async def test_a_pipelined_head_behind_a_slow_response_ends_the_connection_after_it(
    server: Running,
) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET /wait HTTP/1.1\r\nhost: t\r\n\r\n")
    await server.app.started.wait()
    writer.write(b"GET /x HTTP/1.1\r\n")  # the next head starts, and never ends
    [protocol] = server.protocols
    await protocol.timed_out.wait()
    server.app.release.set()

    answer = await until_closed(reader)

    # The slow response is sent whole, marked as the connection's last; no 408 cuts into it.
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in answer
    assert b"408" not in answer
