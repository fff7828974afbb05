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
- A statement still running at its deadline (or once its caller has given up) is
  interrupted: a progress handler, called every 20,000 SQLite VM steps, ends it, and
  the connection goes back to the pool at once. So an expensive query whose request has
  already answered 503 does not keep a connection and a core busy after it.
- Reads go down one of three lanes, each its own threads and connections, so that no
  kind of read waits behind another: ``system``, the work that keeps the service up
  (``/health``'s ping, the relay's reads of the change log); ``point``, reads of a few rows
  (an event by id); ``list``, list pages, which may read many rows. (The list threads are
  not given a lower CPU priority: they take the GIL to build rows, and a low-priority
  thread descheduled while holding it stalls the event loop; on a busy machine that made
  the relay fall seconds behind.)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Job = Callable[[sqlite3.Connection], T]
Lane = Literal["system", "point", "list"]


class DeadlinePassed(sqlite3.OperationalError):
    """The caller's time ran out before the operation could start."""


# SQLite VM steps between two calls of the progress handler: often enough that a statement
# stops within a few milliseconds of its deadline (20,000 steps took 0.5 to 1.6 ms at 1M
# events), rarely enough that the handler, which takes the GIL, does not make a scan
# compete with the event loop for it (at 2,000 steps: 6,000 calls a second).
PROGRESS_STEPS = 20_000


def _remaining_ms(deadline: float) -> int:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlinePassed("the store timeout passed before the operation started")
    return max(1, int(left * 1000))


def _bounded(conn: sqlite3.Connection, deadline: float, abandoned: threading.Event) -> None:
    """Interrupt ``conn``'s statements once ``deadline`` passes or the caller gives up (they
    then raise OperationalError "interrupted"); ``busy_timeout`` bounds its lock waits."""
    conn.execute(f"PRAGMA busy_timeout = {_remaining_ms(deadline)}")

    def over() -> int:
        return int(abandoned.is_set() or time.monotonic() >= deadline)

    conn.set_progress_handler(over, PROGRESS_STEPS)


class Connections:
    def __init__(
        self,
        path: str,
        setup: Callable[[sqlite3.Connection], None],
        readers: int = 4,
        lists: int = 3,
    ) -> None:
        self._path = path
        self._setup = setup
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._writer: sqlite3.Connection | None = None
        self._all: list[sqlite3.Connection] = []
        # Per lane: its threads, and as many idle connections (a thread always finds one).
        self._threads: dict[Lane, ThreadPoolExecutor] = {
            "system": ThreadPoolExecutor(1, thread_name_prefix="sqlite-system"),
            "point": ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader"),
            "list": ThreadPoolExecutor(lists, thread_name_prefix="sqlite-list"),
        }
        self._sizes: dict[Lane, int] = {"system": 1, "point": readers, "list": lists}
        self._idle: dict[Lane, queue.SimpleQueue[sqlite3.Connection]] = {
            lane: queue.SimpleQueue() for lane in self._threads
        }

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
            for lane, size in self._sizes.items():
                for _ in range(size):
                    self._idle[lane].put(self._connect())

        await asyncio.get_running_loop().run_in_executor(self._writer_thread, connect_all)

    async def write(self, job: Job[T], deadline: float) -> T:
        """Run ``job`` in one write transaction on the writer connection."""
        abandoned = threading.Event()

        def run() -> T:
            conn = self._writer
            assert conn is not None, "open() first"
            _bounded(conn, deadline, abandoned)
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = job(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                conn.set_progress_handler(None, 0)
            return result

        return await self._hop(self._writer_thread, run, abandoned)

    async def read(self, job: Job[T], deadline: float, *, lane: Lane = "point") -> T:
        """Run ``job`` on an idle reader connection of ``lane`` (module docstring), in
        autocommit: the latest committed data."""
        abandoned = threading.Event()
        idle = self._idle[lane]

        def run() -> T:
            conn = idle.get_nowait()  # as many connections as threads: never empty here
            try:
                _bounded(conn, deadline, abandoned)
                return job(conn)
            finally:
                conn.set_progress_handler(None, 0)
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                idle.put(conn)

        return await self._hop(self._threads[lane], run, abandoned)

    async def _hop(
        self, pool: ThreadPoolExecutor, run: Callable[[], T], abandoned: threading.Event
    ) -> T:
        future = asyncio.get_running_loop().run_in_executor(pool, run)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # The caller gave up (its timeout): its statement is interrupted at the next
            # progress check, or skipped if it has not started. Collect the outcome so
            # nothing is logged as lost.
            abandoned.set()
            future.add_done_callback(_consume)
            raise

    async def close(self) -> None:
        def close_all() -> None:
            for conn in self._all:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

        loop = asyncio.get_running_loop()
        # Let queued work finish first, so no thread still uses a connection we close.
        for threads in self._threads.values():
            await loop.run_in_executor(None, threads.shutdown)
        await loop.run_in_executor(self._writer_thread, close_all)
        await loop.run_in_executor(None, self._writer_thread.shutdown)


def _consume(future: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of an abandoned operation, so asyncio does not log it."""
    if not future.cancelled():
        future.exception()
