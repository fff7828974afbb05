"""SQLite connections: one writer, a few readers, each operation one hop to its thread.

Why not one shared connection: statements of different requests then interleave on it, so
a request's read can run inside another's open cursor (an old snapshot), and a write on a
connection that holds a read snapshot fails at once with "database is locked" whatever
``busy_timeout`` says. Here every operation is a plain function run start to finish on one
connection in that connection's thread, so none of that can happen:

- Writes go to the single writer connection and start with ``BEGIN IMMEDIATE``: they take
  the write lock first and wait for it (``busy_timeout``) up to the caller's deadline.
- Reads go to any idle reader connection, in autocommit (or one short read transaction for
  a multi-statement read): each sees the latest committed data, and in WAL mode never
  waits for a writer.
- An operation whose caller has given up is skipped when its turn comes, and a waiting one
  never waits past its deadline, so a locked database cannot pile work up behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]


class DeadlinePassed(sqlite3.OperationalError):
    """The caller's time ran out before the operation could start."""


def _remaining_ms(deadline: float) -> int:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlinePassed("the store timeout passed before the operation started")
    return max(1, int(left * 1000))


class Connections:
    def __init__(
        self, path: str, setup: Callable[[sqlite3.Connection], None], readers: int = 4
    ) -> None:
        self._path = path
        self._setup = setup
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._reader_threads = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._writer: sqlite3.Connection | None = None
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._readers = readers

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        self._setup(conn)
        self._all.append(conn)
        return conn

    async def open(self, schema: str) -> None:
        def connect_all() -> None:
            self._writer = self._connect()
            self._writer.execute("PRAGMA journal_mode=WAL")
            self._writer.executescript(schema)
            for _ in range(self._readers):
                self._idle.put(self._connect())

        await asyncio.get_running_loop().run_in_executor(self._writer_thread, connect_all)

    async def write(self, job: Job[T], deadline: float) -> T:
        """Run ``job`` in one write transaction on the writer connection."""

        def run() -> T:
            conn = self._writer
            assert conn is not None, "open() first"
            conn.execute(f"PRAGMA busy_timeout = {_remaining_ms(deadline)}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = job(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return await self._hop(self._writer_thread, run)

    async def read(self, job: Job[T], deadline: float) -> T:
        """Run ``job`` on an idle reader connection (autocommit: the latest committed data)."""

        def run() -> T:
            # A reader thread always finds a connection: there are as many as threads.
            conn = self._idle.get_nowait()
            try:
                conn.execute(f"PRAGMA busy_timeout = {_remaining_ms(deadline)}")
                return job(conn)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._idle.put(conn)

        return await self._hop(self._reader_threads, run)

    async def _hop(self, pool: ThreadPoolExecutor, run: Callable[[], T]) -> T:
        future = asyncio.get_running_loop().run_in_executor(pool, run)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The caller gave up (its timeout). The operation still ends by its own
            # deadline (busy_timeout); collect its outcome so nothing is logged as lost.
            future.add_done_callback(_consume)
            raise

    async def close(self) -> None:
        def close_all() -> None:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

        loop = asyncio.get_running_loop()
        # Let queued work finish first, so no thread still uses a connection we close.
        await loop.run_in_executor(None, self._reader_threads.shutdown)
        await loop.run_in_executor(self._writer_thread, close_all)
        await loop.run_in_executor(None, self._writer_thread.shutdown)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of an abandoned operation, so asyncio does not log it."""
    if not future.cancelled():
        future.exception()
