"""CoalescingTransport: a response leaves in one write to the socket, bytes and order unchanged.

Through `eventapi serve`'s protocol on a real loopback socket, with the socket transport's
writes counted; and the transport's own edges (close, abort, a peer gone) on a real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from eventapi.http import connections
from eventapi.http.coalesce import CoalescingTransport
from eventapi.http.connections import HeaderTimeoutProtocol

Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
BODY = b'{"id":"x"}'


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await receive()
    status = 304 if scope["path"] == "/304" else 200
    headers = [(b"content-length", str(len(BODY)).encode())] if status == 200 else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": BODY if status == 200 else b""})


@dataclass
class Counted:
    """The socket transport's writes, as the kernel is asked to send them."""

    writes: list[bytes] = field(default_factory=list)


class CountingProtocol(HeaderTimeoutProtocol):
    counted: Counted

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        real_write = transport.write
        counted = self.counted

        def write(data: Any) -> None:
            counted.writes.append(bytes(data))
            real_write(data)

        transport.write = write  # type: ignore[method-assign]
        super().connection_made(transport)


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, Counted]]:
    connections.header_timeout.cache_clear()
    config = Config(app, http=connections.PROTOCOL, log_level="error")
    config.load()
    state = ServerState()
    counted = Counted()
    protocols: list[CountingProtocol] = []

    def factory() -> CountingProtocol:
        protocol = CountingProtocol(config=config, server_state=state, app_state={})
        protocol.counted = counted
        protocols.append(protocol)
        return protocol

    listener = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1], counted
    finally:
        listener.close()
        for protocol in protocols:
            protocol.transport.close()
        await listener.wait_closed()
        await asyncio.sleep(0)
        connections.header_timeout.cache_clear()


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_response_is_one_write_with_its_head_and_body(served: tuple[int, Counted]) -> None:
    port, counted = served
    answer = await exchange(port, b"GET /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n" + BODY)
    assert counted.writes == [answer]


async def test_pipelined_responses_keep_their_order(served: tuple[int, Counted]) -> None:
    port, counted = served
    one = b"GET /a HTTP/1.1\r\nhost: t\r\n\r\n"
    last = b"GET /304 HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    answer = await exchange(port, one + one + last)

    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answer.index(b"HTTP/1.1 304 Not Modified\r\n") > answer.rindex(BODY)
    assert b"".join(counted.writes) == answer


async def test_a_head_response_without_body_writes_is_still_sent(
    served: tuple[int, Counted],
) -> None:
    port, counted = served
    answer = await exchange(port, b"HEAD /x HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\n")
    assert counted.writes == [answer]


@pytest.fixture
async def pair() -> AsyncIterator[tuple[asyncio.Transport, asyncio.StreamReader]]:
    """A real transport (the server's side of a loopback connection) and the peer's reader."""
    accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()

    class Keep(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            accepted.put_nowait(transport)

    listener = await asyncio.get_running_loop().create_server(Keep, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", listener.sockets[0].getsockname()[1]
    )
    transport = await accepted.get()
    try:
        yield transport, reader
    finally:
        transport.abort()
        writer.close()
        await writer.wait_closed()
        listener.close()
        await listener.wait_closed()


async def test_close_sends_what_was_kept_first(
    pair: tuple[asyncio.Transport, asyncio.StreamReader],
) -> None:
    inner, reader = pair
    coalesced = CoalescingTransport(inner, asyncio.get_running_loop())
    coalesced.writelines([b"a", bytearray(b"b"), memoryview(b"c")])
    coalesced.write(b"")
    assert coalesced.get_write_buffer_size() == 3

    coalesced.close()

    assert await asyncio.wait_for(reader.read(), timeout=5) == b"abc"
    assert coalesced.is_closing()


async def test_abort_drops_what_was_kept(
    pair: tuple[asyncio.Transport, asyncio.StreamReader],
) -> None:
    inner, reader = pair
    coalesced = CoalescingTransport(inner, asyncio.get_running_loop())
    coalesced.write(b"never")

    coalesced.abort()
    await asyncio.sleep(0)  # the turn ends: nothing left to send

    try:
        received = await asyncio.wait_for(reader.read(), timeout=5)
    except ConnectionResetError:
        received = b""
    assert received == b""


async def test_what_is_kept_for_a_closed_connection_is_dropped(
    pair: tuple[asyncio.Transport, asyncio.StreamReader],
) -> None:
    inner, _ = pair
    coalesced = CoalescingTransport(inner, asyncio.get_running_loop())
    coalesced.write(b"late")
    inner.close()  # closed under it (the peer went away), before the turn ends

    await asyncio.sleep(0)

    assert coalesced.get_write_buffer_size() == 0


async def test_the_rest_is_the_socket_transport_s(
    pair: tuple[asyncio.Transport, asyncio.StreamReader],
) -> None:
    inner, reader = pair
    coalesced = CoalescingTransport(inner, asyncio.get_running_loop())
    assert coalesced.get_extra_info("peername") == inner.get_extra_info("peername")
    assert coalesced.get_protocol() is inner.get_protocol()
    coalesced.set_protocol(inner.get_protocol())
    coalesced.pause_reading()
    assert not coalesced.is_reading()
    coalesced.resume_reading()
    assert coalesced.is_reading()
    coalesced.set_write_buffer_limits(high=4096)
    assert coalesced.get_write_buffer_limits()[1] == 4096
    assert coalesced.can_write_eof()
    coalesced.write(b"half")
    coalesced.write_eof()
    assert await asyncio.wait_for(reader.read(), timeout=5) == b"half"
