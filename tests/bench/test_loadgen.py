"""The bundled load generator against the floor app, served by uvicorn in a subprocess."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from bench import floor, server
from bench.http1 import Request, read_response
from bench.loadgen import LoadGenerator, run_load
from bench.pinning import Pinning
from bench.stats import percentile

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)


@pytest.fixture(scope="module")
def floor_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    workdir = tmp_path_factory.mktemp("floor")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTAPI_")}
    with server.uvicorn(server.FLOOR, env, workdir, Pinning.plan(enabled=False)) as port:
        yield port


def test_duration_run_counts_and_latencies_are_sane(floor_port: int) -> None:
    result = run_load(LoadGenerator(floor_port, lambda: "/x", connections=4, duration=0.3))
    assert result.errors == 0
    assert result.requests > 100
    assert result.statuses == {200: result.requests}
    assert 0.3 <= result.elapsed < 2.0
    assert result.rps == pytest.approx(result.requests / result.elapsed)
    assert 0 < result.p50 <= result.p99 <= result.p999 < 1000


def test_request_count_run_sends_exactly_that_many(floor_port: int) -> None:
    seen: list[tuple[int, bytes]] = []

    def record(req: Request, status: int, head: bytes, body: bytes, t0: int, t1: int) -> None:
        assert t1 > t0
        assert head.startswith(b"HTTP/1.1 200")
        seen.append((status, body))

    gen = LoadGenerator(
        floor_port, lambda: "/api/events/x", connections=8, requests=100, on_response=record
    )
    result = run_load(gen)
    assert result.requests == 100
    assert result.connections == 8
    assert seen == [(200, floor.BODY)] * 100


def test_requests_with_a_body_keep_the_connection_usable(floor_port: int) -> None:
    def patch() -> Request:
        return Request("PATCH", "/api/events/x", b'{"title": "t"}')

    result = run_load(LoadGenerator(floor_port, patch, connections=2, requests=20))
    assert (result.requests, result.errors, result.non_2xx) == (20, 0, 0)


def test_nothing_listening_is_counted_as_errors() -> None:
    port = server.free_port()
    result = run_load(LoadGenerator(port, lambda: "/", connections=3, requests=3))
    assert (result.requests, result.errors) == (0, 3)


async def test_response_framing() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"4\r\nWiki\r\n5;x=1\r\npedia\r\n0\r\n\r\n")
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    assert await read_response(head, reader) == (200, b"Wikipedia", True)
    reader.feed_data(b"hello")
    head = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n"
    assert await read_response(head, reader) == (404, b"hello", False)
    assert await read_response(b"HTTP/1.1 304 Not Modified\r\n\r\n", reader) == (304, b"", False)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 0.5) == 500
    assert percentile(values, 0.99) == 990
    assert percentile(values, 0.999) == 999
    assert percentile([], 0.5) == 0.0
    assert percentile([7.0], 0.999) == 7.0


def test_floor_body_is_a_cached_event_get() -> None:
    assert floor.BODY.startswith(b'{"id":"68ed254e36d0233aa05afbe9","title":"Music Festival"')


def test_a_fixed_rate_sends_on_schedule_and_charges_queueing_to_latency() -> None:
    # A server that takes HOLD per request on its one connection: half the offered rate.
    hold, rate, seconds = 0.02, 100.0, 0.5

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(hold)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the generator is done and hung up
        finally:
            writer.close()

    async def main() -> tuple[float, int]:
        listener = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        async with listener:
            gen = LoadGenerator(port, lambda: "/x", connections=1, duration=seconds, rate=rate)
            result = await gen.run()
        return max(gen.latencies) / 1e9, result.requests

    slowest, sent = asyncio.run(main())

    assert sent == rate * seconds  # every request due before the deadline, none more
    # Closed loop each would take HOLD; open loop the last waits for the 49 before it.
    assert slowest > (sent * hold - seconds) * 0.8


def test_a_fixed_rate_needs_a_duration() -> None:
    with pytest.raises(ValueError, match="fixed rate"):
        LoadGenerator(1, lambda: "/x", requests=10, rate=100.0)
