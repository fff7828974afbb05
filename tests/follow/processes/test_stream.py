"""The live change stream through real `eventapi serve` processes sharing one SQLite file
and one Redis: a change made through one process reaches a stream on the other; a dropped
connection resumes from Last-Event-ID with no gap; heartbeats keep a quiet stream alive past
the connection time-outs; SIGTERM ends every stream at once with a retry hint; a reader that
stops reading is dropped, not buffered for; the per-client and per-process caps; reads
that need a key need one for the stream too; and streams behind the window take turns at
the store, each still getting every change."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.api import EVENTS, item
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import EVENTAPI, Server, run, serve
from tests.support.settings import server_env
from tests.support.sse import stream

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

STREAM = "/api/changes/stream"
KEY = "stream-test-key-0123456789abcdef"


@contextmanager
def servers(
    tmp_path: Path, redis: RedisServer, count: int = 2, **settings: Any
) -> Iterator[list[Server]]:
    env = server_env(tmp_path / "app.db", redis.url, **settings)
    with ExitStack() as stack:
        started = [stack.enter_context(serve(tmp_path, f"s{n}", env)) for n in range(count)]
        for server in started:
            server.wait_ready()
        yield started


def client(server: Server, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=15.0, **kwargs)


async def test_a_change_through_one_process_reaches_a_stream_on_the_other(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with servers(tmp_path, redis_server) as (a, b):
        async with client(a) as on_a, client(b) as on_b, stream(on_a) as live:
            made = (
                await on_b.post(EVENTS, json={"title": "x", "date": "2026-01-01T10:00:00"})
            ).json()
            await on_b.patch(item(made["id"]), json={"title": "y"})
            await on_b.delete(item(made["id"]))

            events = await live.events(3)

    assert [(e.json()["id"], e.json()["kind"]) for e in events] == [
        (made["id"], "created"),
        (made["id"], "updated"),
        (made["id"], "deleted"),
    ]
    assert [e.id for e in events] == [e.json()["cursor"] for e in events]
    assert live.retries == [2000]


async def test_a_dropped_stream_resumes_from_last_event_id_with_no_gap(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with servers(tmp_path, redis_server) as (a, b):
        async with client(a) as on_a, client(b) as on_b:
            titles = [f"e{n}" for n in range(8)]
            async with stream(on_a) as first:
                for title in titles[:3]:
                    await on_b.post(EVENTS, json={"title": title, "date": "2026-01-01T10:00:00"})
                seen = await first.events(3)
            # The connection is gone; changes go on meanwhile, through both processes.
            for n, title in enumerate(titles[3:]):
                api = on_a if n % 2 else on_b
                await api.post(EVENTS, json={"title": title, "date": "2026-01-01T10:00:00"})
            async with stream(on_b, headers={"Last-Event-ID": seen[-1].id or ""}) as resumed:
                rest = await resumed.events(5)
                # And nothing more: no change is repeated.
                with pytest.raises(TimeoutError):
                    await resumed.next(within=1.0)
            # ?after= resumes the same way (for clients that cannot set the header).
            async with stream(on_a, params={"after": seen[0].id}) as by_query:
                again = await by_query.events(7)

    assert [e.json()["event"]["title"] for e in seen + rest] == titles
    assert [e.json()["event"]["title"] for e in again] == titles[1:]
    # A client that goes away is no error of the server's.
    assert "Traceback" not in a.output() + b.output()


async def test_a_quiet_stream_gets_heartbeats_and_outlives_the_connection_time_outs(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with servers(
        tmp_path,
        redis_server,
        1,
        stream_heartbeat=0.5,
        header_timeout=1,
        keepalive_timeout=1,
        body_timeout=1,
    ) as (a,):
        async with client(a) as on_a, stream(on_a) as live:
            quiet = time.monotonic()
            with pytest.raises(TimeoutError):
                await live.next(within=3.0)  # 3 s of nothing: past every time-out above
            assert len(live.comments) >= 4, live.comments
            assert not live.ended
            await on_a.post(EVENTS, json={"title": "late", "date": "2026-01-01T10:00:00"})
            late = await live.next()

    assert late is not None
    assert late.json()["event"]["title"] == "late"
    assert time.monotonic() - quiet >= 3.0


async def test_sigterm_ends_every_stream_at_once_with_a_retry_hint(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with servers(tmp_path, redis_server, 1, shutdown_timeout=30) as (a,):
        async with client(a) as on_a:
            async with stream(on_a) as one, stream(on_a) as two:
                sent = time.monotonic()
                a.proc.send_signal(signal.SIGTERM)
                ends = [await one.next(within=10.0), await two.next(within=10.0)]
                took = time.monotonic() - sent
            code = a.proc.wait(timeout=10.0)

    assert ends == [None, None]  # each stream ended
    assert one.retries[-1] == 1000
    assert two.retries[-1] == 1000
    assert took < 10.0  # at once, not after the 30 s graceful shutdown time-out
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert "timeout graceful shutdown exceeded" not in a.output()


async def test_a_reader_that_stops_reading_is_dropped_and_others_go_on(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with servers(tmp_path, redis_server, 1, stream_send_timeout=1.0, streams_per_client=2) as (a,):
        host, port = urlsplit(a.url).hostname, urlsplit(a.url).port
        slow = socket.create_connection((host, port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(b"GET /api/changes/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            async with client(a) as on_a, stream(on_a) as live:
                big = "\U0001f3b7" * 5000  # 20 kB of UTF-8 a change
                for n in range(400):  # ~8 MB of changes: more than any socket buffers hold
                    body = {"title": f"e{n}", "date": "2026-01-01T10:00:00", "description": big}
                    assert (await on_a.post(EVENTS, json=body)).status_code == 201
                    if n % 50 == 0:
                        await asyncio.sleep(0.2)  # let the stream write and block
                got = await live.events(400, within=20.0)
                assert [e.json()["event"]["title"] for e in got] == [f"e{n}" for n in range(400)]

                # The slow one was dropped: its slot is free again (per client: 2).
                async def status() -> int:
                    async with on_a.stream("GET", STREAM) as response:
                        return response.status_code

                await eventually(status, "the slow reader's slot back", until=lambda c: c == 200)
            slow.setblocking(False)
            assert _closed(slow)
        finally:
            slow.close()


def _closed(sock: socket.socket, within: float = 10.0) -> bool:
    """Whether the server closed (or reset) ``sock``: reads until EOF or an error."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except BlockingIOError:
            time.sleep(0.05)
        except ConnectionError:
            return True
    return False


