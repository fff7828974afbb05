"""Idle and slow-header connections are bounded in a real `eventapi serve` (--workers 2),
and so is their number (EVENTAPI_MAX_CONNECTIONS).

500 connections that send nothing and 200 that trickle a header line now and then (a
slowloris) are all answered 408 and closed within EVENTAPI_HEADER_TIMEOUT (plus scheduling
slack), however many bytes keep coming; meanwhile ordinary requests are served. A kept-alive
connection that stays idle after its response is closed after EVENTAPI_KEEPALIVE_TIMEOUT,
without a 408. Before http/connections.py none of the 700 was closed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import RedisServer
from tests.support.server import Server, cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

HEADER_TIMEOUT = 2.0
KEEPALIVE_TIMEOUT = 1
SLACK = 5.0  # seconds past the timeout a closed connection may take to be seen on 2 cores
IDLE, SLOW = 500, 200
TRICKLE_EVERY = HEADER_TIMEOUT / 4


def host_port(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


async def idle(server: Server, opened: asyncio.Barrier) -> tuple[bytes, float]:
    """A connection that sends nothing: what it got before EOF, and when EOF came."""
    reader, writer = await asyncio.open_connection(*host_port(server))
    try:
        await opened.wait()
        answer = await reader.read()
        return answer, time.monotonic()
    finally:
        writer.close()


async def slow_header(server: Server, opened: asyncio.Barrier) -> tuple[bytes, float]:
    """A connection that sends a request line, then a header line now and then, forever."""
    reader, writer = await asyncio.open_connection(*host_port(server))

    async def trickle() -> None:
        writer.write(b"GET /health HTTP/1.1\r\nhost: slow\r\n")
        while not writer.is_closing():
            await asyncio.sleep(TRICKLE_EVERY)
            writer.write(b"x-still-coming: 1\r\n")

    trickler = asyncio.create_task(trickle())
    try:
        await opened.wait()
        answer = await reader.read()
        return answer, time.monotonic()
    finally:
        trickler.cancel()
        writer.close()


async def kept_alive(server: Server) -> tuple[bytes, float, float]:
    """One whole request, then silence: the response, when it ended, and when EOF came."""
    reader, writer = await asyncio.open_connection(*host_port(server))
    try:
        writer.write(b"GET /health HTTP/1.1\r\nhost: kept\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        answered = time.monotonic()
        rest = await reader.read()
        return head + body + rest, answered, time.monotonic()
    finally:
        writer.close()


async def test_idle_and_slow_header_connections_are_closed_in_time(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = server_env(
        tmp_path / "app.db",
        redis_server.url,
        header_timeout=HEADER_TIMEOUT,
        keepalive_timeout=KEEPALIVE_TIMEOUT,
    )
    with cluster(tmp_path, env, names=["A"], workers=2) as [server]:
        opened = asyncio.Barrier(IDLE + SLOW + 1)
        idlers = [asyncio.create_task(idle(server, opened)) for _ in range(IDLE)]
        slowlorises = [asyncio.create_task(slow_header(server, opened)) for _ in range(SLOW)]
        await asyncio.wait_for(opened.wait(), timeout=30)
        started = time.monotonic()  # every connection is open by now

        # The server keeps serving while they hang on.
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            assert (await http.get("/api/events")).status_code == 200
        answer, answered, closed = await kept_alive(server)

        done = await asyncio.wait_for(
            asyncio.gather(*idlers, *slowlorises), timeout=HEADER_TIMEOUT + SLACK
        )

    for got, at in done:
        assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), got
        assert b"application/problem+json" in got
        assert at - started <= HEADER_TIMEOUT + SLACK
    latest = max(at for _, at in done)
    # The trickling ones were cut by the deadline, not by running out of bytes to send.
    assert latest - started < HEADER_TIMEOUT + SLACK

    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"408" not in answer  # closed after the response, silently, by keep-alive
    assert KEEPALIVE_TIMEOUT * 0.9 <= closed - answered <= KEEPALIVE_TIMEOUT + SLACK


CAP = 300
HELD_TIMEOUT = 4.0  # header and body time-outs of the held connections
QUICK = 2.0  # a refused connection's 503 arrives well before any time-out could close it
EXTRA = 50


def open_files(server: Server) -> int:
    return len(list(Path(f"/proc/{server.proc.pid}/fd").iterdir()))


async def no_body(server: Server, opened: asyncio.Barrier) -> tuple[bytes, float]:
    """A complete head that declares a body, and then never the body."""
    reader, writer = await asyncio.open_connection(*host_port(server))
    try:
        writer.write(b"POST /api/events HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n")
        await opened.wait()
        answer = await reader.read()
        return answer, time.monotonic()
    finally:
        writer.close()


async def refused(server: Server) -> tuple[bytes, float]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(*host_port(server))
    try:
        answer = await asyncio.wait_for(reader.read(), HELD_TIMEOUT * 2)
        return answer, time.monotonic() - started
    finally:
        writer.close()


async def test_past_the_connection_cap_new_connections_get_a_quick_503(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """A process holding EVENTAPI_MAX_CONNECTIONS connections (idle ones, and ones whose
    declared body never comes) answers each new one 503 at once; its open files stay under
    the cap; the held ones are closed by their time-outs (408), and then it serves again."""
    env = server_env(
        tmp_path / "app.db",
        redis_server.url,
        header_timeout=HELD_TIMEOUT,
        body_timeout=HELD_TIMEOUT,
        max_connections=CAP,
    )
    with cluster(tmp_path, env, names=["A"]) as [server]:
        baseline = open_files(server)
        opened = asyncio.Barrier(CAP + 1)
        half = CAP // 2
        held = [asyncio.create_task(idle(server, opened)) for _ in range(half)]
        held += [asyncio.create_task(no_body(server, opened)) for _ in range(CAP - half)]
        await asyncio.wait_for(opened.wait(), timeout=30)
        started = time.monotonic()

        extra = await asyncio.gather(*(refused(server) for _ in range(EXTRA)))
        files = open_files(server)
        done = await asyncio.wait_for(asyncio.gather(*held), timeout=HELD_TIMEOUT + SLACK)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            probes = [(await http.get("/api/events")).status_code for _ in range(5)]

    for answer, seconds in extra:
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:100]
        assert seconds < QUICK, seconds
    assert files <= baseline + CAP, (baseline, files)  # the refused ones were closed at once
    bodies = [got for got, _ in done[half:]]
    assert all(b"request body was not complete" in got for got in bodies), bodies[:1]
    for got, at in done:
        assert got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), got[:100]
        assert at - started <= HELD_TIMEOUT + SLACK
    assert probes == [200] * 5
