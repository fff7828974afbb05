"""GET /api/changes/stream: the change feed as Server-Sent Events (the WHATWG HTML
standard's text/event-stream), one event per change with ``id:`` its cursor, so a browser's
EventSource (or any client) resumes after a dropped connection from ``Last-Event-ID`` with
no gap.

Bounded: every open stream takes a slot (StreamSlots: per client and per process); the
changes come from the process's one window of recent changes (watch.py), or, for a stream
further behind, from the store a page at a time, so a stream holds at most one frame of
its own. Those store reads take turns (StreamSlots.reads: as many at once as uncached list
queries): a thousand streams catching up from an old cursor would otherwise queue a
thousand reads at the store, and every request's read behind them.

A reader that does not take what is sent (its connection's buffer full for
``send_timeout``) is dropped, never buffered for. A comment line is sent at least every
``heartbeat`` seconds (while a stream waits its turn to read too) so proxies and clients
see the stream alive. When the server begins its shutdown, every stream ends at once with
a ``retry:`` hint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import Receive, Scope, Send

from eventapi.draining import ABORT
from eventapi.errors import ChangesGone, EventApiError, StreamsBusy, TooManyStreams
from eventapi.events.store import EventStore
from eventapi.follow import cursor
from eventapi.follow.feed import Followed, follow
from eventapi.follow.watch import ChangeWatch
from eventapi.http.problems import problem_body

log = logging.getLogger("eventapi.follow")

FIRST = asyncio.FIRST_COMPLETED

# Changes read from the store per page when a stream is behind the window; the most bytes
# one write to a stream carries.
CATCH_UP = 500
FRAME_BYTES = 64 * 1024
# What a client waits before reconnecting: a dropped stream; the server shutting down.
RETRY_MS = 2000
DRAIN_RETRY_MS = 1000


@dataclass
class StreamSlots:
    per_process: int
    per_client: int
    # Store reads of streams behind the window at once; the others wait their turn, in order.
    reads: asyncio.Semaphore
    open: int = 0
    by_client: dict[str, int] = field(default_factory=dict)

    def take(self, client: str) -> Callable[[], None]:
        """A slot for ``client``'s new stream (TooManyStreams, StreamsBusy: none left);
        returns what gives it back."""
        if self.by_client.get(client, 0) >= self.per_client:
            raise TooManyStreams(self.per_client)
        if self.open >= self.per_process:
            raise StreamsBusy(self.per_process)
        self.open += 1
        self.by_client[client] = self.by_client.get(client, 0) + 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            self.open -= 1
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]

        return give_back


Write = Callable[[bytes], Awaitable[None]]


class _Slow(Exception):
    """The reader did not take a write within the send timeout."""


def frames(items: Sequence[tuple[int, bytes]]) -> Iterator[bytes]:
    """The changes as events, grouped in writes of at most about FRAME_BYTES."""
    chunk: list[bytes] = []
    size = 0
    for seq, body in items:
        event = b"id: %s\ndata: %s\n\n" % (cursor.encode(seq).encode(), body)
        chunk.append(event)
        size += len(event)
        if size >= FRAME_BYTES:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


@dataclass
class ChangeStream:
    watch: ChangeWatch
    store: EventStore
    reads: asyncio.Semaphore  # StreamSlots.reads
    heartbeat: float
    send_timeout: float

    async def __call__(self, scope: Scope, receive: Receive, send: Send, after: int) -> None:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),  # nginx: pass each event on at once
            (b"x-changes-cursor", cursor.encode(after).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def write(data: bytes) -> None:
            message = {"type": "http.response.body", "body": data, "more_body": True}
            try:
                await asyncio.wait_for(send(message), self.send_timeout)
            except TimeoutError:
                raise _Slow from None

        pump = asyncio.create_task(self._pump(write, after))
        gone = asyncio.create_task(_disconnected(receive))
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pump.cancel()
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError, _Slow):
                await pump
        if pump.cancelled():
            return  # the client went away
        if isinstance(pump.exception(), _Slow):
            log.info("change stream dropped: the reader took nothing for %.0f s", self.send_timeout)
            # Drop the connection, buffered bytes and all.
            abort = scope.get("extensions", {}).get(ABORT)
            if abort is not None:
                abort()
                # The server learns of it on the loop's next turns: then this response is
                # one whose client left, not one left unfinished.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_disconnected(receive), 1.0)
            return
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Write, after: int) -> None:
        clock = asyncio.get_running_loop().time
        last = clock()

        async def write(data: bytes) -> None:
            nonlocal last
            await send(data)
            last = clock()

        position = after
        # This stream's place in the queue for a store read, kept across heartbeats (asking
        # again would put it at the back), and the server's shutdown, which ends the wait.
        turn: asyncio.Future[Literal[True]] | None = None
        drained: asyncio.Future[None] | None = None
        await write(b"retry: %d\n\n" % RETRY_MS)
        try:
            while not self.watch.draining:
                recent = self.watch.since(position)
                if recent is None:  # behind the window: read the store, in turn
                    turn = turn or asyncio.ensure_future(self.reads.acquire())
                    drained = drained or asyncio.ensure_future(self.watch.drained())
                    wait = max(0.0, last + self.heartbeat - clock())
                    waits: set[asyncio.Future[Any]] = {turn, drained}
                    await asyncio.wait(waits, timeout=wait, return_when=FIRST)
                    if not turn.done():
                        if clock() - last >= self.heartbeat and not self.watch.draining:
                            await write(b": keep-alive\n\n")
                        continue
                    turn = None
                    followed = await self._read(position)
                    if isinstance(followed, ChangesGone):
                        body = problem_body(
                            followed.status,
                            followed.detail,
                            slug=followed.slug,
                            title=followed.title,
                        )
                        await write(b"event: gone\ndata: %s\n\n" % body)
                        return
                    if isinstance(followed, EventApiError):
                        return  # the store is down: the client reconnects after the retry time
                    items: Sequence[tuple[int, bytes]] = followed.items
                    position = max(position, followed.next)
                else:
                    items = recent
                    position = max(position, items[-1][0]) if items else position
                for frame in frames(items):
                    await write(frame)
                if items:
                    continue
                await self.watch.moved(max(0.0, last + self.heartbeat - clock()))
                if clock() - last >= self.heartbeat and not self.watch.draining:
                    await write(b": keep-alive\n\n")  # nothing written for a heartbeat
            await write(b"retry: %d\n: the server is restarting\n\n" % DRAIN_RETRY_MS)
        finally:
            if drained is not None:
                drained.cancel()
            # A turn given but not taken goes to the next in line (cancel() of a waiting
            # acquire gives back a place granted meanwhile).
            if turn is not None and not turn.cancel():
                self.reads.release()

    async def _read(self, position: int) -> Followed | EventApiError:
        """A page of changes from the store, on a turn this stream holds (given back here,
        before anything is written)."""
        try:
            return await follow(self.store, position, CATCH_UP)
        except EventApiError as exc:
            return exc
        finally:
            self.reads.release()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
