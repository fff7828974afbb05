"""Streams behind the window read the store in turns (follow/stream.py, StreamSlots.reads):
however many catch up at once, only as many store reads run as the turns allow, the others
wait in line sending heartbeats, a shutdown ends the waiting ones at once, and every turn
comes back whatever way a stream ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from starlette.types import Message

from eventapi.events.store import EventStore, Versioned
from eventapi.follow.stream import ChangeStream
from eventapi.follow.watch import ChangeWatch
from tests.store.builders import event

QUIET = 3600.0  # the watch polls once at start, then only when a test says
HEARTBEAT = 0.05
STREAMS = 3


class HeldReads:
    """The store, holding every read of events (a stream's page of changes) until ``go``,
    and counting those held at once."""

    def __init__(self, inner: EventStore, moved: asyncio.Event) -> None:
        self.inner = inner
        self.held = self.most = 0
        self.go = asyncio.Event()
        self._moved = moved

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        self.held += 1
        self.most = max(self.most, self.held)
        self._moved.set()
        try:
            await self.go.wait()
            return await self.inner.get_many(event_ids)
        finally:
            self.held -= 1


class Client:
    """One stream's client: what it was sent; it never goes away."""

    def __init__(self, moved: asyncio.Event) -> None:
        self.bodies: list[bytes] = []
        self._moved = moved

    async def receive(self) -> Message:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            self.bodies.append(message["body"])
            self._moved.set()

    @property
    def text(self) -> bytes:
        return b"".join(self.bodies)


async def until(moved: asyncio.Event, done: Callable[[], bool]) -> None:
    while not done():
        moved.clear()
        await asyncio.wait_for(moved.wait(), 10.0)


async def test_streams_behind_the_window_take_turns_at_the_store(store: EventStore) -> None:
    for n in range(3):
        await store.create(event(f"e{n}"))
    moved = asyncio.Event()
    held = HeldReads(store, moved)
    watch = ChangeWatch(held, QUIET, lambda: False)  # type: ignore[arg-type]
    await watch.start()  # its window begins at the head: a stream from 0 reads the store
    turns = asyncio.Semaphore(1)
    clients = [Client(moved) for _ in range(STREAMS)]
    stream = ChangeStream(watch, held, turns, HEARTBEAT, 10.0)  # type: ignore[arg-type]
    tasks = [
        asyncio.create_task(stream({"type": "http"}, client.receive, client.send, 0))
        for client in clients
    ]
    try:
        # Until the others would have read too, were there no turns: one reads, and the
        # rest, in line, keep their streams alive.
        def waiting() -> list[Client]:
            return [c for c in clients if b": keep-alive" in c.text]

        await until(moved, lambda: held.held > 1 or len(waiting()) == STREAMS - 1)
        assert held.most == 1
        assert len(waiting()) == STREAMS - 1

        # A shutdown ends the streams in line at once, while the read still runs.
        watch.drain()
        ended = [tasks[clients.index(c)] for c in waiting()]
        await asyncio.wait_for(asyncio.gather(*ended), 10.0)
        for client in waiting():
            assert client.text.endswith(b"retry: 1000\n: the server is restarting\n\n")
            assert b"data:" not in client.text

        held.go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10.0)
    finally:
        held.go.set()
        for task in tasks:
            task.cancel()
        await watch.close()

    reader = next(c for c in clients if b"data:" in c.text)
    assert reader.text.count(b"data:") == 3
    assert not turns.locked()  # every turn came back


async def test_a_stream_that_ends_in_line_gives_its_place_back(store: EventStore) -> None:
    """A client gone while its stream waits for a turn: its place goes to the next."""
    await store.create(event("e"))
    moved = asyncio.Event()
    held = HeldReads(store, moved)
    watch = ChangeWatch(held, QUIET, lambda: False)  # type: ignore[arg-type]
    await watch.start()
    turns = asyncio.Semaphore(1)
    stream = ChangeStream(watch, held, turns, HEARTBEAT, 10.0)  # type: ignore[arg-type]
    first, second, third = (Client(moved) for _ in range(3))
    reading = asyncio.create_task(stream({"type": "http"}, first.receive, first.send, 0))
    await until(moved, lambda: held.held == 1)
    in_line = asyncio.create_task(stream({"type": "http"}, second.receive, second.send, 0))
    await until(moved, lambda: b": keep-alive" in second.text)
    in_line.cancel()  # its client went away
    last = asyncio.create_task(stream({"type": "http"}, third.receive, third.send, 0))
    try:
        held.go.set()
        await until(moved, lambda: b"data:" in third.text)
    finally:
        held.go.set()
        watch.drain()
        await asyncio.wait_for(asyncio.gather(reading, last, return_exceptions=True), 10.0)
        await watch.close()

    assert b"data:" in first.text
    assert b"data:" not in second.text
    assert not turns.locked()


async def test_a_turn_given_to_a_stream_that_ends_before_it_reads_goes_back(
    store: EventStore,
) -> None:
    """The turn is given (the one before it gave its turn back) in the same step as the
    stream's client goes away: the stream never reads, and the turn is not lost with it."""
    await store.create(event("e"))
    moved = asyncio.Event()
    watch = ChangeWatch(store, QUIET, lambda: False)
    await watch.start()
    turns = asyncio.Semaphore(1)
    await turns.acquire()  # another stream's turn
    stream = ChangeStream(watch, store, turns, HEARTBEAT, 10.0)
    client = Client(moved)
    in_line = asyncio.create_task(stream({"type": "http"}, client.receive, client.send, 0))
    try:
        await until(moved, lambda: b": keep-alive" in client.text)
        turns.release()  # the turn is this stream's now...
        in_line.cancel()  # ...and its client is gone before it runs again
        await asyncio.gather(in_line, return_exceptions=True)
    finally:
        await watch.close()

    assert b"data:" not in client.text
    assert not turns.locked()
