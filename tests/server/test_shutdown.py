"""SIGTERM drains `eventapi serve --workers 2`: the requests in flight finish, then every
process exits 0.

The requests are held in flight deterministically: the SQLite write lock is taken from
outside, so each POST waits in its worker for it (the store timeout is long). The test
waits until the kernel shows every request read by the server (no bytes left in the
server-side sockets' receive queues), sends SIGTERM, waits until both workers have logged
that they are shutting down, and only then releases the lock.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.store.test_locked_database import write_lock
from tests.support.api import EVENTS, event
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import STOP_WITHIN, Server, cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

IN_FLIGHT = 6
WITHIN = 10.0  # seconds for each condition polled below


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def server_side_queues(port: int) -> list[int]:
    """Receive-queue bytes of each established server-side TCP socket on ``port``."""
    queues = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, state, queues_field = fields[1], fields[3], fields[4]
            if state == "01" and int(local.split(":")[1], 16) == port:
                queues.append(int(queues_field.split(":")[1], 16))
    return queues


async def until(condition: str, check: Callable[[], bool]) -> None:
    await eventually(check, condition, within=WITHIN, step=0.02)


def shutting_down(server: Server) -> int:
    return server.output().count("Shutting down")


async def test_sigterm_lets_requests_in_flight_finish_then_exits(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url, store_timeout=20, log_level="info")
    env["PYTHONUNBUFFERED"] = "1"  # the shutdown lines are read while it runs
    with cluster(tmp_path, env, names=["A"], workers=2) as [server]:
        port = port_of(server)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as http:
            assert (await http.get("/health")).status_code == 200
            with write_lock(db):
                posts = [
                    asyncio.create_task(http.post(EVENTS, json=event(f"In flight {n}")))
                    for n in range(IN_FLIGHT)
                ]
                await until(
                    "every request read by a worker",
                    lambda: len(q := server_side_queues(port)) >= IN_FLIGHT and not any(q),
                )
                server.proc.send_signal(signal.SIGTERM)
                await until("both workers shutting down", lambda: shutting_down(server) >= 2)
                assert not any(post.done() for post in posts)  # still waiting for the lock
            responses = await asyncio.gather(*posts)
        assert [r.status_code for r in responses] == [201] * IN_FLIGHT
        assert server.proc.wait(timeout=STOP_WITHIN) == 0
        output = server.output()

    assert "Traceback" not in output
    with cluster(tmp_path, env, names=["B"]) as [again]:
        async with httpx.AsyncClient(base_url=again.url, trust_env=False) as http:
            listed = await http.get(EVENTS, params={"limit": 100})
    assert {e["title"] for e in listed.json()} == {f"In flight {n}" for n in range(IN_FLIGHT)}
