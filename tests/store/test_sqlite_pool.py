"""The SQLite connection pool on a real database file: a statement past its deadline, or
whose caller gave up, is interrupted and its connection is free again at once; health and
the relay have a reader of their own."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eventapi.storage.sqlite_pool import Connections

# A statement that runs for seconds (about 10 s uninterrupted here): far longer than any
# deadline below, so only an interruption can end it in time.
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT count(*) FROM c"
)
DEADLINE = 0.2
# A bound asserted with margin for a busy machine; the bench measures it (issue: 50 ms).
FREED_WITHIN = 1.0
FAR = 60.0  # a deadline that never comes during a test


def slow(conn: sqlite3.Connection) -> int:
    return int(conn.execute(SLOW).fetchone()[0])


def quick(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT 1").fetchone()[0])


@pytest.fixture
async def pool(tmp_path: Path) -> AsyncIterator[Connections]:
    connections = Connections(str(tmp_path / "pool.db"), lambda conn: None, readers=1)
    await connections.open("CREATE TABLE IF NOT EXISTS t (x INTEGER);")
    try:
        yield connections
    finally:
        await connections.close()


async def test_a_read_past_its_deadline_is_interrupted_and_its_connection_freed(
    pool: Connections,
) -> None:
    deadline = time.monotonic() + DEADLINE
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        await asyncio.wait_for(pool.read(slow, deadline), FAR)
    late = time.monotonic() - deadline
    print(f"interrupted {late * 1000:.1f} ms after the deadline")
    assert late < FREED_WITHIN
    # The pool's only reader is free again: a quick read answers at once.
    assert await asyncio.wait_for(pool.read(quick, time.monotonic() + FAR), FREED_WITHIN) == 1


async def test_a_write_past_its_deadline_is_interrupted_and_rolled_back(
    pool: Connections,
) -> None:
    def insert_then_slow(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (1)")
        return slow(conn)

    deadline = time.monotonic() + DEADLINE
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        await asyncio.wait_for(pool.write(insert_then_slow, deadline), FAR)
    assert time.monotonic() - deadline < FREED_WITHIN

    def rows(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])

    assert await pool.read(rows, time.monotonic() + FAR) == 0  # nothing of it committed
    assert await pool.write(quick, time.monotonic() + FAR) == 1  # the writer is free


async def test_a_read_whose_caller_gave_up_is_interrupted(pool: Connections) -> None:
    """The deadline is far away; the caller's own time-out ends it, and the statement
    with it: the connection does not stay busy for the rest of the query."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pool.read(slow, time.monotonic() + FAR), DEADLINE)
    gave_up = time.monotonic()
    assert await asyncio.wait_for(pool.read(quick, time.monotonic() + FAR), FAR) == 1
    assert time.monotonic() - gave_up < FREED_WITHIN


async def test_health_and_the_relay_do_not_wait_behind_user_queries(pool: Connections) -> None:
    """Every user reader busy with a long query: a system read answers at once."""
    started = threading.Event()  # set by the reader thread once its query runs

    def busy(conn: sqlite3.Connection) -> int:
        started.set()
        return slow(conn)

    blocker = asyncio.create_task(pool.read(busy, time.monotonic() + 5.0))
    try:
        assert await asyncio.to_thread(started.wait, FAR)
        began = time.monotonic()
        answer = await asyncio.wait_for(
            pool.read(quick, time.monotonic() + FAR, lane="system"), FREED_WITHIN
        )
        assert answer == 1
        assert not blocker.done()  # the user reader was still busy meanwhile
        print(f"system read answered in {(time.monotonic() - began) * 1000:.1f} ms")
    finally:
        blocker.cancel()
        with pytest.raises((asyncio.CancelledError, sqlite3.OperationalError)):
            await blocker


async def test_a_list_lane_full_of_slow_queries_leaves_point_reads_free(
    pool: Connections,
) -> None:
    """Item reads have connections and threads of their own: every list connection busy
    with a query that runs for seconds, an item read still answers at once."""
    slow_lists = [
        asyncio.ensure_future(pool.read(slow, time.monotonic() + 5.0, lane="list"))
        for _ in range(3)
    ]
    try:
        got = await asyncio.wait_for(pool.read(quick, time.monotonic() + FAR), FREED_WITHIN)
        assert got == 1
        assert not any(task.done() for task in slow_lists)
    finally:
        for task in slow_lists:
            task.cancel()
        await asyncio.gather(*slow_lists, return_exceptions=True)
