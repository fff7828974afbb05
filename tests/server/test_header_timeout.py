"""HeaderTimeoutProtocol in-process, on a real socket: a request head that is not complete in
time gets a 408 and the connection closes; a complete head is never cut. The same, with 700
connections against a real `eventapi serve`, is in tests/server/test_connections.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
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
BODY_TIMEOUT = 1.0  # longer than the slow body below takes, and than TIMEOUT
MAX_CONNECTIONS = 4
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


def clear_settings() -> None:
    connections.header_timeout.cache_clear()
    connections.body_timeout.cache_clear()
    connections.max_connections.cache_clear()


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    monkeypatch.setenv("EVENTAPI_HEADER_TIMEOUT", str(TIMEOUT))
    monkeypatch.setenv("EVENTAPI_BODY_TIMEOUT", str(BODY_TIMEOUT))
    monkeypatch.setenv("EVENTAPI_MAX_CONNECTIONS", str(MAX_CONNECTIONS))
    clear_settings()
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
        clear_settings()


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


def refused(answer: bytes, status: bytes) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"content-type: application/problem+json" in head
    assert b"connection: close" in head
    problem: dict[str, Any] = json.loads(body)
    return problem


async def test_a_body_that_never_comes_gets_408_and_the_connection_closes(
    server: Running,
) -> None:
    reader, writer = await server.connect()
    writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 4\r\n\r\nbo")
    started = time.monotonic()

    answer = await asyncio.wait_for(reader.read(), BODY_TIMEOUT * 10)

    assert time.monotonic() - started >= BODY_TIMEOUT * 0.9
    problem = refused(answer, b"408 Request Timeout")
    assert problem["detail"] == f"The request body was not complete within {BODY_TIMEOUT:g} s."


async def test_a_head_over_the_cap_is_431_before_it_is_parsed(server: Running) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\nx-big: ")
    piece = b"a" * 4096
    with contextlib.suppress(ConnectionError):  # the server may close while we still send
        for _ in range(connections.MAX_HEAD_BYTES // len(piece) + 2):
            writer.write(piece)
            await writer.drain()

    answer = await asyncio.wait_for(reader.read(), TIMEOUT * 10)

    problem = refused(answer, b"431 Request Header Fields Too Large")
    assert problem["status"] == 431
    assert not server.app.started.is_set()


async def test_a_large_head_under_the_cap_is_served(server: Running) -> None:
    reader, writer = await server.connect()
    big = b"a" * (connections.MAX_HEAD_BYTES - 1024)
    writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\nx-big: " + big + b"\r\nconnection: close\r\n\r\n")

    answer = await until_closed(reader)

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer[:200]


async def test_past_the_connection_cap_a_new_connection_gets_503_at_once(
    server: Running,
) -> None:
    held = [await server.connect() for _ in range(MAX_CONNECTIONS)]
    for reader, writer in held[:1]:  # the held ones are served (one checked)
        writer.write(REQUEST)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
        await reader.readexactly(2)
    reader, _ = await server.connect()

    answer = await asyncio.wait_for(reader.read(), TIMEOUT * 10)

    problem = refused(answer, b"503 Service Unavailable")
    assert str(MAX_CONNECTIONS) in problem["detail"]
    # One held connection closes: there is room again.
    held[-1][1].close()
    await held[-1][1].wait_closed()
    for _ in range(100):  # until the server has seen it close (bounded)
        if connections._Open.count < MAX_CONNECTIONS:
            break
        await asyncio.sleep(0.01)
    reader, writer = await server.connect()
    writer.write(b"GET /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    assert (await until_closed(reader)).startswith(b"HTTP/1.1 200 OK")


def test_the_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        limit = connections.raise_file_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
        assert limit == (None if hard == resource.RLIM_INFINITY else hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_a_blank_line_after_a_response_does_not_hold_the_connection(
    server: Running,
) -> None:
    """The parser skips CR LF between requests without beginning one; the bytes still stop
    uvicorn's keep-alive timer, so the header deadline must bound them."""
    reader, writer = await server.connect()
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    await reader.readexactly(2)
    writer.write(b"\r\n")
    started = time.monotonic()

    timed_out(await until_closed(reader))
    assert time.monotonic() - started < TIMEOUT * 10
