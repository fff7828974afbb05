"""The fence and the gate (cache/guard.py): a write whose invalidation failed is never
acknowledged while another process can still serve what it replaced.

Two `eventapi serve` processes on one SQLite file and one redis-server: A reaches Redis
through a link (a TCP proxy, tests/cache/processes/slow_link.py) that the test freezes, B
directly. With the link frozen, A's breaker opens and its writes cannot invalidate; B, still
connected, keeps serving from Redis. Without the fence A acknowledged such a write at once,
and B served the replaced value until its relay's next pass (up to 0.25 s): the window the
bench's concurrent-writers row hit on a loaded machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import orjson
import pytest

from eventapi.cache.guard import fence_for
from tests.cache.processes.history import Read
from tests.cache.processes.load import Recorder, seed, version_of
from tests.cache.processes.slow_link import link_process
from tests.support.cluster import Api, clients
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import Server, serve
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

RELAY_INTERVAL = 0.25
FENCE = fence_for(RELAY_INTERVAL)
ROUNDS = 6
STORE_TIMEOUT = 2.0  # the default: with the fence, the bound on a write's answer


@contextmanager
def frozen(pid: int, group: bool = False) -> Iterator[None]:
    """SIGSTOP the process (or its process group) until the block ends."""
    send = os.killpg if group else os.kill
    send(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        send(pid, signal.SIGCONT)


@asynccontextmanager
async def two_processes(
    tmp_path: Path, redis: RedisServer
) -> AsyncIterator[tuple[list[Server], list[Api], subprocess.Popen[bytes]]]:
    """A through the link, B direct; yields the servers, their clients and the link."""
    db = tmp_path / "app.db"
    settings = {
        "cache_relay_interval": RELAY_INTERVAL,
        "store_timeout": STORE_TIMEOUT,
        "cache_breaker_reset": 30.0,  # A's breaker stays open for the whole test
    }
    with ExitStack() as stack:
        url, link = stack.enter_context(link_process(redis.port))
        a = stack.enter_context(serve(tmp_path, "A", server_env(db, url, **settings)))
        a.wait_ready()
        b = stack.enter_context(serve(tmp_path, "B", server_env(db, redis.url, **settings)))
        b.wait_ready()
        async with clients([a, b]) as apis:
            yield [a, b], apis, link


async def hit(recorder: Recorder, api: Api, event: str, version: int) -> None:
    """Read through ``api`` until it serves ``version`` from the cache (bounded)."""

    async def served() -> bool:
        read = await recorder.read_item(api, event)
        return read.cache == "HIT" and read.version == version

    await eventually(served, f"{api.name} serving v{version} from the cache", within=10.0)


async def open_breaker(recorder: Recorder, api: Api, event: str) -> None:
    """Reads through ``api`` until its breaker is open (its Redis calls time out)."""

    async def disconnected() -> bool:
        await recorder.read_item(api, event)
        health = await api.http.get("/health")
        return bool(health.json()["redis"] == "disconnected")

    await eventually(disconnected, f"{api.name}'s breaker open", within=10.0)


async def test_a_write_whose_invalidation_failed_is_acknowledged_only_past_the_fence(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with two_processes(tmp_path, redis_server) as (_, (a, b), link):
        recorder = Recorder()
        (event,) = await seed(recorder, [a], 1)
        await hit(recorder, b, event, 0)
        with frozen(link.pid):
            await open_breaker(recorder, a, event)
            right_after: list[Read] = []
            for version in range(1, ROUNDS + 1):
                write = await recorder.write(a, event, version)
                assert write.status == 200, write
                # Sent the moment A answered: B's relay has had no pass since, unless the
                # fence made A wait for it.
                right_after.append(await recorder.read_item(b, event))
                await hit(recorder, b, event, version)
    report = recorder.report()
    summary = recorder.summary()
    print(summary)
    for read in right_after:
        print(f"B right after the write: v{read.version} ({read.cache})")
    assert not report.stale, summary
    assert [r.version for r in right_after] == list(range(1, ROUNDS + 1)), summary
    slowest = max(w.seconds for w in report.writes if w.version > 0)
    assert slowest < FENCE + STORE_TIMEOUT, f"a write took {slowest:.2f} s\n{summary}"


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15.0)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, body


async def test_a_process_whose_relay_fell_behind_reads_the_store_until_it_catches_up(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The gate. B is frozen (SIGSTOP) across a write through A whose invalidation failed:
    B's relay applied nothing meanwhile. A request already waiting in B's socket when B
    is thawed is handled before B's overdue relay pass runs (the event loop serves I/O
    before timers), so only the gate keeps B from answering it from Redis."""
    async with two_processes(tmp_path, redis_server) as ((_, b_server), (a, b), link):
        recorder = Recorder()
        (event,) = await seed(recorder, [a], 1)
        await hit(recorder, b, event, 0)
        port = int(b_server.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            with frozen(link.pid):
                await open_breaker(recorder, a, event)
                with frozen(b_server.proc.pid, group=True):
                    write = await recorder.write(a, event, 1)
                    assert write.status == 200, write
                    sent = time.monotonic()
                    writer.write(f"GET /api/events/{event} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
                    await writer.drain()  # in B's socket before B runs again
                status, headers, body = await answer(reader)
        finally:
            writer.close()
        seen = version_of(orjson.loads(body).get("title")) if status == 200 else None
        print(f"B, thawed: {status} v{seen} X-Cache {headers.get('x-cache')}")
        assert (status, seen) == (200, 1), (status, body, sent)
        assert headers["x-cache"] == "BYPASS", headers
        await hit(recorder, b, event, 1)  # and once its relay has caught up, from the cache
    assert not recorder.report().stale, recorder.summary()
