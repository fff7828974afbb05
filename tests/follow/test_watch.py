"""The change watch (follow/watch.py) on a real store: its head moves with the log, its window
of rendered changes is bounded and kept only while a stream wants it, and a position older
than the window is told as such (the stream then reads the store)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

import eventapi.follow.watch
from eventapi.changes import ChangeBatch
from eventapi.events.store import EventStore, Versioned
from eventapi.follow.watch import ChangeWatch
from tests.store.builders import event

# The watch's own polls: one at start, then none while a test runs; the tests poll.
QUIET = 3600.0


class Counted:
    """The store, counting the reads of events the watch makes."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.get_many_calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, Versioned]:
        self.get_many_calls += 1
        return await self.inner.get_many(event_ids)


async def test_the_head_follows_the_log_and_the_window_holds_what_came_after(
    store: EventStore,
) -> None:
    watch = ChangeWatch(store, QUIET)
    await watch.start()
    try:
        start = watch.head
        made = [await store.create(event(f"e{n}")) for n in range(3)]
        await watch.poll()

        assert watch.head == made[-1].seq
        recent = watch.since(start)
        assert recent is not None
        assert [seq for seq, _ in recent] == [m.seq for m in made]
        assert watch.since(made[0].seq) == recent[1:]
        assert watch.since(start - 1) is None  # before the window: read the store
    finally:
        await watch.close()


class Held:
    """The store, holding the watch's first read of the log until ``go`` and its second
    until ``first_done``: a poll that read less finishes before one that read more."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.reads = 0
        self.first_read, self.go, self.first_done = (asyncio.Event() for _ in range(3))

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def changes_since(self, after: int, limit: int) -> ChangeBatch:
        self.reads += 1
        batch = await self.inner.changes_since(after, limit)
        if self.reads == 1:
            self.first_read.set()
            await self.go.wait()
        else:
            await self.first_done.wait()
        return batch


async def test_polls_that_overlap_keep_each_change_once(store: EventStore) -> None:
    """Two polls at once (the watch's own and another caller's) must not both add what
    follows the same head: the window would hold a change twice."""
    held = Held(store)
    watch = ChangeWatch(held, QUIET)  # type: ignore[arg-type]
    made = [await store.create(event("e0"))]
    first = asyncio.create_task(watch.poll())
    await held.first_read.wait()
    made += [await store.create(event(f"e{n}")) for n in (1, 2)]
    second = asyncio.create_task(watch.poll())
    held.go.set()
    await first
    held.first_done.set()
    await second

    assert watch.head == made[-1].seq
    assert [seq for seq, _ in watch.since(0) or []] == [m.seq for m in made]


async def test_no_event_is_read_while_no_stream_wants_the_window(store: EventStore) -> None:
    counted = Counted(store)
    streams = 0
    watch = ChangeWatch(counted, QUIET, lambda: streams > 0)  # type: ignore[arg-type]
    await watch.start()
    try:
        for n in range(3):
            await store.create(event(f"e{n}"))
        await watch.poll()
        idle_reads, idle_head = counted.get_many_calls, watch.head
        assert watch.since(idle_head) == []  # the window starts at the head
        streams = 1
        saved = await store.create(event("watched"))
        await watch.poll()
    finally:
        await watch.close()

    assert idle_reads == 0
    assert counted.get_many_calls == 1
    assert idle_head == saved.seq - 1
    assert [seq for seq, _ in watch.since(idle_head) or []] == [saved.seq]


async def test_the_window_is_bounded(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventapi.follow.watch, "RECENT", 4)
    watch = ChangeWatch(store, QUIET)
    await watch.start()
    try:
        start = watch.head
        made = [await store.create(event(f"e{n}")) for n in range(6)]
        await watch.poll()
        monkeypatch.setattr(eventapi.follow.watch, "RECENT_BYTES", 1)
        await store.create(event("last"))
        await watch.poll()
    finally:
        await watch.close()

    assert watch.since(start) is None  # the two oldest went
    assert watch.since(made[1].seq) is None
    assert watch.since(watch.head - 1) is None  # one byte: not even one change is kept
    assert watch.since(watch.head) == []
