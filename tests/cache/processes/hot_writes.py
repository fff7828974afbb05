"""Concurrent writers of a few hot events, readers of items and list pages, all through real
server processes, recorded for commit_order.judge.

The load runs in ROUNDS: in each, every writer of every hot event (all of them, or the
first ``Hot.written``) PATCHes its own title at once (writer ``w`` of event ``i`` through
process ``(i + w) % n``, so each event's writers race across processes), while background
readers GET every event and list pages through every process. Once every write of the
round is acknowledged, a quiescence check GETs each hot event, and the list, through every
process: each must return exactly what the database holds. Every loop is bounded by a
count AND a deadline, and stops by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.cache.processes.commit_order import (
    ABSENT,
    Judgement,
    Read,
    Write,
    judge,
    read_log,
    stored_titles,
)
from tests.cache.processes.history import ReadKind
from tests.cache.processes.recorder import LIST_PAGE
from tests.cache.processes.recorder import Recorder as BaseRecorder
from tests.support.cluster import Api
from tests.support.server import Server

EPOCH = datetime(2025, 1, 1)  # before every event's date: a list from here shows them all


def list_queries(count: int) -> list[dict[str, Any]]:
    """``count`` list queries that differ as cache keys but all show every event (each
    starts one second later, still long before any event): one page, many entries."""
    return [
        {**LIST_PAGE, "date_from": (EPOCH + timedelta(seconds=n)).isoformat()} for n in range(count)
    ]


class Recorder(BaseRecorder[str, Write, Read]):
    """Versions are titles, unique to each write (``<label>.<serial>``)."""

    absent = ABSENT

    def __init__(self) -> None:
        super().__init__()
        self._serial = itertools.count()

    def title(self, label: str) -> str:
        return f"{label}.{next(self._serial)}"

    def title_of(self, version: str) -> str:
        return version

    def version_of(self, title: object) -> str | None:
        return title if isinstance(title, str) else None

    def new_write(
        self, event: str, version: str, via: str, sent: float, received: float, status: int
    ) -> Write:
        return Write(event, version, via, sent, received, status)

    def new_read(
        self,
        event: str,
        version: str | None,
        via: str,
        kind: ReadKind,
        sent: float,
        received: float,
        status: int,
        cache: str,
    ) -> Read:
        return Read(event, version, via, kind, sent, received, status, cache)

    async def create(self, api: Api, label: str = "created", day: int = 1) -> str:
        return await self.create_version(api, self.title(label), day)

    async def write(self, api: Api, event: str, label: str) -> Write:
        return await self.write_version(api, event, self.title(label))

    def judge(self, db: Path) -> Judgement:
        return judge(self.writes, self.reads, read_log(db))

    def summary(self, judgement: Judgement) -> str:
        return judgement.summary(self.origin)


async def seed(recorder: Recorder, apis: Sequence[Api], count: int) -> list[str]:
    """Create ``count`` events through the processes in turn."""
    made = (recorder.create(apis[n % len(apis)], f"e{n}") for n in range(count))
    return list(await asyncio.gather(*made))


@dataclass(frozen=True)
class Hot:
    """The shape of a run of rounds."""

    writers: int = 4  # concurrent writers per event in each round
    rounds: int = 150  # at most this many rounds ...
    seconds: float = 7.0  # ... and for at most this long
    readers: int = 8  # background reader tasks
    list_every: int = 3  # every n-th background read is a list page
    lists: Sequence[Mapping[str, Any]] = (LIST_PAGE,)  # the list queries readers cycle through
    max_reads: int = 20_000  # per background reader
    written: int = 0  # only the first this many events are written (0: all of them)
    # A busy machine runs fewer rounds in ``seconds``: rounds go on (up to ``overtime``
    # times as long) until at least this many have run and this many reads were recorded.
    min_rounds: int = 0
    min_reads: int = 0
    overtime: float = 4.0


@dataclass(frozen=True, slots=True)
class Violation:
    """A quiescence read that did not return what the database held."""

    round: int
    read: Read
    held: str | None  # None: the database no longer holds the event

    def describe(self) -> str:
        r = self.read
        return (
            f"round {self.round}: {r.kind} {r.event[-6:]} via {r.via} returned {r.title!r} "
            f"(X-Cache {r.cache or '-'}, status {r.status}); the database held {self.held!r}"
        )


@dataclass
class Outcome:
    rounds: int = 0
    violations: list[Violation] = field(default_factory=list)

    def summary(self, examples: int = 5) -> str:
        lines = [f"rounds: {self.rounds}; quiescence violations: {len(self.violations)}"]
        return "\n".join(lines + ["  " + v.describe() for v in self.violations[:examples]])


def assert_never_stale(judgement: Judgement, outcome: Outcome, summary: str) -> None:
    """No stale read, no quiescence violation, every write acknowledged (and committed),
    every read answered with a title some write set."""
    report = judgement.report
    assert not report.stale, summary
    assert not outcome.violations, summary
    assert not report.write_errors, summary
    assert not report.read_errors, summary
    assert not report.phantoms, summary
    assert not judgement.lost, summary


# Something to do at the start of a round, alongside its writes (a fault to inject).
RoundHook = Callable[[int], Awaitable[None]]


async def settled(
    recorder: Recorder,
    apis: Sequence[Api],
    events: Sequence[str],
    db: Path,
    round_: int,
    params: Mapping[str, Any] = LIST_PAGE,
) -> list[Violation]:
    """Nothing is being written: every process must serve what the database holds. Each
    item is read twice through each process (a MISS may fill it, then a HIT)."""
    held = await asyncio.to_thread(stored_titles, db, events)

    async def through(api: Api) -> list[Read]:
        got: list[Read] = []
        for _ in range(2):
            got += await asyncio.gather(*(recorder.read_item(api, e) for e in events))
        return got + await recorder.read_list(api, events, params)

    reads = [r for got in await asyncio.gather(*map(through, apis)) for r in got]

    def expected(read: Read) -> str | None:
        title = held.get(read.event)
        if title is None:  # deleted: an item is a 404, a list page leaves it out
            return ABSENT if read.kind == "list" else None
        return title

    return [Violation(round_, r, held.get(r.event)) for r in reads if r.title != expected(r)]


async def run_rounds(
    recorder: Recorder,
    apis: Sequence[Api],
    events: Sequence[str],
    db: Path,
    hot: Hot,
    *,
    at_round: RoundHook | None = None,
    enough: Callable[[], bool] = lambda: True,
) -> Outcome:
    """The rounds, with background readers going on throughout. After ``hot.seconds`` the
    rounds go on (up to ``hot.overtime`` times as long) while ``hot``'s minimum counts are
    not reached or ``enough()`` is false: what a test needs to have happened, which a busy
    machine may not make happen in the usual time."""
    outcome = Outcome()
    stop = asyncio.Event()
    started = time.monotonic()
    deadline, last = started + hot.seconds, started + hot.seconds * hot.overtime
    written = events[: hot.written or len(events)]

    def done(n: int) -> bool:
        now = time.monotonic()
        short = n < hot.min_rounds or len(recorder.reads) < hot.min_reads or not enough()
        return now >= last or (now >= deadline and not short)

    async def writers() -> None:
        try:
            for n in range(hot.rounds):
                if done(n):
                    return
                writes = [
                    recorder.write(apis[(i + w) % len(apis)], event, f"r{n}w{w}")
                    for i, event in enumerate(written)
                    for w in range(hot.writers)
                ]
                extra = [at_round(n)] if at_round is not None else []
                await asyncio.gather(*writes, *extra)
                outcome.violations += await settled(recorder, apis, written, db, n)
                outcome.rounds = n + 1
        finally:
            stop.set()

    async def reader(index: int) -> None:
        queries = itertools.cycle(hot.lists)
        for n in range(hot.max_reads):
            if stop.is_set():
                return
            # Each process in turn, and the next event once every process has had it: so
            # every event is read through every process.
            api = apis[(index + n) % len(apis)]
            if hot.list_every and n % hot.list_every == hot.list_every - 1:
                await recorder.read_list(api, events, next(queries))
            else:
                await recorder.read_item(api, events[(index + n // len(apis)) % len(events)])

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(writers())
        for r in range(hot.readers):
            tasks.create_task(reader(r))
    return outcome


def cache_warnings(servers: Sequence[Server], examples: int = 5) -> str:
    """The cache's warnings in the servers' logs, for a failure's message: a process whose
    breaker opened (and why) acknowledges writes it did not invalidate, which the other
    processes may serve until their next relay pass (the documented window): a stale read
    then is not the race or the lost key a test is about."""
    lines = [
        f"{server.log.name}: {line}"
        for server in servers
        for line in server.output().splitlines()
        if "WARNING eventapi.cache" in line
    ]
    shown = "".join(f"\n  {line}" for line in lines[:examples])
    return f"cache warnings in the server logs: {len(lines)}{shown}"
