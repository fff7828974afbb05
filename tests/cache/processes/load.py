"""Drive real server processes with asyncio tasks and record a history for the checker.

One writer task per event PATCHes title ``v<N>`` with N rising, alternating the target
process; reader tasks GET items and list pages through every process. Every loop is
bounded by a deadline AND a count, and stops by itself.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tests.cache.processes.history import (
    ABSENT,
    Read,
    ReadKind,
    Report,
    Write,
    check,
)
from tests.cache.processes.recorder import Recorder as BaseRecorder
from tests.support.cluster import Api

TITLE = re.compile(r"v(\d+)")


def version_of(title: object) -> int | None:
    match = TITLE.fullmatch(title) if isinstance(title, str) else None
    return int(match.group(1)) if match else None


def body(version: int, day: int = 1) -> dict[str, str]:
    return {"title": f"v{version}", "date": f"2025-06-{day:02d}T12:00:00"}


class Recorder(BaseRecorder[int, Write, Read]):
    """Versions are numbers, shown as titles ``v<N>``."""

    absent = ABSENT

    def title_of(self, version: int) -> str:
        return f"v{version}"

    def version_of(self, title: object) -> int | None:
        return version_of(title)

    def new_write(
        self, event: str, version: int, via: str, sent: float, received: float, status: int
    ) -> Write:
        return Write(event, version, via, sent, received, status)

    def new_read(
        self,
        event: str,
        version: int | None,
        via: str,
        kind: ReadKind,
        sent: float,
        received: float,
        status: int,
        cache: str,
    ) -> Read:
        return Read(event, version, via, kind, sent, received, status, cache)

    def next_version(self, event: str) -> int:
        return 1 + max((w.version for w in self.writes if w.event == event), default=0)

    async def create(self, api: Api, day: int = 1) -> str:
        """An event at version 0."""
        return await self.create_version(api, 0, day)

    async def write(self, api: Api, event: str, version: int) -> Write:
        return await self.write_version(api, event, version)

    def report(self) -> Report:
        return check(self.writes, self.reads)

    def summary(self) -> str:
        return self.report().summary(self.origin)


@dataclass(frozen=True)
class Workload:
    seconds: float
    readers: int
    max_writes: int = 1000  # per event
    max_reads: int = 5000  # per reader
    list_every: int = 4  # every n-th read of a reader is a list page (0: never)
    # A busy machine serves fewer requests in ``seconds``: the run goes on (up to
    # ``overtime`` times as long) until the recorder holds at least this many.
    min_writes: int = 0
    min_reads: int = 0
    overtime: float = 4.0


async def run(
    recorder: Recorder,
    apis: Sequence[Api],
    events: Sequence[str],
    load: Workload,
    stop: asyncio.Event | None = None,
) -> None:
    """Writers and readers until ``load.seconds`` pass (and the minimum counts are reached),
    their counts run out, or ``stop``."""
    stop = stop or asyncio.Event()
    started = time.monotonic()
    deadline = started + load.seconds
    last = started + load.seconds * load.overtime

    def short() -> bool:
        return len(recorder.writes) < load.min_writes or len(recorder.reads) < load.min_reads

    def going() -> bool:
        now = time.monotonic()
        return not stop.is_set() and (now < deadline or (now < last and short()))

    async def writer(index: int, event: str) -> None:
        first = recorder.next_version(event)
        for version in range(first, first + load.max_writes):
            if not going():
                return
            # Alternate A, B, A, ...; neighbouring events start on different processes.
            await recorder.write(apis[(version + index) % len(apis)], event, version)

    async def reader(index: int) -> None:
        for n in range(load.max_reads):
            if not going():
                return
            api = apis[(index + n) % len(apis)]
            if load.list_every and n % load.list_every == load.list_every - 1:
                await recorder.read_list(api, events)
            else:
                await recorder.read_item(api, events[(index * 5 + n) % len(events)])

    async with asyncio.TaskGroup() as tasks:
        for i, event in enumerate(events):
            tasks.create_task(writer(i, event))
        for r in range(load.readers):
            tasks.create_task(reader(r))


async def seed(recorder: Recorder, apis: Sequence[Api], count: int) -> list[str]:
    """Create ``count`` events (title v0) through the processes in turn."""
    return list(await asyncio.gather(*(recorder.create(apis[n % len(apis)]) for n in range(count))))
