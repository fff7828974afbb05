"""The change watch: one per server process. It reads the change log a few times a second
and keeps

- ``head``: a seq every change up to which this process has seen settled, read from the
  store before now. Every read answers with the head it started at as its change cursor
  (X-Changes-Cursor): whatever the read did not reflect was committed after that head was
  read, so it has a higher seq, and a client following the feed from the cursor gets it.
  The head may lag the log by a poll: that only repeats changes, never skips one.
- the recent changes, each rendered once (feed.rendered), for every open stream: a bounded
  window (RECENT changes and RECENT_BYTES bytes), kept only while some stream is open (no
  reads of events for nobody). A stream further behind than the window reads the store
  itself (stream.py), so no stream holds changes of its own.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Callable, Sequence

from eventapi.errors import EventApiError
from eventapi.events.store import EventStore
from eventapi.follow.feed import follow

log = logging.getLogger("eventapi.follow")

# The changes read from the log in one poll.
BATCH = 500
# The window of recent changes kept for the streams.
RECENT = 10_000
RECENT_BYTES = 32 * 1024 * 1024


class ChangeWatch:
    def __init__(
        self, store: EventStore, interval: float, wanted: Callable[[], bool] = lambda: True
    ) -> None:
        self._store = store
        self._interval = interval
        self._wanted = wanted  # whether any stream is open
        self.head = 0
        self._seqs: list[int] = []  # the window's seqs, rising
        self._bodies: list[bytes] = []
        self._bytes = 0
        self._start = 0  # the window holds every change after this seq (up to ``head``)
        self._moved = asyncio.Event()
        self._drained = asyncio.Event()
        # One poll at a time: two at once would both append what follows the same head.
        self._polling = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.draining = False  # the server is shutting down: streams end (stream.py)

    async def start(self) -> None:
        """Read the head once (the first answers' cursor), then keep watching."""
        try:
            self.head = self._start = await self._store.head()
        except EventApiError as exc:
            log.warning("change log not readable at start-up (%s); watching from 0", exc.detail)
        self._task = asyncio.create_task(self._watch(), name="change-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            try:
                while await self.poll():
                    pass  # more were ready: read on at once
            except EventApiError as exc:
                # The store is down or slow: the head stays (still correct), and so do the
                # streams, which get the changes once it answers again.
                log.debug("change watch: %s", exc.detail)
            except Exception:  # pragma: no cover - a bug must not end the watch
                log.exception("change watch failed; retrying")
            await asyncio.sleep(self._interval)

    async def poll(self) -> bool:
        """Read what the log has after ``head``; whether more is ready."""
        async with self._polling:
            return await self._poll()

    async def _poll(self) -> bool:
        wanted = self._wanted()
        try:
            followed = await follow(self._store, self.head, BATCH, render=wanted)
        except EventApiError as exc:
            if exc.status != 410:
                raise
            # The log no longer has what came after the head (this process was stopped
            # for longer than it keeps): start the window afresh at the log's head.
            self._forget(await self._store.head())
            return False
        if followed.next > self.head and not wanted:
            self._forget(followed.next)
        elif followed.next > self.head:
            for seq, body in followed.items:
                self._seqs.append(seq)
                self._bodies.append(body)
                self._bytes += len(body)
            self.head = followed.next
            self._trim()
            self._wake()
        return followed.more

    def _forget(self, head: int) -> None:
        self._seqs, self._bodies, self._bytes = [], [], 0
        self.head = self._start = head
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    def drain(self) -> None:
        """The server is shutting down: wake every stream, to end."""
        if not self.draining:
            self.draining = True
            self._drained.set()
            self._wake()

    async def drained(self) -> None:
        """Wait until the server begins its shutdown."""
        await self._drained.wait()

    def _trim(self) -> None:
        drop = max(0, len(self._seqs) - RECENT)
        gone = sum(len(body) for body in self._bodies[:drop])
        while drop < len(self._seqs) and self._bytes - gone > RECENT_BYTES:
            gone += len(self._bodies[drop])
            drop += 1
        if drop:
            self._bytes -= gone
            self._start = self._seqs[drop - 1]
            del self._seqs[:drop], self._bodies[:drop]

    def since(self, after: int) -> Sequence[tuple[int, bytes]] | None:
        """The changes after the seq ``after`` that the window holds (up to ``head``), or
        None when it no longer holds them all (``after`` is older than the window)."""
        if after < self._start:
            return None
        at = bisect.bisect_right(self._seqs, after)
        return list(zip(self._seqs[at:], self._bodies[at:], strict=True))

    async def moved(self, timeout: float) -> None:
        """Wait until the head moves (or ``timeout`` passes)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), timeout)
