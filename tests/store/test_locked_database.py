"""Scenario 6: another process holds the SQLite write lock (BEGIN IMMEDIATE) while two
servers run. A write waits for the lock at most the store timeout, then fails with 503;
reads and /health do not queue behind the waiting write; a short lock is simply waited out.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cache.processes.load import Recorder, seed
from tests.support.cluster import STORE_OPERATIONS, Api, clients, metric, scrape
from tests.support.poll import eventually
from tests.support.redis_server import RedisServer
from tests.support.server import cluster
from tests.support.settings import server_env

pytestmark = pytest.mark.system  # starts real processes (tests/conftest.py)

PROMPT = 0.3  # a read that needs no write lock, while a write waits for one
SLACK = 0.5  # on top of the store timeout, for a request bounded by it


@contextlib.contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock on ``db`` from this process until the block ends."""
    with contextlib.closing(sqlite3.connect(db, timeout=10, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")


@dataclass(frozen=True)
class Timed:
    status: int
    seconds: float
    finished: float  # monotonic time the response arrived
    body: str


async def timed(
    api: Api,
    method: str,
    url: str,
    *,
    json: dict[str, str] | None = None,
    params: dict[str, str | int] | None = None,
) -> Timed:
    started = time.monotonic()
    response = await api.http.request(method, url, json=json, params=params)
    finished = time.monotonic()
    return Timed(response.status_code, finished - started, finished, response.text)


async def updates_started(api: Api) -> float:
    return metric(await scrape(api), STORE_OPERATIONS, operation="update")


async def patch_waiting_on_the_lock(api: Api, event: str, title: str) -> asyncio.Task[Timed]:
    """Send a PATCH, and return once the server has handed it to its store (its update
    counter moved: from then on it waits for the lock) or it has already answered."""
    before = await updates_started(api)
    patch = asyncio.create_task(timed(api, "PATCH", f"/api/events/{event}", json={"title": title}))

    async def waiting() -> bool:
        return patch.done() or await updates_started(api) > before

    await eventually(waiting, "PATCH reached the store", within=1.0, step=0.005)
    return patch


async def test_a_held_write_lock_fails_writes_in_time_and_never_delays_reads(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store_timeout = 1.0
    hold = 3.0
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url, store_timeout=store_timeout, cache_relay_interval=0.25)
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            a, b = apis
            recorder = Recorder()
            target, uncached, cached = await seed(recorder, [a], 3)
            for api in apis:  # cached: in Redis through both processes
                for _ in range(20):
                    if (await recorder.read_item(api, cached)).cache == "HIT":
                        break

            with write_lock(db):
                locked = time.monotonic()
                patch = await patch_waiting_on_the_lock(a, target, "v1")
                # Sent while A's PATCH waits: reads through the same process, and through B.
                reads = await asyncio.gather(
                    timed(a, "GET", f"/api/events/{uncached}"),
                    timed(a, "GET", f"/api/events/{cached}"),
                    timed(b, "GET", f"/api/events/{uncached}"),
                    timed(a, "GET", "/api/events", params={"q": "v0", "limit": 5}),
                )
                health = await asyncio.gather(
                    timed(a, "GET", "/health"), timed(b, "GET", "/health")
                )
                second = await patch_waiting_on_the_lock(b, target, "v2")
                patched = await patch
                patched_b = await second
                # The lock is held for `hold` seconds in all (fault duration, not a wait).
                await asyncio.sleep(max(0.0, locked + hold - time.monotonic()))
            released = time.monotonic()

            after = await timed(a, "PATCH", f"/api/events/{target}", json={"title": "v3"})
            seen = [await recorder.read_item(api, target) for api in apis]

    labels = ["uncached item via A", "cached item via A", "uncached item via B", "list via A"]
    print(
        f"PATCH via A: {patched.status} in {patched.seconds:.3f}s; "
        f"via B: {patched_b.status} in {patched_b.seconds:.3f}s",
        *(
            f"{label}: {r.status} in {r.seconds:.3f}s"
            for label, r in zip(labels, reads, strict=True)
        ),
        *(
            f"/health of {n}: {h.status} in {h.seconds:.3f}s"
            for n, h in zip("AB", health, strict=True)
        ),
        f"PATCH after release: {after.status} in {after.seconds:.3f}s",
        sep="\n",
    )
    budget = store_timeout + SLACK
    for name, write in (("A", patched), ("B", patched_b)):
        assert write.seconds <= budget, f"PATCH via {name} took {write.seconds:.2f}s: {write}"
        late_ok = write.status == 200 and write.finished > released
        assert write.status == 503 or late_ok, f"PATCH via {name} during the lock: {write}"
    for label, read in zip(labels, reads, strict=True):
        assert read.status == 200, f"{label}: {read}"
        assert read.seconds < PROMPT, f"{label} queued behind the waiting write: {read}"
    for name, answered in zip("AB", health, strict=True):
        assert answered.seconds <= budget, f"/health of {name} took {answered.seconds:.2f}s"
        assert answered.status in {200, 503}, answered
    assert after.status == 200, f"PATCH after the lock was released: {after}"
    assert [r.version for r in seen] == [3, 3], seen


async def test_a_lock_shorter_than_the_store_timeout_is_waited_out(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store_timeout = 2.0
    hold = 0.4
    db = tmp_path / "app.db"
    env = server_env(db, redis_server.url, store_timeout=store_timeout, cache_relay_interval=0.25)
    with cluster(tmp_path, env) as servers:
        async with clients(servers) as apis:
            a, b = apis
            recorder = Recorder()
            target, other = await seed(recorder, [a], 2)
            with write_lock(db):
                locked = time.monotonic()
                patches = [
                    await patch_waiting_on_the_lock(a, target, "v1"),
                    await patch_waiting_on_the_lock(b, other, "v1"),
                ]
                read = await timed(a, "GET", f"/api/events/{other}")
                await asyncio.sleep(max(0.0, locked + hold - time.monotonic()))
            released = time.monotonic()
            done = [await p for p in patches]
            seen = [await recorder.read_item(api, e) for api in apis for e in (target, other)]

    print(
        *(
            f"PATCH via {n}: {w.status} in {w.seconds:.3f}s"
            for n, w in zip("AB", done, strict=True)
        ),
        f"uncached item via A: {read.status} in {read.seconds:.3f}s",
        sep="\n",
    )
    for name, write in zip("AB", done, strict=True):
        assert write.status == 200, f"PATCH via {name} under a {hold}s lock: {write}"
        assert write.finished >= released, write
        assert write.seconds <= store_timeout + SLACK, write
    assert read.status == 200, read
    assert read.seconds < PROMPT, f"a read queued behind the waiting write: {read}"
    assert [r.version for r in seen] == [1, 1, 1, 1], seen