async def test_streams_are_capped_per_client_and_per_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with servers(
        tmp_path,
        redis_server,
        1,
        streams_per_client=2,
        streams_per_process=3,
        api_keys=f"{KEY},{KEY}2,{KEY}3",
    ) as (a,):
        async with client(a) as on_a:
            async with stream(on_a), stream(on_a):
                over = await on_a.get(STREAM)
                async with stream(on_a, headers={"X-API-Key": KEY + "2"}):
                    busy = await on_a.get(STREAM, headers={"X-API-Key": KEY + "3"})

            # Slots come back when streams end (once the server sees the connection close).
            async def status() -> int:
                async with on_a.stream("GET", STREAM) as response:
                    return response.status_code

            await eventually(status, "a slot given back", until=lambda code: code == 200)

    assert over.status_code == 429
    assert over.headers["content-type"] == "application/problem+json"
    assert over.headers["retry-after"]
    assert busy.status_code == 503
    assert busy.json()["type"].endswith("/streams-busy")


async def test_a_stream_follows_the_read_rules(tmp_path: Path, redis_server: RedisServer) -> None:
    with servers(tmp_path, redis_server, 1, api_keys=KEY, public_reads=False) as (a,):
        async with client(a) as on_a:
            refused = await on_a.get(STREAM)
            async with stream(on_a, headers={"X-API-Key": KEY}) as live:
                await on_a.post(
                    EVENTS,
                    json={"title": "private", "date": "2026-01-01T10:00:00"},
                    headers={"X-API-Key": KEY},
                )
                event = await live.next()

    assert refused.status_code == 401
    assert event is not None
    assert event.json()["event"]["title"] == "private"


async def test_what_import_and_seed_write_reaches_the_stream(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """The commands write to the database outside any server: every event they create or
    delete is a change the streams and the feed give (one record per event)."""
    env = server_env(tmp_path / "app.db", redis_server.url)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            f'{{"title": "imported {n}", "date": "2026-02-0{n + 1}T10:00:00"}}\n' for n in range(3)
        )
    )
    with serve(tmp_path, "s", env) as a:
        a.wait_ready()
        async with client(a) as on_a, stream(on_a) as live:
            imported = run([EVENTAPI, "import", str(rows)], env, tmp_path)
            assert imported.returncode == 0, imported.stderr
            created = await live.events(3)
            cleared = run([EVENTAPI, "seed", "--clear"], env, tmp_path)
            assert cleared.returncode == 0, cleared.stderr
            deleted = await live.events(3)

    assert sorted(e.json()["event"]["title"] for e in created) == [
        f"imported {n}" for n in range(3)
    ]
    assert {e.json()["kind"] for e in created} == {"created"}
    assert sorted(e.json()["id"] for e in deleted) == sorted(e.json()["id"] for e in created)
    assert {(e.json()["kind"], e.json()["event"] is None) for e in deleted} == {("deleted", True)}


async def test_streams_catching_up_at_once_take_turns_and_each_gets_every_change(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Changes imported before the servers started are behind their windows: five streams
    from the first one read the store in turns (one at a time here), and each gets every
    change once, in order, then a change made through the other process."""
    imported = 1200  # a few catch-up pages each
    env = server_env(tmp_path / "app.db", redis_server.url, list_queries_per_process=1)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(
            f'{{"title": "imported {n}", "date": "2026-02-01T10:00:00"}}\n' for n in range(imported)
        )
    )
    done = run([EVENTAPI, "import", str(rows)], env, tmp_path)
    assert done.returncode == 0, done.stderr
    with ExitStack() as stack:
        a, b = (stack.enter_context(serve(tmp_path, name, env)) for name in "ab")
        a.wait_ready()
        b.wait_ready()
        async with client(a) as on_a, client(b) as on_b, contextlib.AsyncExitStack() as streams:
            first = (await on_a.get("/api/changes", params={"limit": 1})).json()["next"]
            lives = [
                await streams.enter_async_context(stream(on_a, params={"after": first}))
                for _ in range(5)
            ]
            made = (
                await on_b.post(EVENTS, json={"title": "new", "date": "2026-03-01T10:00:00"})
            ).json()
            got = [await live.events(imported) for live in lives]

    for events in got:
        seqs = [int((e.id or "").split(".")[0], 16) for e in events]
        assert seqs == sorted(set(seqs))  # in order, none twice
        assert len({e.json()["id"] for e in events}) == imported
        assert events[-1].json()["id"] == made["id"]
    assert "Traceback" not in a.output() + b.output()
